import Foundation
import PocketLM
import PocketLMTestSupport
import XCTest

/// Model downloads from Swift against a real HTTP server on loopback.
final class DownloadTests: XCTestCase {
    private let body: [UInt8] = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 9)) }

    private func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pocketlm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }

    func testADownloadReportsProgressVerifiesAndIsListed() async throws {
        let server = RangeServer(body: body)
        let downloads = try ModelDownloads(directory: try directory())
        var states: [DownloadState] = []
        var installed: InstalledModel?
        for try await event in downloads.download(DownloadRequest(url: server.url, fileName: "model.gguf")).events {
            switch event {
            case .progress(let p): states.append(p.state)
            case .done(let model): installed = model
            }
        }
        let model = try XCTUnwrap(installed)
        XCTAssertEqual(states.first, .queued)
        XCTAssertEqual(states.last, .done)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: model.path)), Data(body))
        XCTAssertEqual(model.sha256?.count, 64)
        let listed = try await downloads.installed()
        XCTAssertEqual(listed, [model])
        let deleted = try await downloads.delete("model.gguf")
        XCTAssertTrue(deleted)
    }

    func testCancellingTheTaskKeepsThePartAndANewDownloadResumesIt() async throws {
        let server = RangeServer(body: body, delayMs: 15)
        let downloads = try ModelDownloads(directory: try directory(), options: DownloadOptions(readTimeoutMs: 5000))
        let request = DownloadRequest(url: server.url, fileName: "model.gguf")
        let first = Task {
            for try await event in downloads.download(request).events {
                if case .progress(let p) = event, p.downloaded > 300_000 { return }
            }
        }
        try await first.value
        let listed = try await downloads.installed()
        XCTAssertTrue(listed.isEmpty)
        // The cancelled download flushes its part as it stops.
        for _ in 0..<100 where downloads.usedBytes <= 300_000 {
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTAssertGreaterThan(downloads.usedBytes, 300_000, "the part is kept")
        let model = try await downloads.download(request).value()
        XCTAssertEqual(model.size, Int64(body.count))
        let resumed = try XCTUnwrap(server.ranges.last ?? nil)
        let from = Int(resumed.dropFirst("bytes=".count).dropLast()) ?? 0
        XCTAssertGreaterThan(from, 300_000, resumed)
    }

    func testAMissingFileIsATypedError() async throws {
        let server = RangeServer(body: body)
        let downloads = try ModelDownloads(directory: try directory())
        let url = "http://127.0.0.1:\(server.port)/missing.gguf"
        do {
            _ = try await downloads.download(DownloadRequest(url: url, fileName: "missing.gguf")).value()
            XCTFail("a missing file must fail")
        } catch LanguageModelError.download(let kind, let transient, _, let message) {
            XCTAssertEqual(kind, .notFound)
            XCTAssertFalse(transient)
            XCTAssertTrue(message.contains("URL"), message)
        }
    }

    func testAFileDownloadedByOtherMeansIsVerifiedBeforeItIsAdopted() async throws {
        let downloads = try ModelDownloads(directory: try directory())
        let source = try directory() + "/CFNetworkDownload.tmp"
        try Data(body).write(to: URL(fileURLWithPath: source))
        do {
            _ = try await downloads.adopt(path: source, fileName: "model.gguf", sha256: String(repeating: "0", count: 64))
            XCTFail("a wrong hash must fail")
        } catch LanguageModelError.download(let kind, _, _, _) {
            XCTAssertEqual(kind, .hashMismatch)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: source))
        let model = try await downloads.adopt(path: source, fileName: "model.gguf", sha256: nil)
        XCTAssertEqual(model.size, Int64(body.count))
        XCTAssertEqual(model.sha256?.count, 64)
    }
}
