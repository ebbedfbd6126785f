import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A file server on loopback (plain sockets, one request per connection) that
/// honours `Range`, serves 64 KiB every `delayMs` (changeable while it runs), and records each request's range.
public final class RangeServer: @unchecked Sendable {
    /// The port it listens on.
    public let port: UInt16
    private let listener: Int32
    private let body: [UInt8]
    private var pause: UInt32
    private let lock = NSLock()
    private var seen: [String?] = []

    /// Serves `body` at /model.gguf.
    public init(body: [UInt8], delayMs: UInt32 = 0) {
        self.body = body
        pause = delayMs
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
            let delay = delayMs
            if delay > 0 { usleep(delay * 1000) }
        }
    }
}
