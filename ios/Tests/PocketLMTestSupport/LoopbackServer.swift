import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/1.1 server on loopback with plain sockets, one request per
/// connection, each on its own thread: the base of the test servers.
public class LoopbackServer: @unchecked Sendable {
    /// The port it listens on.
    public let port: UInt16
    private let listener: Int32

    init() {
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

    /// Answers one request: `head` is the request line and headers, `body` what
    /// followed them (all of it when the request has a `Content-Length`).
    func serve(_ client: Int32, head: String, body: [UInt8]) {}

    /// Sends `bytes`; false when the client hung up.
    func write(_ client: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) == $0.count }
    }

    /// The value of header `name` in `head`, if present.
    static func header(_ name: String, in head: String) -> String? {
        head.components(separatedBy: "\r\n")
            .first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
            .map { $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces) }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            Thread { [self] in read(client) }.start()
        }
    }

    private func read(_ client: Int32) {
        defer { close(client) }
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        let separator = Array("\r\n\r\n".utf8)
        var end: Int?
        while end == nil {
            let n = recv(client, &buffer, buffer.count, 0)
            if n <= 0 { return }
            request += buffer[0..<n]
            end = request.indices.dropLast(3).first { Array(request[$0..<$0 + 4]) == separator }
        }
        let head = String(decoding: request[..<end!], as: UTF8.self)
        var body = Array(request[(end! + 4)...])
        let length = Self.header("Content-Length", in: head).flatMap { Int($0) } ?? 0
        while body.count < length {
            let n = recv(client, &buffer, buffer.count, 0)
            if n <= 0 { return }
            body += buffer[0..<n]
        }
        serve(client, head: head, body: body)
    }
}

/// An OpenAI-style chat completions endpoint on loopback that streams a fixed
/// answer as server-sent events, and records each request's body and
/// `Authorization` header.
public final class CloudServer: LoopbackServer, @unchecked Sendable {
    private let parts: [String]
    private let lock = NSLock()
    private var seen: [(body: String, authorization: String?)] = []

    /// Answers every request with `parts`, streamed one event each.
    public init(answer parts: [String]) {
        self.parts = parts
        super.init()
    }

    /// The API base URL (`…/v1`).
    public var url: String { "http://127.0.0.1:\(port)/v1" }

    /// Each request so far: its body and its `Authorization` header.
    public var requests: [(body: String, authorization: String?)] {
        lock.lock()
        defer { lock.unlock() }
        return seen
    }

    override func serve(_ client: Int32, head: String, body: [UInt8]) {
        lock.lock()
        seen.append((String(decoding: body, as: UTF8.self), Self.header("Authorization", in: head)))
        lock.unlock()
        var events = ""
        for part in parts {
            let content = String(decoding: try! JSONEncoder().encode(part), as: UTF8.self)
            events += "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\(content)},\"finish_reason\":null}]}\n\n"
        }
        events += "data: [DONE]\n\n"
        let response = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n" + events
        _ = write(client, Array(response.utf8)[...])
    }
}
