import Foundation
import PocketLM
import PocketLMTestSupport
import XCTest

/// LoRA adapters from Swift, on the real Qwen model with the adapters of
/// scripts/lora_adapters.py (scripts/fetch-test-models.sh writes them into lora/ beside it).
final class LoraTests: XCTestCase {
    private func adapterPath(_ name: String) throws -> String {
        URL(fileURLWithPath: try TestModel.path).deletingLastPathComponent()
            .appendingPathComponent("lora/qwen-lora-\(name).gguf").path
    }

    private let question = "Name three colours of the rainbow."
    private let greedy = ConversationConfig(sampling: SamplingConfig(temperature: 0, maxTokens: 16))

    private func load() async throws -> LanguageModel {
        try await LanguageModel.load(path: try TestModel.path, config: ModelConfig(contextLength: 1024, threads: 2))
    }

    private func answer(_ stream: AsyncThrowingStream<ChatEvent, Error>) async throws -> String {
        for try await event in stream {
            if case .done(let reply) = event { return reply.text }
        }
        XCTFail("the stream ended without an answer")
        return ""
    }

    func testAnAdapterChangesTheAnswersOfOneConversationAndComesOffAgain() async throws {
        let lm = try await load()
        let output = try await lm.loadAdapter(path: try adapterPath("output"))
        XCTAssertEqual(output.info.rank, 2)
        XCTAssertEqual(output.info.alpha, 2)
        XCTAssertEqual(output.info.targets, 1)
        XCTAssertEqual(output.info.sha256.count, 64)
        let chat = try await lm.conversation(greedy)
        let base = try await chat.ask(question).text
        try await chat.setAdapters([output: 3])
        let tuned = try await answer(chat.regenerate())
        XCTAssertNotEqual(tuned, base)
        try await chat.setAdapters([output: 0])
        let off = try await answer(chat.regenerate())
        XCTAssertEqual(off, base, "scale 0 is the base model")
        try await chat.setAdapters([output: 3])
        let again = try await answer(chat.regenerate())
        XCTAssertEqual(again, tuned, "the same adapter, the same answer")
        try await chat.setAdapters([:])
        let detached = try await answer(chat.regenerate())
        XCTAssertEqual(detached, base, "detached")
        let messages = await chat.messages()
        XCTAssertEqual(messages.count, 2, "the history is kept")
    }

    func testBadAdaptersAndScalesThrowTypedErrors() async throws {
        let lm = try await load()
        do {
            _ = try await lm.loadAdapter(path: try adapterPath("bad-arch"))
            XCTFail("an adapter for gemma3 loaded")
        } catch LanguageModelError.adapterMismatch(_, let reason, _) {
            XCTAssertTrue(reason.contains("gemma3"), reason)
        }
        do {
            _ = try await lm.loadAdapter(path: try adapterPath("bad-embd"))
            XCTFail("an embedding adapter of two ranks loaded")
        } catch LanguageModelError.adapterMismatch {}
        let attn = try await lm.loadAdapter(path: try adapterPath("attn"))
        let chat = try await lm.conversation(greedy)
        do {
            try await chat.setAdapters([attn: .nan])
            XCTFail("a NaN scale was accepted")
        } catch LanguageModelError.invalidOption(let name, _, _, _) {
            XCTAssertEqual(name, "adapter scale")
        }
        let reply = try await chat.ask(question)
        XCTAssertFalse(reply.text.isEmpty, "the conversation still answers")
    }

    func testThePlannerCountsTheAdapters() async throws {
        let budget: Int64 = 700 << 20
        let bare = try await LanguageModel.planMemory(path: try TestModel.path, budgetBytes: budget)
        let with = try await LanguageModel.planMemory(
            path: try TestModel.path, budgetBytes: budget, adapterPaths: [try adapterPath("sum"), try adapterPath("attn")])
        XCTAssertLessThanOrEqual(with.contextLength, bare.contextLength)
        do {
            _ = try await LanguageModel.planMemory(path: try TestModel.path, budgetBytes: budget, adapterPaths: [try adapterPath("bad-shape")])
            XCTFail("an adapter of the wrong shape was planned")
        } catch LanguageModelError.adapterMismatch {}
    }
}
