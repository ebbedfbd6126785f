import Foundation
import PocketLM
import PocketLMTestSupport
import XCTest

/// Saved conversations from Swift on the real engine: save, drop everything as an
/// app kill would, load the model again, restore, and continue with only the new
/// turn evaluated; a damaged or mismatched file is a typed error and the
/// transcript still comes back.
final class SessionTests: XCTestCase {
    private let greedy = SamplingConfig(temperature: 0, maxTokens: 24)

    private func load() async throws -> LanguageModel {
        try await LanguageModel.load(path: try TestModel.path, config: ModelConfig(contextLength: 1024, threads: 2))
    }

    private func tempFile(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pocketlm-session-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name)
    }

    func testAConversationSurvivesDroppingTheModelAndContinuesWhereItWas() async throws {
        let file = try tempFile("chat.session")
        var expected = ""
        var evaluated: Int32 = 0
        do {
            let lm = try await load()
            let chat = try await lm.conversation(ConversationConfig(sampling: greedy))
            _ = try await chat.ask("Name three primary colours.")
            let saved = try await chat.save(to: file)
            XCTAssertEqual(saved.messages, 2)
            let size = try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber
            XCTAssertEqual(saved.fileBytes, size?.int64Value)
            let next = try await chat.ask("Which of them is warmest?")
            expected = next.text
            evaluated = next.metrics.promptTokensEvaluated
        }
        let summary = try await Conversation.summary(of: file)
        XCTAssertEqual(summary.messages.map(\.role), [.user, .assistant])

        let lm = try await load()
        let chat = try await lm.conversation(ConversationConfig(sampling: greedy))
        let restored = try await chat.restore(from: file)
        XCTAssertNil(restored.fallbackKind, restored.fallbackReason ?? "")
        XCTAssertGreaterThan(restored.cachedTokens, 20)
        let reply = try await chat.ask("Which of them is warmest?")
        XCTAssertEqual(reply.text, expected)
        XCTAssertEqual(reply.metrics.promptTokensReused, restored.cachedTokens)
        XCTAssertEqual(reply.metrics.promptTokensEvaluated, evaluated)
    }

    func testAMismatchedOrDamagedFileIsTypedAndTheTranscriptStillRestores() async throws {
        let file = try tempFile("mismatch.session")
        let lm = try await load()
        let first = try await lm.conversation(ConversationConfig(sampling: greedy))
        _ = try await first.ask("Name three primary colours.")
        try await first.save(to: file)

        let shorter = try await lm.conversation(ConversationConfig(sampling: greedy, contextLength: 512))
        do {
            try await shorter.restore(from: file, fallBackToTranscript: false)
            XCTFail("a file saved with another context length restored")
        } catch LanguageModelError.session(let kind, let transcriptUsable, _, _) {
            XCTAssertEqual(kind, .settingsMismatch)
            XCTAssertTrue(transcriptUsable)
        }
        let before = await shorter.messages()
        XCTAssertTrue(before.isEmpty, "a refused restore changes nothing")
        let restored = try await shorter.restore(from: file)
        XCTAssertEqual(restored.fallbackKind, SessionErrorKind.settingsMismatch)
        XCTAssertEqual(restored.messages, 2)
        XCTAssertEqual(restored.cachedTokens, 0)
        let reread = try await shorter.ask("And the coldest?")
        XCTAssertGreaterThan(reread.metrics.promptTokensEvaluated, 30, "the transcript is re-read")

        let cut = try tempFile("cut.session")
        try Data(try Data(contentsOf: file).prefix(100)).write(to: cut)
        let chat = try await lm.conversation(ConversationConfig(sampling: greedy))
        do {
            try await chat.restore(from: cut)
            XCTFail("a cut file restored")
        } catch LanguageModelError.session(let kind, let transcriptUsable, _, _) {
            XCTAssertEqual(kind, .corrupt)
            XCTAssertFalse(transcriptUsable)
        }
        let answer = try await chat.ask("Hello")
        XCTAssertFalse(answer.text.isEmpty, "the conversation still answers")
    }
}
