import Dispatch
import Foundation
import PocketLM
import PocketLMTestSupport
import XCTest

/// The UI never blocks: reads during an answer, cancellable loading with
/// progress, and a consumer that throws.
final class ResponsivenessTests: XCTestCase {
    private var modelPath: String {
        get throws { try TestModel.path }
    }

    private let modelConfig = ModelConfig(contextLength: 1024, threads: 2)
    private let longAnswer = ConversationConfig(sampling: SamplingConfig(temperature: 0, maxTokens: 400))
    private let story = "Write a long story about a lighthouse keeper."

    /// Milliseconds since `start`.
    private func milliseconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    /// Starts streaming `stream` in a task and returns once two deltas arrived
    /// (the engine is then decoding and holds its lock).
    private func streaming<Event: Sendable>(
        _ stream: AsyncThrowingStream<Event, Error>, isText: @escaping @Sendable (Event) -> Bool
    ) async -> Task<Void, Error> {
        let (started, signal) = AsyncStream<Void>.makeStream()
        let task = Task {
            for try await event in stream where isText(event) {
                signal.yield()
            }
        }
        var iterator = started.makeAsyncIterator()
        _ = await iterator.next()
        _ = await iterator.next()
        return task
    }

    func testConversationReadsReturnAtOnceWhileAnAnswerStreams() async throws {
        let lm = try await LanguageModel.load(path: try modelPath, config: modelConfig)
        let chat = try await lm.conversation(longAnswer)
        let task = await streaming(chat.send(story)) { if case .delta = $0 { true } else { false } }
        var start = DispatchTime.now().uptimeNanoseconds
        let length = chat.contextLength
        let lengthMs = milliseconds(since: start)
        start = DispatchTime.now().uptimeNanoseconds
        let history = await chat.messages()
        let historyMs = milliseconds(since: start)
        XCTAssertLessThan(lengthMs, 50, "contextLength")
        XCTAssertLessThan(historyMs, 50, "messages()")
        XCTAssertEqual(length, 1024)
        // During an answer: the message being answered and the text so far.
        XCTAssertEqual(history.map(\.role), [.user, .assistant])
        XCTAssertFalse(history[1].content.isEmpty)
        task.cancel()
        _ = try? await task.value
    }

    func testRoutedReadsReturnAtOnceWhileAnAnswerStreams() async throws {
        let chat = try await RoutedChat.open(
            modelPath: try modelPath, router: RouterConfig(policy: .localOnly), modelConfig: modelConfig,
            conversation: longAnswer)
        let task = await streaming(chat.send(story)) { if case .text = $0 { true } else { false } }
        let start = DispatchTime.now().uptimeNanoseconds
        let cost = chat.totalCloudCost
        let deviceError = chat.deviceError
        let history = await chat.messages()
        let elapsed = milliseconds(since: start)
        XCTAssertLessThan(elapsed, 50, "totalCloudCost, deviceError and messages()")
        XCTAssertEqual(cost, 0)
        XCTAssertNil(deviceError)
        XCTAssertEqual(history.map(\.role), [.user, .assistant])
        task.cancel()
        _ = try? await task.value
    }

    func testLoadingReportsProgress() async throws {
        let seen = Locked<[Float]>([])
        _ = try await LanguageModel.load(path: try modelPath, config: modelConfig) { fraction in
            seen.update { $0.append(fraction) }
        }
        let fractions = seen.value
        XCTAssertGreaterThan(fractions.count, 5, "\(fractions)")
        XCTAssertTrue(zip(fractions, fractions.dropFirst()).allSatisfy { $0 < $1 }, "increasing: \(fractions)")
        XCTAssertEqual(fractions.last, 1)
    }

    func testCancellingTheTaskStopsTheLoad() async throws {
        let path = try modelPath
        let config = modelConfig
        let before = LanguageModel.liveModels
        let calls = Locked(0)
        let holder = Locked<Task<LanguageModel, Error>?>(nil)
        let task = Task {
            try await LanguageModel.load(path: path, config: config) { _ in
                calls.update { $0 += 1 }
                holder.value?.cancel() // e.g. the user leaves the screen
            }
        }
        holder.update { $0 = task }
        do {
            _ = try await task.value
            XCTFail("a cancelled load must throw")
        } catch is CancellationError {
        }
        try await Task.sleep(nanoseconds: 1_500_000_000) // a load that went on would report more progress
        XCTAssertLessThanOrEqual(calls.value, 2, "the native load stopped soon after the cancel")
        XCTAssertEqual(LanguageModel.liveModels, before)
    }

    func testAConsumerThatThrowsStopsTheEngine() async throws {
        struct Boom: Error {}
        let lm = try await LanguageModel.load(path: try modelPath, config: modelConfig)
        let chat = try await lm.conversation(longAnswer)
        do {
            for try await _ in chat.send(story) {
                throw Boom()
            }
            XCTFail("the loop throws")
        } catch is Boom {
        }
        // The engine stopped (not 400 tokens) and the conversation answers again.
        let next = try await chat.ask("What is 2 + 2? Answer with a number.")
        XCTAssertTrue(next.text.contains("4"), next.text)
        let history = await chat.messages()
        XCTAssertLessThan(history[1].content.count, 200, "stopped early, not after 400 tokens")
    }
}

/// A value shared with callbacks on other threads.
private final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) {
        stored = value
    }

    var value: Value {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    func update(_ body: (inout Value) -> Void) {
        lock.lock()
        body(&stored)
        lock.unlock()
    }
}
