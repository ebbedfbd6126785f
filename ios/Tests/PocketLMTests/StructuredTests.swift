import Foundation
import PocketLM
import PocketLMTestSupport
import XCTest

private struct Task: Generable, Equatable {
    enum Priority: String, Decodable { case low, medium, high }
    let title: String
    let priority: Priority
    let minutes: Int

    static let jsonSchema = """
    {"type": "object", "properties": {"title": {"type": "string"}, "priority": {"enum": ["low", "medium", "high"]},
     "minutes": {"type": "integer", "minimum": 1}}, "required": ["title", "priority", "minutes"], "additionalProperties": false}
    """
}

private struct TimerArguments: Generable {
    let minutes: Int
    static let jsonSchema = """
    {"type": "object", "properties": {"minutes": {"type": "integer", "minimum": 1, "maximum": 180}}, "required": ["minutes"], "additionalProperties": false}
    """
}

/// Typed answers, snapshots and tools from Swift, on the real Qwen2.5 0.5B model.
final class StructuredTests: XCTestCase {
    private func chat(maxTokens: Int32 = 120) async throws -> Conversation {
        let lm = try await LanguageModel.load(path: try TestModel.path, config: ModelConfig(contextLength: 1024, threads: 2))
        return try await lm.conversation(ConversationConfig(sampling: SamplingConfig(temperature: 0, maxTokens: maxTokens)))
    }

    func testRespondDecodesATypedValue() async throws {
        let task = try await chat().respond(to: "Make a task: water the plants, high priority, 10 minutes.", generating: Task.self)
        XCTAssertEqual(task.priority, .high)
        XCTAssertFalse(task.title.isEmpty)
    }

    func testAStreamedAnswerSendsGrowingSnapshots() async throws {
        var snapshots: [String] = []
        var reply: Reply?
        for try await event in try await chat().streamResponse(to: "Make a task: call the bank, medium priority, 5 minutes.", generating: Task.self) {
            switch event {
            case .snapshot(let json): snapshots.append(json)
            case .done(let done): reply = done
            default: break
            }
        }
        XCTAssertGreaterThan(snapshots.count, 3, "\(snapshots)")
        XCTAssertTrue(snapshots.allSatisfy { $0.hasPrefix("{") })
        let task: Task = try XCTUnwrap(reply).decoded()
        XCTAssertEqual(task.priority, .medium)
    }

    func testAToolRoundTripRunsTheAsyncHandler() async throws {
        let minutes = Minutes()
        let timer = Tool(name: "set_timer", description: "Start a countdown timer.", arguments: TimerArguments.self) { args in
            await minutes.record(args.minutes)
            return "{\"ok\": true}"
        }
        var calls: [ToolCall] = []
        let reply = try await chat().respond(to: "Set a timer for 25 minutes.", tools: [timer], toolChoice: .required) { event in
            if case .toolCall(let call) = event { calls.append(call) }
        }
        let seen = await minutes.values
        XCTAssertEqual(seen.first, 25)
        XCTAssertEqual(calls.first?.name, "set_timer")
        XCTAssertTrue(reply.toolCalls.isEmpty)
        XCTAssertFalse(reply.text.isEmpty)
    }

    func testErrorsAreTyped() async throws {
        let chat = try await chat()
        let bad = RequestOptions(constraint: .jsonSchema(schemaJson: "{\"type\": \"object\", \"uniqueItems\": 3"), tools: [], toolChoice: .auto)
        do {
            _ = try await chat.ask("hi", options: bad)
            XCTFail("an unparseable schema was accepted")
        } catch LanguageModelError.invalidConstraint(let detail, _) {
            XCTAssertTrue(detail.contains("schema_json"), detail)
        }
        do {
            _ = try await self.chat(maxTokens: 4).respond(to: "Make a task: buy milk.", generating: Task.self)
            XCTFail("a cut-short value decoded")
        } catch LanguageModelError.structuredOutputIncomplete(let partialText, _, _) {
            XCTAssertTrue(partialText.hasPrefix("{"), partialText)
        }
        let timer = Tool(name: "set_timer", description: "Start a countdown timer.", arguments: TimerArguments.self) { _ in "{}" }
        do {
            _ = try await chat.respond(to: "Set a timer for 3 minutes.", tools: [timer], toolChoice: .required, maxRounds: 0)
            XCTFail("the round limit was not enforced")
        } catch LanguageModelError.toolRoundsExceeded(let rounds, _) {
            XCTAssertEqual(rounds, 0)
        }
    }
}

private actor Minutes {
    var values: [Int] = []
    func record(_ value: Int) { values.append(value) }
}
