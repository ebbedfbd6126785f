import Foundation
#if canImport(Combine)
import Combine
#endif
import PocketLM

/// The model behind the chat screen.
public enum ModelStatus: Equatable, Sendable {
    /// No model chosen yet.
    case none
    /// Loading, `fraction` done.
    case loading(Float)
    /// Loaded and ready to answer.
    case ready(name: String)
    /// Unloaded to give memory back (a memory warning); reloads when the app returns.
    case unloaded
    /// Loading failed; the message says why and what to do.
    case failed(String)
}

/// The per-answer figures the chat shows under an answer.
public struct AnswerStats: Equatable, Sendable {
    public let ttftMs: Double
    public let tokensPerSecond: Double
    public let promptTokensReused: Int32
    public let promptTokensEvaluated: Int32
    /// True when the phone answered (the "device" badge); false for the cloud.
    public let onDevice: Bool
    public let stopReason: String
}

/// One bubble: a message and, for answers given in this run, its figures.
public struct UIMessage: Equatable, Sendable {
    public let role: Role
    public var text: String
    public var stats: AnswerStats?
}

/// The chat screen: loads a model, streams answers, stops, regenerates and
/// edits, saves every conversation to a ``ConversationStore`` after each
/// answer, and follows the app's lifecycle (stop in the background, unload on
/// a memory warning, reload and restore on return). Engine work runs on
/// PocketLM's own threads; the main actor only updates state.
@MainActor
public final class ChatModel: ObservableObject {
    @Published public private(set) var model = ModelStatus.none
    /// The model file in use (or to reload), for the model screen's "in use" mark.
    @Published public private(set) var modelPath: String?
    @Published public private(set) var conversationId: String?
    @Published public private(set) var messages: [UIMessage] = []
    @Published public private(set) var streaming = false
    /// The last problem, to show once (a failed answer, a damaged session file).
    @Published public var error: String?
    /// Tokens the last open took from the saved cache instead of re-evaluating (nil: nothing restored).
    @Published public private(set) var restoredCachedTokens: Int32?
    /// A model or conversation is being loaded, opened, saved or unloaded.
    @Published public private(set) var busy = false
    /// Text the user sent that did not make it into the conversation (the
    /// request failed first): put it back in the input with ``takeUnsent()``.
    @Published public private(set) var unsent: String?

    private let store: ConversationStore
    private let settings: () -> ChatSettings
    private var languageModel: LanguageModel?
    private var chat: ChatEngine?
    private var queue: Task<Void, Never>?
    private var answering: Task<Void, Never>?

    private let cloudKey: () -> String?

    /// A chat saving to `store`, configured by `settings` (read when a model
    /// loads or a conversation opens), with `cloudKey` (from the Keychain) for
    /// routed conversations.
    public init(store: ConversationStore, settings: @escaping () -> ChatSettings, cloudKey: @escaping () -> String? = { nil }) {
        self.store = store
        self.settings = settings
        self.cloudKey = cloudKey
    }

    /// Runs `body` after every earlier model or conversation change has finished
    /// (a memory warning during a load waits for the load, then unloads).
    private func serially(_ body: @escaping @MainActor () async -> Void) async {
        let previous = queue
        let task = Task { @MainActor in
            await previous?.value
            self.busy = true
            await body()
            self.busy = false
        }
        queue = task
        await task.value
    }

    /// Loads the model at `path` (dropping any other) and opens a new conversation.
    public func load(path: String) async {
        await serially { [self] in
            await stopAndWait()
            closeEngine()
            modelPath = path
            if await loadModel() { await openConversation(store.newId(), restore: false) }
        }
    }

    /// Whether a message can be sent now (a model ready, a conversation open, no answer running).
    public var canSend: Bool {
        if case .ready = model { return conversationId != nil && chat != nil && !streaming && !busy }
        return false
    }

    /// Takes ``unsent`` (to put it back in the input), clearing it.
    public func takeUnsent() -> String? {
        defer { unsent = nil }
        return unsent
    }

    /// Reopens the model and conversation that were on screen when the app last
    /// ran (after the system killed it, say); nothing when there were none, a
    /// model is already loaded, or that model file is gone.
    public func resumeLast() async {
        await serially { [self] in
            guard languageModel == nil, model == .none || model == .unloaded, let last = store.lastOpened(),
                  FileManager.default.fileExists(atPath: last.modelPath) else { return }
            modelPath = last.modelPath
            if await loadModel() { await openConversation(last.id, restore: true) }
        }
    }

    /// The error was shown: clear it.
    public func dismissError() {
        error = nil
    }

    /// Starts a new, empty conversation on the loaded model.
    public func newConversation() async {
        await serially { [self] in
            await stopAndWait()
            if languageModel != nil { await openConversation(store.newId(), restore: false) }
        }
    }

    /// Opens saved conversation `id`: its cache when the file matches this model, else its transcript.
    public func open(_ id: String) async {
        await serially { [self] in
            await stopAndWait()
            if languageModel != nil { await openConversation(id, restore: true) }
        }
    }

    /// Sends `text`; the answer streams into ``messages``. False when it was not
    /// taken (see ``canSend``): keep the text in the input then. If the request
    /// fails before the text joins the conversation, it comes back as ``unsent``.
    @discardableResult
    public func send(_ text: String) -> Bool {
        answer(text, { $0 + [UIMessage(role: .user, text: text)] }) { $0.send(text) }
    }

    /// Answers the last message again, replacing its answer; false when not taken.
    @discardableResult
    public func regenerate() -> Bool {
        answer(nil, { $0.last?.role == .assistant ? Array($0.dropLast()) : $0 }) { $0.regenerate() }
    }

    /// Replaces the last user message with `text` (dropping its answer) and answers it; false when not taken.
    @discardableResult
    public func editLast(_ text: String) -> Bool {
        answer(text, { shown in
            let kept = shown.lastIndex { $0.role == .user }.map { Array(shown[..<$0]) } ?? shown
            return kept + [UIMessage(role: .user, text: text)]
        }) { $0.editLast(text) }
    }

    /// Stops the running answer; the text shown so far stays, and is saved.
    public func stop() {
        answering?.cancel()
    }

    /// Waits for the running answer (and its save) to finish.
    public func settle() async {
        await answering?.value
    }

    /// The app left the foreground: stop generating (an iOS app may not use the GPU in the background) and save.
    public func onBackground() async {
        await serially { [self] in
            await stopAndWait()
            await save()
        }
    }

    /// A memory warning (`didReceiveMemoryWarning`): stop, save and unload; ``onForeground()`` reloads.
    public func onMemoryWarning() async {
        await serially { [self] in
            await stopAndWait()
            guard languageModel != nil else { return }
            await save()
            closeEngine()
            model = .unloaded
        }
    }

    /// The app is back: reload an unloaded model and restore the conversation from its file.
    public func onForeground() async {
        await serially { [self] in
            guard model == .unloaded else { return }
            let id = conversationId
            if await loadModel() { await openConversation(id ?? store.newId(), restore: id != nil) }
        }
    }

    /// Frees the model.
    public func close() {
        // A running answer keeps its engine until its own clean-up has saved it.
        answering?.cancel()
        closeEngine()
    }

    private func answer(
        _ typed: String?, _ shownAtOnce: ([UIMessage]) -> [UIMessage], _ start: @escaping (ChatEngine) -> AsyncThrowingStream<Answered, Error>
    ) -> Bool {
        guard canSend, let engine = chat, let id = conversationId else { return false }
        messages = shownAtOnce(messages)
        streaming = true
        error = nil
        unsent = nil
        answering = Task {
            let started = Date()
            var firstText: Date?
            do {
                for try await event in start(engine) {
                    switch event {
                    case .text(let text):
                        if firstText == nil { firstText = Date() }
                        appendDelta(text)
                    case .restart:
                        if let last = messages.last, last.role == .assistant, last.stats == nil { messages.removeLast() }
                    case .done(var stats):
                        // The cloud reports no timings: time to first token as this screen saw it.
                        if !stats.onDevice {
                            stats = AnswerStats(ttftMs: (firstText ?? Date()).timeIntervalSince(started) * 1000, tokensPerSecond: 0,
                                                promptTokensReused: 0, promptTokensEvaluated: 0, onDevice: false, stopReason: stats.stopReason)
                        }
                        messages = Self.withStats(await engine.messages(), messages, stats)
                    }
                }
            } catch is CancellationError {
                // Stopped: what was shown stays (the engine keeps the partial answer too).
            } catch {
                self.error = "\(error)"
            }
            // Waits for the engine to settle, so the file and the screen show its history.
            await save(engine, id)
            let history = await engine.messages()
            // Rolled back before the text joined the conversation: give it back to the input.
            if let typed, !(history.last { $0.role == .user }?.content.hasSuffix(typed) ?? false) { unsent = typed }
            messages = Self.bubbles(history, messages)
            streaming = false
        }
        return true
    }

    private func appendDelta(_ text: String) {
        if let last = messages.last, last.role == .assistant, last.stats == nil {
            messages[messages.count - 1].text += text
        } else {
            messages.append(UIMessage(role: .assistant, text: text))
        }
    }

    private func stopAndWait() async {
        guard let job = answering else { return }
        job.cancel()
        await job.value
        if answering == job { answering = nil }
    }

    private func loadModel() async -> Bool {
        guard let path = modelPath else { return false }
        let s = settings()
        model = .loading(0)
        do {
            let config = ModelConfig(contextLength: s.contextLength, memoryBudgetBytes: s.memoryBudgetMB << 20)
            let loaded = try await LanguageModel.load(path: path, config: config) { fraction in
                Task { @MainActor [weak self] in
                    if case .loading = self?.model { self?.model = .loading(fraction) }
                }
            }
            languageModel = loaded
            model = .ready(name: loaded.info.name ?? URL(fileURLWithPath: path).lastPathComponent)
            return true
        } catch {
            model = .failed("\(error)")
            return false
        }
    }

    private func openConversation(_ id: String, restore: Bool) async {
        guard let loaded = languageModel else { return }
        let s = settings()
        Self.releaseInBackground([chat as Any])
        chat = nil
        let config = ConversationConfig(
            systemPrompt: s.systemPrompt.isEmpty ? nil : s.systemPrompt,
            sampling: SamplingConfig(temperature: s.temperature, maxTokens: s.maxTokens))
        do {
            let engine: ChatEngine
            if s.routing == .deviceOnly || s.cloudEndpoint.isEmpty {
                engine = DeviceEngine(chat: try await loaded.conversation(config))
            } else {
                let router = RouterConfig(
                    policy: s.routing == .cloudOnly ? .cloudOnly : .preferLocal,
                    cloud: CloudEndpoint(baseUrl: s.cloudEndpoint, model: s.cloudModel, apiKey: cloudKey()))
                var redaction: (@Sendable (String, String) -> String)?
                if s.redaction { redaction = { _, content in redactPersonalData(content) } }
                engine = RoutedEngine(chat: try await loaded.routedChat(router: router, conversation: config, redact: redaction))
            }
            var opened = id
            var cached: Int32?
            var problem: String?
            if restore, FileManager.default.fileExists(atPath: store.file(id).path) {
                do {
                    let restored = try await engine.restore(from: store.file(id))
                    cached = restored.cachedTokens
                    problem = restored.fallbackReason.map { "The saved cache could not be used (\($0)); the conversation was re-read instead." }
                } catch {
                    // Unreadable: start a new conversation rather than save over that file.
                    opened = store.newId()
                    problem = "This conversation could not be opened (\(error)); a new one was started."
                }
            }
            chat = engine
            conversationId = opened
            messages = Self.bubbles(await engine.messages(), [])
            error = problem
            restoredCachedTokens = cached
            if let path = modelPath { store.rememberOpened(modelPath: path, id: opened) }
        } catch {
            self.error = "\(error)"
        }
    }

    private func save() async {
        guard let conversation = chat, let id = conversationId else { return }
        await save(conversation, id)
    }

    private func save(_ engine: ChatEngine, _ id: String) async {
        guard await engine.messages().contains(where: { $0.role == .user }) else { return }
        do {
            try await engine.save(to: store.file(id))
        } catch {
            self.error = "The conversation was not saved: \(error)"
        }
    }

    private func closeEngine() {
        Self.releaseInBackground([chat as Any, languageModel as Any])
        chat = nil
        languageModel = nil
    }

    /// Holds the last references to `objects` and drops them on a background
    /// thread: freeing a model and its context takes a while.
    private static func releaseInBackground(_ objects: [Any]) {
        let box = ReleaseBox(objects)
        Task.detached { box.clear() }
    }

    /// The engine's history as bubbles, keeping the figures of answers already shown.
    private static func bubbles(_ history: [ChatMessage], _ shown: [UIMessage]) -> [UIMessage] {
        history.filter { $0.role == .user || $0.role == .assistant }.enumerated().map { i, m in
            let before = i < shown.count ? shown[i] : nil
            let stats = before.flatMap { $0.role == m.role && $0.text == m.content ? $0.stats : nil }
            return UIMessage(role: m.role, text: m.content, stats: stats)
        }
    }

    private static func withStats(_ history: [ChatMessage], _ shown: [UIMessage], _ stats: AnswerStats) -> [UIMessage] {
        var result = bubbles(history, shown)
        guard let last = result.last, last.role == .assistant else { return result }
        result[result.count - 1].stats = stats
        return result
    }
}

/// References handed to a background task to be dropped there.
private final class ReleaseBox: @unchecked Sendable {
    private var objects: [Any]

    init(_ objects: [Any]) {
        self.objects = objects
    }

    func clear() {
        objects.removeAll()
    }
}
