import Foundation
import PocketLM
import PocketLMTestSupport
import XCTest

/// The catalog and recommendations from Swift, and an app's own entry downloaded from loopback.
final class CatalogTests: XCTestCase {
    private let gib: Int64 = 1 << 30

    func testTheBuiltinCatalogRecommendsWhatFitsLargestFirst() throws {
        let catalog = ModelCatalog.builtin()
        XCTAssertGreaterThanOrEqual(catalog.entries.count, 8)
        XCTAssertNotNil(catalog["gemma-3-1b-it-q4_k_m"])
        let small = try catalog.recommend(budgetBytes: 2 * gib, contextLength: 4096)
        let fitting = Array(small.prefix { $0.fits })
        XCTAssertFalse(fitting.isEmpty)
        XCTAssertLessThan(fitting.count, small.count)
        XCTAssertTrue(zip(fitting, fitting.dropFirst()).allSatisfy { $0.weightsBytes >= $1.weightsBytes })
        XCTAssertTrue(fitting.allSatisfy { $0.plan!.predictedPeakBytes <= 2 * gib * 95 / 100 })
        XCTAssertTrue(small.dropFirst(fitting.count).allSatisfy { !$0.fits && $0.reason != nil })
        let all = try catalog.recommend(budgetBytes: 8 * gib, contextLength: 4096)
        XCTAssertTrue(all.allSatisfy { $0.fits })
        XCTAssertGreaterThan(ModelCatalog.availableMemory(), 0)
        XCTAssertThrowsError(try catalog.recommend(budgetBytes: -1)) { error in
            guard case LanguageModelError.invalidOption(let name, _, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "budget_bytes")
        }
    }

    func testABadEntryIsRefusedAndTheCatalogRoundTripsThroughJson() throws {
        let catalog = ModelCatalog.builtin()
        var bad = catalog.entries[0]
        bad.id = "Not An Id"
        XCTAssertThrowsError(try catalog.add(bad)) { error in
            guard case LanguageModelError.invalidOption = error else { return XCTFail("\(error)") }
        }
        let copy = try ModelCatalog(json: catalog.json())
        XCTAssertEqual(copy.entries, catalog.entries)
        XCTAssertThrowsError(try ModelCatalog(json: #"{"version": 9, "models": []}"#))
    }

    func testAnAppEntryIsRecommendedAndDownloadedVerified() async throws {
        let body: [UInt8] = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        // SHA-256 of that body (computed outside the test; a mismatch fails the download).
        let sha = "172c15dc2e12b50e523d8e657cbe7fbb11c1053252bbf1e1431077d57d8128fd"
        let server = RangeServer(body: body)
        let catalog = ModelCatalog.builtin()
        var entry = try XCTUnwrap(catalog["qwen2.5-0.5b-instruct-q4_k_m"])
        entry.id = "my-model"
        entry.file = CatalogFile(url: server.url, fileName: "my-model.gguf", size: Int64(body.count), sha256: sha)
        try catalog.add(entry)
        let mine = try XCTUnwrap(try catalog.recommend(budgetBytes: gib, contextLength: 2048).first { $0.id == "my-model" })
        XCTAssertTrue(mine.fits)
        XCTAssertEqual(mine.downloadBytes, Int64(body.count))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pocketlm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let downloads = try ModelDownloads(directory: dir.path)
        let installed = try await downloads.download(try XCTUnwrap(catalog["my-model"])).value()
        XCTAssertEqual(installed.size, Int64(body.count))
        XCTAssertEqual(installed.sha256, sha)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: installed.path)), Data(body))
    }
}
