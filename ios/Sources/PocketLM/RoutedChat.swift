import Foundation
import PocketLMFFI

/// A chat answered on the device or, when ``RouterConfig`` allows it, by an
/// OpenAI-compatible cloud model. Nothing leaves the device under
/// `.localOnly` or with `RouteRequest(allowCloud: false)`.
public final class RoutedChat: Sendable {
    private let inner: RoutedConversation

    /// Loads the model at `modelPath` and routes over it. A model that cannot
    /// load is not an error here: the router escalates with that reason when
    /// the policy allows it. `redact` sees every message before it leaves.
    public static func open(
        modelPath: String,
        router: RouterConfig,
        modelConfig: ModelConfig = ModelConfig(),
        conversation: ConversationConfig = ConversationConfig(),
        redact: (@Sendable (_ role: String, _ content: String) -> String)? = nil
    ) async throws -> RoutedChat {
        let redactor = redact.map { ClosureRedactor($0) }
        return try await Blocking.run {
            RoutedChat(try RoutedConversation.open(
                modelPath: modelPath, modelConfig: modelConfig, conversation: conversation,
                router: router, redactor: redactor))
        }
    }

    init(_ inner: RoutedConversation) {
        self.inner = inner
    }

    /// Why the device model is unavailable, or nil when it is loaded (fixed when
    /// opened; returns at once).
    public var deviceError: String? { inner.deviceError() }

    /// Cloud money spent so far. Returns at once; a running request's cost is
    /// added when it ends, before its `.done`.
    public var totalCloudCost: Double { inner.totalCloudCost() }

    /// Sends `text` and streams the answer; cancelling the `Task` stops it.
    /// `request.options` asks for structured output or offers tools, on
    /// whichever side answers.
    public func send(_ text: String, request: RouteRequest = RouteRequest()) -> AsyncThrowingStream<RouteEvent, Error> {
        stream { inner.send(text: text, request: request, listener: $0) }
    }

    /// Answers the last reply's tool calls with their `results` (one per
    /// call); the side that made the calls streams what comes next.
    public func sendToolResults(_ results: [ToolResult], request: RouteRequest = RouteRequest()) -> AsyncThrowingStream<RouteEvent, Error> {
        stream { inner.sendToolResults(results: results, request: request, listener: $0) }
    }

    /// Answers the last user message again by the policy, replacing its answer;
    /// stopped before any text, the previous answer stays.
    public func regenerate(request: RouteRequest = RouteRequest()) -> AsyncThrowingStream<RouteEvent, Error> {
        stream { inner.regenerate(request: request, listener: $0) }
    }

    /// Replaces the last user message with `text` (dropping its answer) and
    /// streams the answer to it.
    public func editLastMessage(_ text: String, request: RouteRequest = RouteRequest()) -> AsyncThrowingStream<RouteEvent, Error> {
        stream { inner.editLastMessage(text: text, request: request, listener: $0) }
    }

    /// Saves the history and the device model's KV cache to `url`, atomically,
    /// like ``Conversation/save(to:)``; waits for a running answer. Without a
    /// device model it throws the load error.
    @discardableResult
    public func save(to url: URL) async throws -> SavedSession {
        let inner = self.inner
        let path = url.path
        return try await Blocking.run { try inner.save(path: path) }
    }

    /// Restores a conversation saved by ``save(to:)`` or ``Conversation/save(to:)``:
    /// the history, and the device's KV cache when the file matches (else
    /// `fallbackKind` says why, and the next device answer re-reads the history).
    @discardableResult
    public func restore(from url: URL) async throws -> RestoredSession {
        let inner = self.inner
        let path = url.path
        return try await Blocking.run { try inner.restore(path: path) }
    }

    private func stream(_ start: (RouteListener) -> GenerationHandle) -> AsyncThrowingStream<RouteEvent, Error> {
        AsyncThrowingStream(bufferingPolicy: .unbounded) { continuation in
            let handle = start(RouteStreamListener(continuation))
            continuation.onTermination = { _ in handle.cancel() }
        }
    }

    /// Sends `text` and waits for the whole routed answer.
    public func ask(_ text: String, request: RouteRequest = RouteRequest()) async throws -> RoutedReply {
        for try await event in send(text, request: request) {
            if case .done(let reply) = event {
                return reply
            }
        }
        throw CancellationError()
    }

    /// The history, whichever side answered each turn. Returns at once, also
    /// during an answer: it then includes the message being answered and the text
    /// streamed so far (dropped on a `.restart`). When an answer ends it is the
    /// router's history.
    public func messages() async -> [ChatMessage] {
        inner.messages()
    }
}

final class ClosureRedactor: Redactor {
    private let redactContent: @Sendable (String, String) -> String

    init(_ redact: @escaping @Sendable (String, String) -> String) {
        redactContent = redact
    }

    func redact(role: String, content: String) -> String {
        redactContent(role, content)
    }
}

private final class RouteStreamListener: RouteListener {
    private let continuation: AsyncThrowingStream<RouteEvent, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<RouteEvent, Error>.Continuation) {
        self.continuation = continuation
    }

    func onText(text: String) {
        continuation.yield(.text(text))
    }

    func onRestart(reason: RouteReason) {
        continuation.yield(.restart(reason))
    }

    func onToolCall(call: ToolCall) {
        continuation.yield(.toolCall(call))
    }

    func onComplete(reply: RoutedReply) {
        continuation.yield(.done(reply))
        continuation.finish()
    }

    func onError(error: FfiError) {
        continuation.finish(throwing: LanguageModelError(error))
    }
}
