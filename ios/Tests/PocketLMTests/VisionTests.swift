import Foundation
import PocketLM
import PocketLMTestSupport
import XCTest

/// Images from Swift, on the shaped Gemma 3 4B layout (random weights) and its 1-block
/// projector, written by scripts/make-test-shaped-models.sh into shaped/ beside the test model.
final class VisionTests: XCTestCase {
    private func shaped(_ file: String) throws -> String {
        URL(fileURLWithPath: try TestModel.path).deletingLastPathComponent()
            .appendingPathComponent("shaped/\(file)").path
    }

    /// An 8×8 red PNG.
    private let red = Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR4nGM4ISeHFTEMLQkAkL9BAbKfPiIAAAAASUVORK5CYII=")!
    private let greedy = ConversationConfig(sampling: SamplingConfig(temperature: 0, maxTokens: 3))

    private func reply(_ stream: AsyncThrowingStream<ChatEvent, Error>) async throws -> Reply {
        for try await event in stream {
            if case .done(let reply) = event { return reply }
        }
        XCTFail("the stream ended without an answer")
        throw CancellationError()
    }

    func testAConversationTakesImagesAndTypedErrorsChangeNothing() async throws {
        let lm = try await LanguageModel.load(path: try shaped("gemma-3-4b-6layers.gguf"), config: ModelConfig(contextLength: 1024, threads: 2))
        let chat = try await lm.conversation(greedy)
        do {
            _ = try await reply(chat.send("Look", images: [red]))
            XCTFail("images without a projector must be refused")
        } catch LanguageModelError.imagesUnsupported(let reason, _) {
            XCTAssertTrue(reason.contains("projector"), reason)
        }
        let kept = await chat.messages().count
        XCTAssertEqual(kept, 0)

        let vision = try await lm.loadProjector(path: try shaped("gemma-3-4b-mmproj-1block/mmproj.gguf"))
        XCTAssertEqual(vision.info.projectorType, "gemma3")
        XCTAssertEqual(vision.info.embeddingsPerImage, 256)
        try await chat.setProjector(vision)
        // The planner counts it: with an ample budget both plans choose the same context.
        let model = try shaped("gemma-3-4b-6layers.gguf")
        let plain = try await LanguageModel.planMemory(path: model, budgetBytes: 64 << 30)
        let seeing = try await LanguageModel.planMemory(
            path: model, budgetBytes: 64 << 30, adapterPaths: [], projectorPath: try shaped("gemma-3-4b-mmproj-1block/mmproj.gguf"))
        XCTAssertEqual(seeing.contextLength, plain.contextLength)
        XCTAssertEqual(seeing.predictedPeakBytes, plain.predictedPeakBytes + vision.info.memoryBytes)
        do {
            _ = try await reply(chat.send("Look", images: [red, Data("GIF89a".utf8)]))
            XCTFail("a GIF must be refused")
        } catch LanguageModelError.invalidImage(let index, _, _) {
            XCTAssertEqual(index, 1)
        }
        let stillKept = await chat.messages().count
        XCTAssertEqual(stillKept, 0)

        let first = try await reply(chat.send("What is in the picture?", images: [red]))
        XCTAssertGreaterThanOrEqual(first.metrics.promptTokensEvaluated, vision.info.tokensPerImage)
        let second = try await chat.ask("And its colours?")
        XCTAssertGreaterThanOrEqual(second.metrics.promptTokensReused, first.metrics.promptTokensEvaluated)
        XCTAssertLessThan(second.metrics.promptTokensEvaluated, vision.info.tokensPerImage)

        do {
            _ = try await lm.loadProjector(path: try shaped("gemma-3-4b-mmproj-1block/bad-key-type.gguf"))
            XCTFail("a malformed projector must be refused")
        } catch LanguageModelError.projectorMismatch(_, let reason, _) {
            XCTAssertTrue(reason.contains("clip.vision.image_size"), reason)
        }
    }
}
