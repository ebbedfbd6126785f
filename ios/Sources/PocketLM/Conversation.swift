import PocketLMFFI

/// A multi-turn chat. Each turn evaluates only what is new since the cached
/// prefix. Requests on one conversation run one after another.
public final class Conversation: Sendable {
    private let inner: PocketConversation

    init(_ inner: PocketConversation) {
        self.inner = inner
    }

    /// The context window in tokens (fixed; safe to read on the main actor at any time).
    public var contextLength: Int32 { inner.contextLength() }

    /// Sends `text` and streams the answer: `.delta`s, then one `.done`.
    /// Cancelling the iterating `Task` stops generation within one decode step;
    /// the partial answer stays in the history. Errors are ``LanguageModelError``.
    public func send(_ text: String) -> AsyncThrowingStream<ChatEvent, Error> {
        // Unbounded: a slow consumer never loses text nor stalls decoding.
        AsyncThrowingStream(bufferingPolicy: .unbounded) { continuation in
            let handle = inner.send(text: text, listener: StreamListener(continuation))
            continuation.onTermination = { _ in handle.cancel() }
        }
    }

    /// Sends `text` and waits for the whole answer (cancellable like ``send(_:)``).
    public func ask(_ text: String) async throws -> Reply {
        for try await event in send(text) {
            if case .done(let reply) = event {
                return reply
            }
        }
        throw CancellationError()
    }

    /// The messages so far, system prompt first. Returns at once, also during an
    /// answer: it then includes the message being answered and the text generated
    /// so far. When an answer ends it is the engine's history (a cancelled answer
    /// keeps its partial text, a failed request is rolled back).
    public func messages() async -> [ChatMessage] {
        inner.messages()
    }

    /// Forgets everything but the system prompt (waits for a running answer,
    /// on PocketLM's own thread).
    public func reset() async {
        let inner = self.inner
        await Blocking.run { inner.reset() }
    }

    /// Changes sampling for the next answers (waits for a running answer,
    /// on PocketLM's own thread).
    public func setSampling(_ sampling: SamplingConfig) async throws {
        let inner = self.inner
        try await Blocking.run { try inner.setSampling(sampling: sampling) }
    }
}

private final class StreamListener: ReplyListener {
    private let continuation: AsyncThrowingStream<ChatEvent, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<ChatEvent, Error>.Continuation) {
        self.continuation = continuation
    }

    func onDelta(text: String) {
        continuation.yield(.delta(text))
    }

    func onComplete(reply: Reply) {
        continuation.yield(.done(reply))
        continuation.finish()
    }

    func onError(error: FfiError) {
        continuation.finish(throwing: LanguageModelError(error))
    }
}
