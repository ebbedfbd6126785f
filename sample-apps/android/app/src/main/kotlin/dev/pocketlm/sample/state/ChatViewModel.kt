package dev.pocketlm.sample.state

import dev.pocketlm.LanguageModel
import dev.pocketlm.ffi.ChatMessage
import dev.pocketlm.ffi.CloudEndpoint
import dev.pocketlm.ffi.ConversationConfig
import dev.pocketlm.ffi.ModelConfig
import dev.pocketlm.ffi.Role
import dev.pocketlm.ffi.RoutePolicy
import dev.pocketlm.ffi.RouterConfig
import dev.pocketlm.ffi.SamplingConfig
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext

/** The model behind the chat screen. */
sealed interface ModelStatus {
    /** No model chosen yet. */
    data object None : ModelStatus

    /** Loading, [fraction] done. */
    data class Loading(val fraction: Float) : ModelStatus

    /** Loaded and ready to answer. */
    data class Ready(val name: String) : ModelStatus

    /** Unloaded to give memory back (memory pressure); reloads when the app returns. */
    data object Unloaded : ModelStatus

    /** Loading failed; [message] says why and what to do. */
    data class Failed(val message: String) : ModelStatus
}

/** The per-answer figures the chat shows under an answer. */
data class AnswerStats(
    val ttftMs: Double,
    val tokensPerSecond: Double,
    val promptTokensReused: Int,
    val promptTokensEvaluated: Int,
    /** True when the phone answered (the "device" badge); false for the cloud. */
    val onDevice: Boolean,
    val stopReason: String,
)

/** One bubble: a message and, for answers given in this run, its figures. */
data class UiMessage(val role: Role, val text: String, val stats: AnswerStats? = null)

/** Everything the chat screen draws. */
data class ChatUiState(
    val model: ModelStatus = ModelStatus.None,
    /** The model file in use (or to reload), for the model screen's "in use" mark. */
    val modelPath: String? = null,
    val conversationId: String? = null,
    val messages: List<UiMessage> = emptyList(),
    val streaming: Boolean = false,
    /** The last problem, to show once (a failed answer, a damaged session file). */
    val error: String? = null,
    /** Tokens the last open took from the saved cache instead of re-evaluating (null: nothing restored). */
    val restoredCachedTokens: Int? = null,
    /** A model or conversation is being loaded, opened, saved or unloaded. */
    val busy: Boolean = false,
    /** Text the user sent that did not make it into the conversation (the request failed first): put it back in the input. */
    val unsent: String? = null,
) {
    /** Whether a message can be sent now (a model ready, a conversation open, nothing else running). */
    val canSend: Boolean get() = model is ModelStatus.Ready && conversationId != null && !streaming && !busy
}

/**
 * The chat screen: loads a model, streams answers (on the device, or routed
 * to a cloud model when the settings ask for it), stops, regenerates and
 * edits, saves every conversation to [store] after each answer, and follows
 * the app's lifecycle (stop in the background, unload on memory pressure,
 * reload and restore on return). All work runs in [scope] (the Android
 * `viewModelScope`); no call blocks the caller. Call it from one thread (the
 * main thread in an app).
 */
class ChatViewModel(
    private val scope: CoroutineScope,
    private val store: ConversationStore,
    private val settings: StateFlow<ChatSettings>,
    /** The cloud API key (from the Keystore), read when a routed conversation opens. */
    private val cloudKey: () -> String? = { null },
) {
    private val state = MutableStateFlow(ChatUiState())
    private val engine = Mutex() // model and conversation changes, one at a time
    private var model: LanguageModel? = null
    private var modelPath: String? = null
    private var chat: ChatEngine? = null
    private var answering: Job? = null

    /** What the screen shows. */
    val ui: StateFlow<ChatUiState> = state.asStateFlow()

    /** Runs [body] alone among model and conversation changes, with [ChatUiState.busy] set meanwhile. */
    private suspend fun exclusive(body: suspend () -> Unit) = engine.withLock {
        state.update { it.copy(busy = true) }
        try {
            body()
        } finally {
            state.update { it.copy(busy = false) }
        }
    }

    /** Loads the model at [path] (closing any other) and opens a new conversation. */
    fun load(path: String): Job = scope.launch {
        exclusive {
            stopAndWait()
            closeEngine()
            modelPath = path
            if (loadModel()) openConversation(store.newId(), restore = false)
        }
    }

    /**
     * Reopens the model and conversation that were on screen when the app last ran
     * (after the system killed it, say); nothing when there were none, a model is
     * already loaded, or that model file is gone.
     */
    fun resumeLast(): Job = scope.launch {
        exclusive {
            if (model != null || state.value.model is ModelStatus.Loading) return@exclusive
            val (path, id) = store.lastOpened() ?: return@exclusive
            if (!java.io.File(path).isFile) return@exclusive
            modelPath = path
            if (loadModel()) openConversation(id, restore = true)
        }
    }

    /** The error was shown: clear it. */
    fun dismissError() = state.update { it.copy(error = null) }

    /** Starts a new, empty conversation on the loaded model. */
    fun newConversation(): Job = scope.launch {
        exclusive {
            stopAndWait()
            if (model != null) openConversation(store.newId(), restore = false)
        }
    }

    /** Opens saved conversation [id]: its cache when the file matches this model, else its transcript. */
    fun open(id: String): Job = scope.launch {
        exclusive {
            stopAndWait()
            if (model != null) openConversation(id, restore = true)
        }
    }

    /**
     * Sends [text]; the answer streams into [ui]. False when it was not taken (see
     * [ChatUiState.canSend]): keep the text in the input then. If the request fails
     * before the text joins the conversation, it comes back as [ChatUiState.unsent].
     */
    fun send(text: String): Boolean = answer(text, { it + UiMessage(Role.USER, text) }) { it.send(text) }

    /** Answers the last message again, replacing its answer; false when not taken. */
    fun regenerate(): Boolean =
        answer(null, { shown -> if (shown.lastOrNull()?.role == Role.ASSISTANT) shown.dropLast(1) else shown }) { it.regenerate() }

    /** Replaces the last user message with [text] (dropping its answer) and answers it; false when not taken. */
    fun editLast(text: String): Boolean = answer(text, { shown ->
        val last = shown.indexOfLast { it.role == Role.USER }
        (if (last >= 0) shown.take(last) else shown) + UiMessage(Role.USER, text)
    }) { it.editLast(text) }

    /** Takes [ChatUiState.unsent] (to put it back in the input), clearing it. */
    fun takeUnsent(): String? {
        val text = state.value.unsent
        state.update { it.copy(unsent = null) }
        return text
    }

    /** Stops the running answer; the text shown so far stays, and is saved. */
    fun stop() {
        answering?.cancel()
    }

    /** The app left the foreground: stop generating (iOS may not use the GPU in the background) and save. */
    fun onBackground(): Job = scope.launch {
        exclusive {
            stopAndWait()
            save()
        }
    }

    /** The system is short of memory (`onTrimMemory`): stop, save and unload; [onForeground] reloads. */
    fun onMemoryPressure(): Job = scope.launch {
        exclusive {
            stopAndWait()
            if (model == null) return@exclusive
            save()
            closeEngine()
            state.update { it.copy(model = ModelStatus.Unloaded) }
        }
    }

    /** The app is back: reload an unloaded model and restore the conversation from its file. */
    fun onForeground(): Job = scope.launch {
        exclusive {
            val id = state.value.conversationId
            if (state.value.model != ModelStatus.Unloaded) return@exclusive
            if (loadModel()) openConversation(id ?: store.newId(), restore = id != null)
        }
    }

    /** Frees the model (the view model's owner is going away). */
    fun close() {
        val job = answering
        val chat = this.chat
        val model = this.model
        this.chat = null
        this.model = null
        if (job == null || job.isCompleted) {
            chat?.close()
            model?.close()
            return
        }
        // The answer's own clean-up saves it first (NonCancellable); free the engine after that.
        job.invokeOnCompletion {
            chat?.close()
            model?.close()
        }
        job.cancel()
    }

    /** Runs one request: [shownAtOnce] is what the screen shows before the first token. */
    private fun answer(typed: String?, shownAtOnce: (List<UiMessage>) -> List<UiMessage>, start: (ChatEngine) -> Flow<Answered>): Boolean {
        val engine = chat ?: return false
        val id = state.value.conversationId ?: return false
        if (!state.value.canSend) return false
        state.update { it.copy(messages = shownAtOnce(it.messages), streaming = true, error = null, unsent = null) }
        answering = scope.launch {
            val started = System.nanoTime()
            var firstText: Long? = null
            try {
                start(engine).collect { event ->
                    when (event) {
                        is Answered.Text -> {
                            if (firstText == null) firstText = System.nanoTime()
                            state.update { it.copy(messages = appendDelta(it.messages, event.text)) }
                        }
                        is Answered.Restart -> state.update { it.copy(messages = dropAnswer(it.messages)) }
                        is Answered.Done -> {
                            // The cloud reports no timings: time to first token as this screen saw it.
                            val measured = ((firstText ?: System.nanoTime()) - started) / 1e6
                            val stats = if (event.stats.onDevice) event.stats else event.stats.copy(ttftMs = measured)
                            state.update { it.copy(messages = withStats(engine.messages(), it.messages, stats)) }
                        }
                    }
                }
            } catch (e: CancellationException) {
                // Stopped: what was shown stays (the engine keeps the partial answer too).
            } catch (e: Exception) {
                state.update { it.copy(error = e.message) }
            } finally {
                withContext(NonCancellable) {
                    // Waits for the engine to settle, so the file and the screen show its history.
                    try {
                        save(engine, id)
                        val history = engine.messages()
                        // Rolled back before the text joined the conversation: give it back to the input.
                        val lost = typed != null && history.lastOrNull { it.role == Role.USER }?.content?.endsWith(typed) != true
                        state.update { it.copy(messages = ui(history, it.messages), unsent = if (lost) typed else null) }
                    } catch (e: IllegalStateException) {
                        // closed meanwhile (the owner went away): nothing left to show
                    }
                    state.update { it.copy(streaming = false) }
                }
            }
        }
        return true
    }

    private suspend fun stopAndWait() {
        val job = answering ?: return
        job.cancel()
        job.join()
        if (answering === job) answering = null
    }

    private suspend fun loadModel(): Boolean {
        val path = modelPath ?: return false
        val s = settings.value
        state.update { it.copy(model = ModelStatus.Loading(0f), modelPath = path) }
        return try {
            val config = ModelConfig(contextLength = s.contextLength, memoryBudgetBytes = s.memoryBudgetMb.toLong() shl 20)
            val loaded = LanguageModel.load(path, config) { f -> state.update { it.copy(model = ModelStatus.Loading(f)) } }
            model = loaded
            state.update { it.copy(model = ModelStatus.Ready(loaded.info.name ?: path.substringAfterLast('/'))) }
            true
        } catch (e: Exception) {
            state.update { it.copy(model = ModelStatus.Failed(e.message ?: e.toString())) }
            false
        }
    }

    private suspend fun openConversation(id: String, restore: Boolean) {
        val loaded = model ?: return
        val s = settings.value
        chat?.let { old -> withContext(Dispatchers.IO) { old.close() } }
        chat = null
        val config = ConversationConfig(
            systemPrompt = s.systemPrompt.ifBlank { null },
            sampling = SamplingConfig(temperature = s.temperature, maxTokens = s.maxTokens),
        )
        val engine = try {
            if (s.routing == RoutingPolicy.DEVICE_ONLY || s.cloudEndpoint.isBlank()) {
                DeviceEngine(loaded.conversation(config))
            } else {
                val router = RouterConfig(
                    policy = if (s.routing == RoutingPolicy.CLOUD_ONLY) RoutePolicy.CLOUD_ONLY else RoutePolicy.PREFER_LOCAL,
                    cloud = CloudEndpoint(baseUrl = s.cloudEndpoint, model = s.cloudModel, apiKey = cloudKey()),
                )
                RoutedEngine(loaded.routedChat(router, config, if (s.redaction) { _, content -> redact(content) } else null))
            }
        } catch (e: Exception) {
            state.update { it.copy(error = e.message) }
            return
        }
        var opened = id
        var cached: Int? = null
        var problem: String? = null
        if (restore && store.file(id).exists()) {
            try {
                val restored = engine.restore(store.file(id))
                cached = restored.cachedTokens
                problem = restored.fallbackReason?.let { "The saved cache could not be used ($it); the conversation was re-read instead." }
            } catch (e: Exception) {
                // Unreadable: start a new conversation rather than save over that file.
                opened = store.newId()
                problem = "This conversation could not be opened (${e.message}); a new one was started."
            }
        }
        chat = engine
        state.update {
            it.copy(conversationId = opened, messages = ui(engine.messages(), emptyList()), error = problem, restoredCachedTokens = cached)
        }
        modelPath?.let { store.rememberOpened(it, opened) }
    }

    private suspend fun save() {
        val conversation = chat ?: return
        save(conversation, state.value.conversationId ?: return)
    }

    private suspend fun save(engine: ChatEngine, id: String) {
        if (engine.messages().none { it.role == Role.USER }) return
        try {
            engine.save(store.file(id))
        } catch (e: Exception) {
            state.update { it.copy(error = "The conversation was not saved: ${e.message}") }
        }
    }

    /** Frees the conversation and the model, off the caller's thread. */
    private suspend fun closeEngine() {
        val chat = this.chat
        val model = this.model
        this.chat = null
        this.model = null
        withContext(Dispatchers.IO) {
            chat?.close()
            model?.close()
        }
    }

    private companion object {
        /** The engine's history as bubbles, keeping the figures of answers already shown. */
        fun ui(messages: List<ChatMessage>, shown: List<UiMessage>): List<UiMessage> =
            messages.filter { it.role == Role.USER || it.role == Role.ASSISTANT }.mapIndexed { i, m ->
                val before = shown.getOrNull(i)
                UiMessage(m.role, m.content, before?.stats?.takeIf { before.role == m.role && before.text == m.content })
            }

        fun appendDelta(shown: List<UiMessage>, text: String): List<UiMessage> {
            val last = shown.lastOrNull()
            return if (last != null && last.role == Role.ASSISTANT && last.stats == null) {
                shown.dropLast(1) + last.copy(text = last.text + text)
            } else {
                shown + UiMessage(Role.ASSISTANT, text)
            }
        }

        fun dropAnswer(shown: List<UiMessage>): List<UiMessage> =
            if (shown.lastOrNull()?.let { it.role == Role.ASSISTANT && it.stats == null } == true) shown.dropLast(1) else shown

        fun withStats(messages: List<ChatMessage>, shown: List<UiMessage>, stats: AnswerStats): List<UiMessage> {
            val bubbles = ui(messages, shown)
            val last = bubbles.lastOrNull() ?: return bubbles
            if (last.role != Role.ASSISTANT) return bubbles
            return bubbles.dropLast(1) + last.copy(stats = stats)
        }
    }
}
