import PocketLMFFI

/// An on-device language model, loaded from a GGUF file.
///
/// Load it with ``LanguageModel/load(path:config:progress:)``, open ``Conversation``s on it;
/// its memory is freed when it and its conversations are released.
public final class LanguageModel: Sendable {
    private let model: PocketModel

    private init(model: PocketModel) {
        self.model = model
    }

    /// Validates and loads the model at `path` on PocketLM's own thread.
    ///
    /// `progress`, when given, receives the fraction loaded (0 to 1, increasing,
    /// ending with 1) on the loading thread: hop to the main actor to show it.
    ///
    /// Cancelling the calling `Task` stops the load at the next tensor, frees
    /// what was read and throws `CancellationError`.
    /// - Throws: ``LanguageModelError`` for a missing, corrupt or unsupported file.
    public static func load(
        path: String,
        config: ModelConfig = ModelConfig(),
        progress: (@Sendable (Float) -> Void)? = nil
    ) async throws -> LanguageModel {
        let signal = CancelSignal()
        let listener = progress.map(ClosureProgress.init)
        do {
            return try await withTaskCancellationHandler {
                try await Blocking.run {
                    LanguageModel(model: try PocketModel.loadCancellable(
                        path: path, config: config, progress: listener, cancel: signal))
                }
            } onCancel: {
                signal.cancel()
            }
        } catch LanguageModelError.loadCancelled {
            throw CancellationError()
        }
    }

    /// What the model is: architecture, size, quantisation, context length.
    public var info: ModelInfo { model.info() }

    /// Where the model runs: `metal` or `cpu`, the device, and, when a GPU was
    /// requested but not used, why (the probe failed or the load failed).
    public var backend: BackendInfo { model.backend() }

    /// What the memory planner chose, when loaded with `ModelConfig.memoryBudgetBytes`.
    public var memoryPlan: MemoryPlan? { model.memoryPlan() }

    /// Predicts, from the file header alone, the largest context (and KV cache
    /// type) whose peak memory fits `budgetBytes`, e.g. the device's available memory.
    /// - Throws: ``LanguageModelError/insufficientMemory(neededBytes:budgetBytes:message:)`` when nothing fits.
    public static func planMemory(path: String, budgetBytes: Int64) async throws -> MemoryPlan {
        try await Blocking.run { try PocketLMFFI.planMemory(path: path, budgetBytes: budgetBytes) }
    }

    /// ``planMemory(path:budgetBytes:)`` with the LoRA adapters at `adapterPaths` loaded too:
    /// their memory comes out of the budget first.
    /// - Throws: ``LanguageModelError/adapterMismatch(path:reason:message:)`` for an adapter that
    ///   does not fit the model.
    public static func planMemory(path: String, budgetBytes: Int64, adapterPaths: [String]) async throws -> MemoryPlan {
        try await Blocking.run {
            try PocketLMFFI.planMemoryWithAdapters(path: path, budgetBytes: budgetBytes, adapterPaths: adapterPaths)
        }
    }

    /// ``planMemory(path:budgetBytes:adapterPaths:)`` with the vision projector at
    /// `projectorPath` loaded too: its memory (its tensors and one image's encoding) comes out
    /// of the budget first.
    /// - Throws: ``LanguageModelError/projectorMismatch(path:reason:message:)`` for a projector
    ///   that does not fit the model.
    public static func planMemory(path: String, budgetBytes: Int64, adapterPaths: [String], projectorPath: String) async throws -> MemoryPlan {
        try await Blocking.run {
            try PocketLMFFI.planMemoryWithProjector(
                path: path, budgetBytes: budgetBytes, adapterPaths: adapterPaths, projectorPath: projectorPath)
        }
    }

    /// Loads the GGUF LoRA adapter at `path` onto this model, on PocketLM's own thread; the base
    /// weights are shared, not reloaded. Set it on conversations with ``Conversation/setAdapters(_:)``.
    /// - Throws: ``LanguageModelError/adapterMismatch(path:reason:message:)`` for an adapter made
    ///   for another base model (architecture, shapes) or malformed, and the model-file errors of
    ///   ``load(path:config:progress:)`` for a bad file.
    public func loadAdapter(path: String) async throws -> LoraAdapter {
        let model = self.model
        return try await Blocking.run { LoraAdapter(try PocketAdapter.load(model: model, path: path)) }
    }

    /// Loads the model's vision projector (its `mmproj` GGUF file, shipped beside it) on
    /// PocketLM's own thread, so conversations can take images
    /// (``Conversation/setProjector(_:)``).
    /// - Throws: ``LanguageModelError/projectorMismatch(path:reason:message:)`` for a projector
    ///   that is not the Gemma 3 layout, was made for another model, or is malformed, and the
    ///   model-file errors of ``load(path:config:progress:)`` for a bad file.
    public func loadProjector(path: String) async throws -> VisionProjector {
        let model = self.model
        return try await Blocking.run { VisionProjector(try PocketProjector.load(model: model, path: path)) }
    }

    /// Starts a conversation with its own context and KV cache.
    public func conversation(_ config: ConversationConfig = ConversationConfig()) async throws -> Conversation {
        let model = self.model
        return try await Blocking.run {
            Conversation(try model.newConversation(config: config))
        }
    }

    /// Starts a conversation routed by `router` between this model and a cloud
    /// model (see ``RoutedChat``); `redact` sees every message before it leaves
    /// the device.
    public func routedChat(
        router: RouterConfig,
        conversation config: ConversationConfig = ConversationConfig(),
        redact: (@Sendable (_ role: String, _ content: String) -> String)? = nil
    ) async throws -> RoutedChat {
        let model = self.model
        let redactor = redact.map { ClosureRedactor($0) }
        return try await Blocking.run {
            RoutedChat(try RoutedConversation.over(model: model, conversation: config, router: router, redactor: redactor))
        }
    }

    /// Models whose weights are still in memory in this process.
    public static var liveModels: Int64 { liveModelCount() }
}

private final class ClosureProgress: LoadProgressListener {
    private let body: @Sendable (Float) -> Void

    init(_ body: @escaping @Sendable (Float) -> Void) {
        self.body = body
    }

    func onProgress(fraction: Float) {
        body(fraction)
    }
}
