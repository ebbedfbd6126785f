import Foundation
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
        stream { inner.send(text: text, listener: $0) }
    }

    /// Like ``send(_:)``, with a constraint on the answer or tools the model may
    /// call: a JSON answer also streams `.snapshot`s, calls arrive as `.toolCall`
    /// and in the reply's `toolCalls`.
    public func send(_ text: String, options: RequestOptions) -> AsyncThrowingStream<ChatEvent, Error> {
        stream { inner.sendWith(text: text, options: options, listener: $0) }
    }

    /// Like ``send(_:options:)``, with `images` the user sent along: the encoded bytes of JPEG
    /// or PNG files, placed before the text in order, decoded on PocketLM's own thread. Needs a
    /// projector (``setProjector(_:)``); without one, or with a bad image, the stream throws
    /// ``LanguageModelError/imagesUnsupported(reason:message:)`` or
    /// ``LanguageModelError/invalidImage(index:reason:message:)`` and the history is unchanged.
    public func send(_ text: String, images: [Data], options: RequestOptions = .plain) -> AsyncThrowingStream<ChatEvent, Error> {
        stream { inner.sendWithImages(text: text, images: images, options: options, listener: $0) }
    }

    /// Answers the last reply's tool calls with their `results` (one per call)
    /// and streams what comes next.
    public func sendToolResults(_ results: [ToolResult], options: RequestOptions = .plain) -> AsyncThrowingStream<ChatEvent, Error> {
        stream { inner.sendToolResults(results: results, options: options, listener: $0) }
    }

    /// Answers the last user message again, replacing its answer, and streams
    /// the new one. Stopped or failed before any text, the previous answer stays.
    public func regenerate(options: RequestOptions = .plain) -> AsyncThrowingStream<ChatEvent, Error> {
        stream { inner.regenerate(options: options, listener: $0) }
    }

    /// Replaces the last user message with `text` (dropping its answer) and
    /// streams the answer to it: the "edit" of a chat app. The KV cache keeps
    /// everything before that message. Without a user message it is a plain send.
    public func editLastMessage(_ text: String, options: RequestOptions = .plain) -> AsyncThrowingStream<ChatEvent, Error> {
        stream { inner.editLastMessage(text: text, options: options, listener: $0) }
    }

    /// Keeps only the first `count` messages (the system prompt counts); waits
    /// for a running answer, on PocketLM's own thread.
    public func truncate(_ count: Int) async {
        let inner = self.inner
        await Blocking.run { inner.truncate(len: UInt32(max(0, count))) }
    }

    private func stream(_ start: (ReplyListener) -> GenerationHandle) -> AsyncThrowingStream<ChatEvent, Error> {
        // Unbounded: a slow consumer never loses text nor stalls decoding.
        AsyncThrowingStream(bufferingPolicy: .unbounded) { continuation in
            let handle = start(StreamListener(continuation))
            continuation.onTermination = { _ in handle.cancel() }
        }
    }

    /// Like ``ask(_:)``, with `options`.
    public func ask(_ text: String, options: RequestOptions) async throws -> Reply {
        try await Self.reply(of: send(text, options: options))
    }

    /// The reply that ends `events`, passing every event to `onEvent`.
    static func reply(of events: AsyncThrowingStream<ChatEvent, Error>, onEvent: (ChatEvent) -> Void = { _ in }) async throws -> Reply {
        for try await event in events {
            onEvent(event)
            if case .done(let reply) = event {
                return reply
            }
        }
        throw CancellationError()
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

    /// Sets the LoRA adapters the next answers use, each with its scale (1: as trained, 0: off),
    /// replacing those set before; an empty dictionary detaches them all. The history is kept;
    /// when the adapters in effect change, the next answer re-reads it. Waits for a running
    /// answer, on PocketLM's own thread.
    /// - Throws: ``LanguageModelError/adapterMismatch(path:reason:message:)`` for an adapter loaded
    ///   onto another model, ``LanguageModelError/invalidOption(name:value:expected:message:)`` for
    ///   a scale that is not a finite number.
    public func setAdapters(_ adapters: [LoraAdapter: Float]) async throws {
        let inner = self.inner
        let settings = adapters.map { AdapterSetting(adapter: $0.key.adapter, scale: $0.value) }
        try await Blocking.run { try inner.setAdapters(adapters: settings) }
    }

    /// Lets the conversation see images through `projector` (loaded for its model), or stops
    /// it with `nil` (waits for a running answer, on PocketLM's own thread).
    /// - Throws: ``LanguageModelError/projectorMismatch(path:reason:message:)`` for a projector
    ///   of another model, ``LanguageModelError/imagesUnsupported(reason:message:)`` when the
    ///   batch size is smaller than an image.
    public func setProjector(_ projector: VisionProjector?) async throws {
        let inner = self.inner
        let raw = projector?.projector
        try await Blocking.run { try inner.setProjector(projector: raw) }
    }

    /// Changes sampling for the next answers (waits for a running answer,
    /// on PocketLM's own thread).
    public func setSampling(_ sampling: SamplingConfig) async throws {
        let inner = self.inner
        try await Blocking.run { try inner.setSampling(sampling: sampling) }
    }

    /// Saves the messages and the KV cache to `url`, atomically (a kill mid-save
    /// keeps the previous file). Call it after each answer; it waits for a running one.
    @discardableResult
    public func save(to url: URL) async throws -> SavedSession {
        let inner = self.inner
        let path = url.path
        return try await Blocking.run { try inner.save(path: path) }
    }

    /// Restores a conversation saved by ``save(to:)`` (after the app was killed,
    /// say): its messages and its KV cache, so the next answer evaluates only the
    /// new text.
    ///
    /// A file from another model, chat template, context setting or PocketLM
    /// build, or one damaged or cut short, cannot give back its cache: with
    /// `fallBackToTranscript` (the default) the messages are restored anyway when
    /// they are intact, the next answer re-reads them, and `fallbackKind` says
    /// why; otherwise it throws ``LanguageModelError/session(kind:transcriptUsable:detail:message:)``
    /// and keeps the messages as they were (the KV cache may have been cleared:
    /// the next answer re-reads them).
    @discardableResult
    public func restore(from url: URL, fallBackToTranscript: Bool = true) async throws -> RestoredSession {
        let inner = self.inner
        let path = url.path
        return try await Blocking.run { try inner.restore(path: path, fallBackToTranscript: fallBackToTranscript) }
    }

    /// Restores only the messages of a session file (saved with any model); the
    /// next answer re-reads them.
    @discardableResult
    public func restoreTranscript(from url: URL) async throws -> RestoredSession {
        let inner = self.inner
        let path = url.path
        return try await Blocking.run { try inner.restoreTranscript(path: path) }
    }

    /// A saved conversation's messages and save time, read without loading a
    /// model (for a list of conversations).
    public static func summary(of url: URL) async throws -> SessionSummary {
        let path = url.path
        return try await Blocking.run { try readSessionSummary(path: path) }
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

    func onSnapshot(json: String) {
        continuation.yield(.snapshot(json))
    }

    func onToolCall(call: ToolCall) {
        continuation.yield(.toolCall(call))
    }

    func onComplete(reply: Reply) {
        continuation.yield(.done(reply))
        continuation.finish()
    }

    func onError(error: FfiError) {
        continuation.finish(throwing: LanguageModelError(error))
    }
}
