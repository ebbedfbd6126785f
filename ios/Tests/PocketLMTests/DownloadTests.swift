import Foundation
import PocketLM
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A file server on loopback (plain sockets, one request per connection) that
/// honours `Range`, serves 64 KiB every `delayMs`, and records each request's range.
final class RangeServer: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let body: [UInt8]
    private let delayMs: UInt32
    private let lock = NSLock()
    private var seen: [String?] = []

    init(body: [UInt8], delayMs: UInt32 = 0) {
        self.body = body
        self.delayMs = delayMs
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = listener
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        precondition(bound == 0 && listen(fd, 16) == 0, "cannot listen on loopback")
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = UInt16(bigEndian: addr.sin_port)
        Thread { [self] in acceptLoop() }.start()
    }

    var url: String { "http://127.0.0.1:\(port)/model.gguf" }

    /// The `Range` header of each request so far (nil: none).
    var ranges: [String?] {
        lock.lock()
        defer { lock.unlock() }
        return seen
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            Thread { [self] in serve(client) }.start()
        }
    }

    private func write(_ client: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) == $0.count }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: request, as: UTF8.self).contains("\r\n\r\n") {
            let n = recv(client, &buffer, buffer.count, 0)
            if n <= 0 { return }
            request += buffer[0..<n]
        }
        let text = String(decoding: request, as: UTF8.self)
        let path = text.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
        let range = text.components(separatedBy: "\r\n")
            .first { $0.lowercased().hasPrefix("range:") }
            .map { $0.dropFirst(6).trimmingCharacters(in: .whitespaces) }
        lock.lock()
        seen.append(range)
        lock.unlock()
        guard path == "/model.gguf" else {
            _ = write(client, Array("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)[...])
            return
        }
        let from = range.flatMap { Int($0.dropFirst("bytes=".count).dropLast()) } ?? 0
        var head = range == nil ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes \(from)-\(body.count - 1)/\(body.count)\r\n"
        head += "Content-Length: \(body.count - from)\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n"
        guard write(client, Array(head.utf8)[...]) else { return }
        var at = from
        while at < body.count {
            let end = min(at + 65536, body.count)
            guard write(client, body[at..<end]) else { return }
            at = end
            if delayMs > 0 { usleep(delayMs * 1000) }
        }
    }
}

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
