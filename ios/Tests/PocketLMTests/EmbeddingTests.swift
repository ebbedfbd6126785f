import Foundation
import PocketLM
import PocketLMTestSupport
import XCTest

/// Embeddings and the vector index from Swift, on the real all-MiniLM-L6-v2 model
/// (scripts/fetch-test-models.sh puts it beside the chat test model).
final class EmbeddingTests: XCTestCase {
    private var minilm: String {
        get throws { URL(fileURLWithPath: try TestModel.path).deletingLastPathComponent().appendingPathComponent("all-minilm-l6-v2-f16.gguf").path }
    }

    private func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { $0 * $1 }.reduce(0, +) }

    func testTextsBecomeUnitVectorsAndTheIndexFindsTheAnswer() async throws {
        let embedder = try await Embedder.load(path: try minilm, config: EmbedConfig(threads: 2))
        XCTAssertEqual(embedder.dimensions, 384)
        let chunks = [
            "Paris is the capital and largest city of France.",
            "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
            "Lithium-ion batteries last longer when kept between 20 and 80 percent.",
        ]
        let vectors = try await embedder.embed(chunks)
        XCTAssertEqual(vectors.count, 3)
        for v in vectors { XCTAssertEqual(dot(v, v), 1, accuracy: 1e-3) }
        // The published all-MiniLM-L6-v2 vector of "Hello world" starts -0.0345, 0.0310.
        let hello = try await embedder.embed(["Hello world"])[0]
        XCTAssertEqual(hello[0], -0.0345, accuracy: 2e-3)
        XCTAssertEqual(hello[1], 0.0310, accuracy: 2e-3)

        let index = try VectorIndex(dimensions: embedder.dimensions)
        for (i, (text, v)) in zip(chunks, vectors).enumerated() {
            try index.add(id: "chunk-\(i)", text: text, vector: v)
        }
        XCTAssertEqual(index.count, 3)
        let query = try await embedder.embed(["How should I charge my phone to keep its battery healthy?"])[0]
        let hits = try index.search(query, k: 2)
        XCTAssertEqual(hits[0].id, "chunk-2")
        XCTAssertGreaterThan(hits[0].score, hits[1].score)

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pocketlm-\(UUID()).idx").path
        try await index.save(to: file)
        let loaded = try await VectorIndex.load(from: file)
        XCTAssertEqual(try loaded.search(query, k: 2), hits)
        XCTAssertTrue(loaded.remove(id: "chunk-2"))
        XCTAssertFalse(loaded.remove(id: "chunk-2"))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        try bytes.prefix(40).write(to: URL(fileURLWithPath: file))
        do {
            _ = try await VectorIndex.load(from: file)
            XCTFail("a cut file must not load")
        } catch LanguageModelError.vectorIndex {}
        try? FileManager.default.removeItem(atPath: file)
        XCTAssertThrowsError(try index.add(id: "bad", text: "", vector: [0, 0, 0]))
    }

    func testBadInputAndTheWrongModelGiveTypedErrors() async throws {
        let small = try await Embedder.load(path: try minilm, config: EmbedConfig(maxTokens: 16, threads: 2))
        do {
            _ = try await small.embed(["fine", String(repeating: "word ", count: 40)])
            XCTFail("a text over max_tokens must fail")
        } catch LanguageModelError.embeddingInputTooLong(let index, _, let limit, _) {
            XCTAssertEqual(index, 1)
            XCTAssertEqual(limit, 16)
        }
        do {
            _ = try await Embedder.load(path: try TestModel.path)
            XCTFail("a chat model without a pooling must be refused")
        } catch LanguageModelError.cannotEmbed(_, let reason, _) {
            XCTAssertTrue(reason.contains("pooling"), reason)
        }
        let chat = try await Embedder.load(path: try TestModel.path, config: EmbedConfig(pooling: .mean, maxTokens: 64, threads: 2))
        XCTAssertEqual(chat.dimensions, 896)
        do {
            _ = try await LanguageModel.load(path: try minilm)
            XCTFail("an embedding model cannot chat")
        } catch LanguageModelError.notAChatModel {}
    }
}
