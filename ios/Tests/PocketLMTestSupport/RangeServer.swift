import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A file server on loopback (plain sockets, one request per connection) that
/// honours `Range`, serves 64 KiB every `delayMs` (changeable while it runs), and records each request's range.
public final class RangeServer: LoopbackServer, @unchecked Sendable {
    private let body: [UInt8]
    private var pause: UInt32
    private let lock = NSLock()
    private var seen: [String?] = []

    /// Serves `body` at /model.gguf.
    public init(body: [UInt8], delayMs: UInt32 = 0) {
        self.body = body
        pause = delayMs
        super.init()
    }

    /// The file's URL.
    public var url: String { "http://127.0.0.1:\(port)/model.gguf" }

    /// The pause after each 64 KiB, in milliseconds.
    public var delayMs: UInt32 {
        get {
            lock.lock()
            defer { lock.unlock() }
            return pause
        }
        set {
            lock.lock()
            pause = newValue
            lock.unlock()
        }
    }

    /// The `Range` header of each request so far (nil: none).
    public var ranges: [String?] {
        lock.lock()
        defer { lock.unlock() }
        return seen
    }

    override func serve(_ client: Int32, head: String, body _: [UInt8]) {
        let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
        let range = Self.header("Range", in: head)
        lock.lock()
        seen.append(range)
        lock.unlock()
        guard path == "/model.gguf" else {
            _ = write(client, Array("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)[...])
            return
        }
        let from = range.flatMap { Int($0.dropFirst("bytes=".count).prefix { $0 != "-" }) } ?? 0
        var head = range == nil ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes \(from)-\(body.count - 1)/\(body.count)\r\n"
        head += "Content-Length: \(body.count - from)\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n"
        guard write(client, Array(head.utf8)[...]) else { return }
        var at = from
        while at < body.count {
            let end = min(at + 65536, body.count)
            guard write(client, body[at..<end]) else { return }
            at = end
            let delay = delayMs
            if delay > 0 { usleep(delay * 1000) }
        }
    }
}
