import Foundation
import PocketLM
import PocketLMTestSupport
import XCTest

/// Hybrid routing from Swift on the real Qwen2.5 0.5B model. The "cloud" is a
/// loopback port nobody listens on, so every cloud call fails fast.
final class RoutingTests: XCTestCase {
    private var modelPath: String {
        get throws { try TestModel.path }
    }

    private let conversation = ConversationConfig(sampling: SamplingConfig(temperature: 0, maxTokens: 16))
    private let modelConfig = ModelConfig(contextLength: 1024, threads: 2)
    private let deadCloud = CloudEndpoint(baseUrl: "http://127.0.0.1:9/v1", model: "big", readTimeoutMs: 2000, maxRetries: 0)

    func testLocalOnlyAnswersOnTheDevice() async throws {
        let chat = try await RoutedChat.open(
            modelPath: try modelPath, router: RouterConfig(policy: .localOnly, cloud: deadCloud),
            modelConfig: modelConfig, conversation: conversation)
        let reply = try await chat.ask("What is the capital of France?")
        XCTAssertFalse(reply.answeredByCloud)
        XCTAssertEqual(reply.reason, .policy)
        XCTAssertTrue(reply.text.contains("Paris"), reply.text)
        XCTAssertEqual(reply.cost.cloudCost, 0)
    }

    func testPreferCloudFallsBackToTheDeviceWhenTheCloudIsDown() async throws {
        let chat = try await RoutedChat.open(
            modelPath: try modelPath, router: RouterConfig(policy: .preferCloud, cloud: deadCloud),
            modelConfig: modelConfig, conversation: conversation)
        let reply = try await chat.ask("What is the capital of France?")
        XCTAssertFalse(reply.answeredByCloud)
        XCTAssertEqual(reply.reason, .cloudFailed)
        XCTAssertNotNil(reply.detail)
        let messages = await chat.messages()
        XCTAssertEqual(messages.count, 2)
    }

    func testCloudOnlyWithADeadEndpointIsATypedError() async throws {
        let chat = try await RoutedChat.open(
            modelPath: try modelPath, router: RouterConfig(policy: .cloudOnly, cloud: deadCloud),
            modelConfig: modelConfig, conversation: conversation)
        do {
            _ = try await chat.ask("Hi")
            XCTFail("a dead endpoint must fail")
        } catch LanguageModelError.cloud(let kind, let transient, _, let message) {
            XCTAssertEqual(kind, .unreachable)
            XCTAssertTrue(transient)
            XCTAssertTrue(message.contains("unreachable"), message)
        }
        let messages = await chat.messages()
        XCTAssertTrue(messages.isEmpty)
    }

    func testAMissingModelWithoutTheCloudReportsTheLoadError() async throws {
        let chat = try await RoutedChat.open(
            modelPath: "/nonexistent/model.gguf", router: RouterConfig(policy: .localOnly),
            conversation: conversation)
        XCTAssertNotNil(chat.deviceError)
        do {
            _ = try await chat.ask("Hi")
            XCTFail("no device model and no cloud must fail")
        } catch LanguageModelError.modelNotFound(let path, _) {
            XCTAssertEqual(path, "/nonexistent/model.gguf")
        }
    }

    func testARoutedToolCallIsAnsweredOnTheSideThatMadeIt() async throws {
        let chat = try await RoutedChat.open(
            modelPath: try modelPath, router: RouterConfig(policy: .localOnly, cloud: deadCloud),
            modelConfig: modelConfig, conversation: ConversationConfig(sampling: SamplingConfig(temperature: 0, maxTokens: 64)))
        let weather = ToolSpec(
            name: "get_weather", description: "Get the current weather for a city.",
            parametersJson: #"{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}"#)
        let request = RouteRequest(options: RequestOptions(constraint: nil, tools: [weather], toolChoice: .required))
        var calls: [ToolCall] = []
        var reply: RoutedReply?
        for try await event in chat.send("What is the weather in Paris?", request: request) {
            switch event {
            case .toolCall(let call): calls.append(call)
            case .done(let done): reply = done
            default: break
            }
        }
        XCTAssertEqual(calls.count, 1)
        XCTAssertEqual(reply?.toolCalls, calls)
        XCTAssertEqual(calls.first?.name, "get_weather")
        let call = try XCTUnwrap(calls.first)
        let after = RouteRequest(options: RequestOptions(constraint: nil, tools: [weather], toolChoice: ToolChoice.none))
        var answer: RoutedReply?
        for try await event in chat.sendToolResults(
            [ToolResult(callId: call.id, name: call.name, content: #"{"celsius": 18}"#, isError: false)], request: after) {
            if case .done(let done) = event { answer = done }
        }
        XCTAssertEqual(answer?.answeredByCloud, false)
        XCTAssertEqual(answer?.toolCalls.isEmpty, true)
        XCTAssertFalse(answer?.text.isEmpty ?? true)
        let roles = await chat.messages().map(\.role)
        XCTAssertEqual(roles, [.user, .assistant, .tool, .assistant])
    }

    func testARoutedChatOverALoadedModelRegeneratesEditsSavesAndRestores() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pocketlm-routed-\(UUID().uuidString).session")
        defer { try? FileManager.default.removeItem(at: file) }
        let lm = try await LanguageModel.load(path: try modelPath, config: modelConfig)
        let router = RouterConfig(policy: .localOnly)
        let first = try await lm.routedChat(router: router, conversation: conversation)
        let answer = try await first.ask("What is the capital of France?")
        var again: RoutedReply?
        for try await event in first.regenerate() {
            if case .done(let reply) = event { again = reply }
        }
        XCTAssertEqual(again?.text, answer.text, "greedy: the same answer again")
        let afterRegenerate = await first.messages()
        XCTAssertEqual(afterRegenerate.count, 2, "regenerate replaces the answer")
        for try await _ in first.editLastMessage("What is the capital of Italy?") {}
        let history = await first.messages()
        XCTAssertEqual(history.filter { $0.role == .user }.map(\.content), ["What is the capital of Italy?"])
        XCTAssertTrue(history.last?.content.contains("Rome") ?? false, history.last?.content ?? "")
        let saved = try await first.save(to: file)
        XCTAssertEqual(saved.messages, 2)
        let next = try await first.ask("And of Spain?")

        // A new routed chat (as after an app kill) restores the history and the device's cache.
        let second = try await lm.routedChat(router: router, conversation: conversation)
        let restored = try await second.restore(from: file)
        XCTAssertNil(restored.fallbackReason)
        XCTAssertGreaterThan(restored.cachedTokens, 10)
        let restoredHistory = await second.messages()
        XCTAssertEqual(restoredHistory, history)
        let reply = try await second.ask("And of Spain?")
        XCTAssertEqual(reply.text, next.text)
        XCTAssertEqual(reply.metrics?.promptTokensReused, restored.cachedTokens)
    }

    func testARouterProbeScoresChoicesKeepsToItsModelAndBudgetsKeepRequestsOnTheDevice() async throws {
        let probePath = try XCTUnwrap(ProcessInfo.processInfo.environment["POCKETLM_TEST_PROBE"], "scripts/test-swift.sh sets the probe")
        let choice = RouteRequest(options: RequestOptions(constraint: .choice(options: ["A", "B", "C", "D"]), tools: [], toolChoice: .auto))
        let question = "Which planet is known as the Red Planet? A. Venus B. Mars C. Jupiter D. Saturn. Reply with the letter only."
        let scored = try await RoutedChat.open(
            modelPath: try modelPath, router: RouterConfig(policy: .localOnly, probePath: probePath),
            modelConfig: modelConfig, conversation: conversation)
        let reply = try await scored.ask(question, request: choice)
        let signals = try XCTUnwrap(reply.confidence)
        let probe = try XCTUnwrap(signals.probe)
        XCTAssertTrue((0...1).contains(probe), "\(signals)")
        XCTAssertGreaterThan(try XCTUnwrap(signals.answerProbability), 0)

        // The same probe bound to another model file is refused when the chat opens.
        let text = try String(contentsOfFile: probePath, encoding: .utf8)
        let other = text.replacingOccurrences(
            of: #""header_sha256":"[0-9a-f]+""#, with: "\"header_sha256\":\"\(String(repeating: "0", count: 64))\"",
            options: .regularExpression)
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("pocketlm-probe-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: bad) }
        try other.write(to: bad, atomically: true, encoding: .utf8)
        do {
            _ = try await RoutedChat.open(
                modelPath: try modelPath, router: RouterConfig(policy: .localOnly, probePath: bad.path),
                modelConfig: modelConfig, conversation: conversation)
            XCTFail("a probe for another model must be refused")
        } catch LanguageModelError.routerProbe(_, let detail, _) {
            XCTAssertTrue(detail.contains("train one for this model"), detail)
        }

        // A budget too small for any cloud answer: prefer-cloud answers on the device, and says why.
        let budgeted = try await RoutedChat.open(
            modelPath: try modelPath,
            router: RouterConfig(policy: .preferCloud, cloud: deadCloud, priceInputPerMillion: 1, budgetPerRequest: 1e-9),
            modelConfig: modelConfig, conversation: conversation)
        let kept = try await budgeted.ask("What is the capital of France?")
        XCTAssertFalse(kept.answeredByCloud)
        XCTAssertEqual(kept.reason, .cloudBudget)
        XCTAssertTrue(kept.detail?.contains("per-request budget") ?? false, kept.detail ?? "")
    }
}

