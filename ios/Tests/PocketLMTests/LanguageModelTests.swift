import Foundation
import PocketLM
import PocketLMTestSupport
import XCTest

/// The Swift SDK on the real engine and the real Qwen2.5 0.5B model.
final class LanguageModelTests: XCTestCase {
    private var modelPath: String {
        get throws { try TestModel.path }
    }

    private let greedy = SamplingConfig(temperature: 0, maxTokens: 48)

    private func load(contextLength: Int32 = 1024) async throws -> LanguageModel {
        try await LanguageModel.load(path: try modelPath, config: ModelConfig(contextLength: contextLength, threads: 2))
    }

    func testReadmeQuickStart() async throws {
        let modelPath = try self.modelPath
        // README: Swift quick start (keep the two in sync).
        let lm = try await LanguageModel.load(path: modelPath, config: ModelConfig(contextLength: 1024, threads: 2))
        let chat = try await lm.conversation(ConversationConfig(sampling: SamplingConfig(temperature: 0, maxTokens: 48)))
        var answer = ""
        for try await event in chat.send("What is the capital of France?") {
            switch event {
            case .delta(let text): answer += text
            case .done(let reply): print("\(reply.metrics.decodeTokensPerS) tok/s")
            default: break // snapshots and tool calls: see Structured.swift
            }
        }
        let next = try await chat.ask("And of Germany?")
        print(next.text)
        // End of the README snippet.
        XCTAssertTrue(answer.contains("Paris"), answer)
        XCTAssertTrue(next.text.contains("Berlin"), next.text)
    }

    func testLoadsTheModelAndReadsItsInfo() async throws {
        let info = try await load().info
        XCTAssertEqual(info.architecture, "qwen2")
        XCTAssertEqual(info.quantization, "Q4_K_M")
        XCTAssertTrue(info.hasChatTemplate)
        XCTAssertEqual(info.fileSizeBytes, 491_400_064)
    }

    func testTheBackendIsReportedAndAGpuRequestWithoutAGpuFallsBackToTheCpu() async throws {
        #if os(Linux)
        // Auto is the CPU off Apple hardware; on an iPhone or a Mac it is Metal.
        let auto = try await load(contextLength: 256).backend
        XCTAssertEqual(auto.backend, "cpu")
        XCTAssertNil(auto.fallbackReason)
        #endif
        let lm = try await LanguageModel.load(path: try modelPath, config: ModelConfig(contextLength: 256, backend: .gpu))
        let backend = lm.backend
        #if !os(Linux)
        try XCTSkipIf(backend.backend != "cpu", "this machine has a GPU backend")
        #endif
        XCTAssertEqual(backend.backend, "cpu")
        XCTAssertFalse(backend.device.isEmpty)
        XCTAssertTrue(backend.fallbackReason?.contains("no GPU backend") ?? false, "\(String(describing: backend.fallbackReason))")
        let reply = try await lm.conversation().ask("Say hi.")
        XCTAssertEqual(reply.metrics.backend, "cpu")
        XCTAssertEqual(reply.metrics.device, backend.device)
    }

    func testStreamsAnAnswerThatContainsParis() async throws {
        let chat = try await load().conversation(ConversationConfig(sampling: greedy))
        var deltas: [String] = []
        var reply: Reply?
        for try await event in chat.send("What is the capital of France?") {
            switch event {
            case .delta(let text): deltas.append(text)
            case .done(let done): reply = done
            default: break
            }
        }
        let answer = try XCTUnwrap(reply)
        XCTAssertGreaterThan(deltas.count, 1, "streamed in pieces")
        XCTAssertEqual(deltas.joined(), answer.text)
        XCTAssertTrue(answer.text.contains("Paris"), answer.text)
        XCTAssertEqual(answer.metrics.stopReason, .eos)
    }

    func testSecondTurnReusesTheKVCache() async throws {
        let chat = try await load().conversation(ConversationConfig(sampling: greedy))
        let first = try await chat.ask("What is the capital of France?")
        let second = try await chat.ask("And of Germany?")
        XCTAssertEqual(first.metrics.promptTokensReused, 0)
        XCTAssertGreaterThan(second.metrics.promptTokensReused, 20)
        XCTAssertLessThan(second.metrics.promptTokensEvaluated, second.metrics.promptTokensReused)
        XCTAssertTrue(second.text.contains("Berlin"), second.text)
        let count = await chat.messages().count
        XCTAssertEqual(count, 4)
        await chat.reset()
        let afterReset = await chat.messages().count
        XCTAssertEqual(afterReset, 0)
    }

    func testCancellingTheTaskStopsTheEngineAndTheChatStaysUsable() async throws {
        let chat = try await load().conversation(ConversationConfig(sampling: SamplingConfig(temperature: 0, maxTokens: 400)))
        let (started, signal) = AsyncStream<Void>.makeStream()
        let task = Task {
            var deltas = 0
            for try await event in chat.send("Write a long story about a lighthouse keeper.") {
                if case .delta = event {
                    deltas += 1
                    if deltas == 3 { signal.yield() }
                }
            }
            return deltas
        }
        for await _ in started { break }
        task.cancel()
        _ = try? await task.value
        let history = await chat.messages() // waits until the engine has stopped
        let partial = try XCTUnwrap(history.last)
        XCTAssertEqual(partial.role, .assistant)
        XCTAssertLessThan(partial.content.count, 200, "stopped early, not after 400 tokens")
        let next = try await chat.ask("What is 2 + 2? Answer with a number.")
        XCTAssertTrue(next.text.contains("4"), next.text)
    }

    func testMissingAndCorruptFilesAreTypedErrors() async throws {
        do {
            _ = try await LanguageModel.load(path: "/no/such/model.gguf")
            XCTFail("loading a missing file must throw")
        } catch LanguageModelError.modelNotFound(let path, let message) {
            XCTAssertEqual(path, "/no/such/model.gguf")
            XCTAssertTrue(message.contains("not found"), message)
        }
        let corrupt = FileManager.default.temporaryDirectory.appendingPathComponent("pocketlm-corrupt.gguf")
        try Data("GGUF\u{3}\0\0\0garbage".utf8).write(to: corrupt)
        do {
            _ = try await LanguageModel.load(path: corrupt.path)
            XCTFail("loading a corrupt file must throw")
        } catch LanguageModelError.modelTruncated(let path, let detail, let message) {
            XCTAssertEqual(path, corrupt.path)
            XCTAssertFalse(detail.isEmpty)
            XCTAssertTrue(message.contains("truncated"), message)
        }
    }

    func testInvalidSamplingIsATypedError() async throws {
        let lm = try await load()
        do {
            _ = try await lm.conversation(ConversationConfig(sampling: SamplingConfig(topP: 1.5)))
            XCTFail("top_p 1.5 must be rejected")
        } catch LanguageModelError.invalidSampling(let name, let value, _, let message) {
            XCTAssertEqual(name, "top_p")
            XCTAssertEqual(value, "1.5")
            XCTAssertTrue(message.contains("top_p"), message)
        }
    }

    func testANegativeOptionIsRefusedByNameBeforeAnythingLoads() async throws {
        let before = LanguageModel.liveModels
        do {
            _ = try await LanguageModel.load(path: try modelPath, config: ModelConfig(threads: -2))
            XCTFail("threads -2 must be rejected")
        } catch LanguageModelError.invalidOption(let name, let value, _, let message) {
            XCTAssertEqual(name, "threads")
            XCTAssertEqual(value, "-2")
            XCTAssertTrue(message.contains("threads"), message)
        }
        XCTAssertEqual(LanguageModel.liveModels, before)
        do {
            _ = try await LanguageModel.planMemory(path: try modelPath, budgetBytes: -1)
            XCTFail("a negative budget must be rejected")
        } catch let error as LanguageModelError {
            guard case .invalidOption(let name, _, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "budget_bytes")
            XCTAssertEqual(error.localizedDescription, error.message)
        }
    }

    func testConcurrentTasksDoNotInterfere() async throws {
        let lm = try await load()
        let sampling = SamplingConfig(temperature: 0, maxTokens: 16)
        let answers = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    try await lm.conversation(ConversationConfig(sampling: sampling)).ask("What is the capital of Italy?").text
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(Set(answers).count, 1, "\(answers)")
        XCTAssertTrue(answers[0].contains("Rome"), answers[0])
        // Two tasks on one conversation queue instead of corrupting it.
        let shared = try await lm.conversation(ConversationConfig(sampling: sampling))
        async let a = shared.ask("Say hi.")
        async let b = shared.ask("Say bye.")
        _ = try await (a, b)
        let count = await shared.messages().count
        XCTAssertEqual(count, 4)
    }

    func testReleasingFreesTheModel() async throws {
        let before = LanguageModel.liveModels
        var lm: LanguageModel? = try await load(contextLength: 256)
        var chat: Conversation? = try await lm?.conversation()
        XCTAssertEqual(LanguageModel.liveModels, before + 1)
        lm = nil
        XCTAssertEqual(LanguageModel.liveModels, before + 1, "the conversation still uses it")
        chat = nil
        XCTAssertNil(chat)
        XCTAssertEqual(LanguageModel.liveModels, before)
    }

    func testAMemoryBudgetIsPlannedBeforeLoadingAndRefusedWhenNothingFits() async throws {
        let budget: Int64 = 700 * 1024 * 1024
        let plan = try await LanguageModel.planMemory(path: try modelPath, budgetBytes: budget)
        XCTAssertLessThanOrEqual(plan.predictedPeakBytes, budget)
        XCTAssertTrue((512..<32768).contains(plan.contextLength), "\(plan)")
        let budgeted = try await LanguageModel.load(path: try modelPath, config: ModelConfig(threads: 2, memoryBudgetBytes: budget))
        XCTAssertEqual(budgeted.memoryPlan?.contextLength, plan.contextLength)
        let chat = try await budgeted.conversation(ConversationConfig(sampling: greedy))
        XCTAssertEqual(chat.contextLength, plan.contextLength)
        let reply = try await chat.ask("What is the capital of France?")
        XCTAssertTrue(reply.text.contains("Paris"), reply.text)
        do {
            _ = try await LanguageModel.load(path: try modelPath, config: ModelConfig(memoryBudgetBytes: 100 * 1024 * 1024))
            XCTFail("a 100 MiB budget must be refused")
        } catch LanguageModelError.insufficientMemory(let needed, let budget, let message) {
            XCTAssertEqual(budget, 100 * 1024 * 1024)
            XCTAssertGreaterThan(needed, budget)
            XCTAssertTrue(message.contains("budget is 100 MiB"), message)
        }
    }

    func testLogsReachTheCallback() async throws {
        let lines = LockedLines()
        Logging.configure(level: .info, llamaLevel: .off) { level, target, message in
            lines.append("\(level) \(target) \(message)")
        }
        _ = try await load(contextLength: 256)
        Logging.configure(level: .warn)
        XCTAssertTrue(lines.all.contains { $0.hasPrefix("info pocketlm loaded") }, "\(lines.all)")
    }
}

/// Log lines collected from any thread.
private final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }
}
