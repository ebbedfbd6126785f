package dev.pocketlm

import dev.pocketlm.ffi.ChatMessage
import dev.pocketlm.ffi.ConversationConfig
import dev.pocketlm.ffi.ModelConfig
import dev.pocketlm.ffi.FfiException
import dev.pocketlm.ffi.Redactor
import dev.pocketlm.ffi.RouteListener
import dev.pocketlm.ffi.RouteReason
import dev.pocketlm.ffi.RouteRequest
import dev.pocketlm.ffi.RoutedConversation
import dev.pocketlm.ffi.RestoredSession
import dev.pocketlm.ffi.RoutedReply
import dev.pocketlm.ffi.SavedSession
import dev.pocketlm.ffi.RouterConfig
import dev.pocketlm.ffi.ToolCall
import dev.pocketlm.ffi.ToolResult
import dev.pocketlm.ffi.GenerationHandle
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.single
import kotlinx.coroutines.withContext
import java.io.File

/**
 * A chat answered on the device or, when [RouterConfig] allows it, by an
 * OpenAI-compatible cloud model. Nothing leaves the device under
 * `RoutePolicy.LOCAL_ONLY` or with `RouteRequest(allowCloud = false)`.
 */
class RoutedChat internal constructor(private val inner: RoutedConversation) : AutoCloseable {
    /**
     * Sends [text] and streams the answer; cancelling the collector stops it.
     * `request.options` asks for structured output or offers tools, on whichever side answers.
     */
    fun send(text: String, request: RouteRequest = RouteRequest()): Flow<RouteEvent> =
        stream { listener -> inner.send(text, request, listener) }

    /**
     * Answers the last reply's tool calls with their [results] (one per call); the side
     * that made the calls streams what comes next (more calls, or the answer).
     */
    fun sendToolResults(results: List<ToolResult>, request: RouteRequest = RouteRequest()): Flow<RouteEvent> =
        stream { listener -> inner.sendToolResults(results, request, listener) }

    /** Answers the last user message again by the policy, replacing its answer; stopped before any text, the previous answer stays. */
    fun regenerate(request: RouteRequest = RouteRequest()): Flow<RouteEvent> =
        stream { listener -> inner.regenerate(request, listener) }

    /** Replaces the last user message with [text] (dropping its answer) and streams the answer to it. */
    fun editLastMessage(text: String, request: RouteRequest = RouteRequest()): Flow<RouteEvent> =
        stream { listener -> inner.editLastMessage(text, request, listener) }

    /**
     * Saves the history and the device model's KV cache to [file], atomically, like
     * [Conversation.save]; waits for a running answer. Without a device model it
     * throws the load error.
     */
    suspend fun save(file: File): SavedSession = withContext(Dispatchers.IO) { ffiCall { inner.save(file.path) } }

    /**
     * Restores a conversation saved by [save] or [Conversation.save]: the history, and
     * the device's KV cache when the file matches (else `fallbackKind` says why, and
     * the next device answer re-reads the history).
     */
    suspend fun restore(file: File): RestoredSession = withContext(Dispatchers.IO) { ffiCall { inner.restore(file.path) } }

    private fun stream(start: (RouteListener) -> GenerationHandle): Flow<RouteEvent> = callbackFlow {
        val handle = start(object : RouteListener {
            override fun onText(text: String) {
                trySend(RouteEvent.Text(text))
            }

            override fun onRestart(reason: RouteReason) {
                trySend(RouteEvent.Restart(reason))
            }

            override fun onToolCall(call: ToolCall) {
                trySend(RouteEvent.ToolCallMade(call))
            }

            override fun onComplete(reply: RoutedReply) {
                trySend(RouteEvent.Done(reply))
                close()
            }

            override fun onError(error: FfiException) {
                close(error.toPublic())
            }
        })
        awaitClose {
            handle.cancel()
            handle.close()
        }
    }.buffer(Channel.UNLIMITED)

    /** Sends [text] and waits for the whole routed answer. */
    suspend fun ask(text: String, request: RouteRequest = RouteRequest()): RoutedReply =
        send(text, request).filterIsInstance<RouteEvent.Done>().single().reply

    /**
     * The history, whichever side answered each turn. Returns at once, also during an
     * answer: it then includes the message being answered and the text streamed so far
     * (dropped on a [RouteEvent.Restart]). When an answer ends it is the router's history.
     */
    @Suppress("RedundantSuspendModifier") // kept suspend: source compatible with earlier releases
    suspend fun messages(): List<ChatMessage> = inner.messages()

    /**
     * Cloud money spent so far. Returns at once; a running request's cost is
     * added when it ends, before its [RouteEvent.Done].
     */
    val totalCloudCost: Double get() = inner.totalCloudCost()

    /** Why the device model is unavailable, or null when it is loaded (fixed when opened; returns at once). */
    val deviceError: String? get() = inner.deviceError()

    /** Frees the device model's context (and the model, if nothing else uses it). */
    override fun close() = inner.close()

    companion object {
        init {
            NativeLibrary.name // pick the native build for this CPU before the first call
        }

        /**
         * Loads the model at [modelPath] and routes over it. A model that cannot
         * load is not an error here: the router escalates with that reason when
         * the policy allows it. [redact] sees every message before it leaves.
         */
        suspend fun open(
            modelPath: String,
            router: RouterConfig,
            modelConfig: ModelConfig = ModelConfig(),
            conversation: ConversationConfig = ConversationConfig(),
            redact: ((role: String, content: String) -> String)? = null,
        ): RoutedChat = withContext(Dispatchers.IO) {
            RoutedChat(ffiCall { RoutedConversation.open(modelPath, modelConfig, conversation, router, redactor(redact)) })
        }

        internal fun redactor(redact: ((role: String, content: String) -> String)?): Redactor? = redact?.let { f ->
            object : Redactor {
                override fun redact(role: String, content: String): String = f(role, content)
            }
        }
    }
}
