package dev.pocketlm

import dev.pocketlm.ffi.AdapterSetting
import dev.pocketlm.ffi.ChatMessage
import dev.pocketlm.ffi.PocketConversation
import dev.pocketlm.ffi.FfiException
import dev.pocketlm.ffi.Reply
import dev.pocketlm.ffi.GenerationHandle
import dev.pocketlm.ffi.ReplyListener
import dev.pocketlm.ffi.RequestOptions
import dev.pocketlm.ffi.RestoredSession
import dev.pocketlm.ffi.SavedSession
import dev.pocketlm.ffi.SessionSummary
import dev.pocketlm.ffi.readSessionSummary
import dev.pocketlm.ffi.SamplingConfig
import dev.pocketlm.ffi.ToolCall
import dev.pocketlm.ffi.ToolChoice
import dev.pocketlm.ffi.ToolResult
import kotlinx.serialization.json.Json
import java.io.File
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.single
import kotlinx.coroutines.withContext

/**
 * A multi-turn chat. Each turn evaluates only what is new since the cached
 * prefix. Requests on one conversation run one after another.
 */
class Conversation internal constructor(private val inner: PocketConversation) : AutoCloseable {
    /**
     * Sends [text] and streams the answer: [ChatEvent.Delta]s, then one [ChatEvent.Done].
     * Cancelling the collecting coroutine stops generation within one decode step;
     * the partial answer stays in the history. Errors arrive as [LanguageModelException].
     */
    fun send(text: String): Flow<ChatEvent> = stream { inner.send(text, it) }

    /**
     * Like [send], with a constraint on the answer or tools the model may call
     * ([RequestOptions]); a JSON answer also streams [ChatEvent.Snapshot]s, and
     * calls arrive as [ChatEvent.ToolCallMade] and in the [Reply]'s `toolCalls`.
     */
    fun send(text: String, options: RequestOptions): Flow<ChatEvent> = stream { inner.sendWith(text, options, it) }

    /**
     * Like [send], with [images] the user sent along: the encoded bytes of JPEG or PNG files,
     * placed before the text in order, decoded off the caller's thread. Needs a projector
     * ([setProjector]); without one, or with a bad image, the flow fails with
     * [LanguageModelException.ImagesUnsupported] or [LanguageModelException.InvalidImage] and
     * the history is unchanged.
     */
    fun send(text: String, images: List<ByteArray>, options: RequestOptions = noOptions): Flow<ChatEvent> =
        stream { inner.sendWithImages(text, images, options, it) }

    /** Answers the last reply's tool calls with their [results] (one per call) and streams what comes next. */
    fun sendToolResults(results: List<ToolResult>, options: RequestOptions = noOptions): Flow<ChatEvent> =
        stream { inner.sendToolResults(results, options, it) }

    /**
     * Answers the last user message again, replacing its answer, and streams the new
     * one. Stopped or failed before any text, the previous answer stays. A
     * conversation that does not end with a user message or its answer fails with
     * [LanguageModelException.InvalidOption].
     */
    fun regenerate(options: RequestOptions = noOptions): Flow<ChatEvent> = stream { inner.regenerate(options, it) }

    /**
     * Replaces the last user message with [text] (dropping its answer) and streams
     * the answer to it: the "edit" of a chat app. The KV cache keeps everything
     * before that message. Without a user message it is a plain [send].
     */
    fun editLastMessage(text: String, options: RequestOptions = noOptions): Flow<ChatEvent> =
        stream { inner.editLastMessage(text, options, it) }

    /** Keeps only the first [count] messages (the system prompt counts); waits for a running answer. */
    suspend fun truncate(count: Int) = withContext(Dispatchers.IO) { inner.truncate(count.coerceAtLeast(0).toUInt()) }

    private fun stream(start: (ReplyListener) -> GenerationHandle): Flow<ChatEvent> = callbackFlow {
        val handle = start(object : ReplyListener {
            override fun onDelta(text: String) {
                trySend(ChatEvent.Delta(text))
            }

            override fun onSnapshot(json: String) {
                trySend(ChatEvent.Snapshot(Json.parseToJsonElement(json)))
            }

            override fun onToolCall(call: ToolCall) {
                trySend(ChatEvent.ToolCallMade(call))
            }

            override fun onComplete(reply: Reply) {
                trySend(ChatEvent.Done(reply))
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
    }.buffer(Channel.UNLIMITED) // a slow collector never loses text nor stalls decoding

    /** Sends [text] and waits for the whole answer (cancellable like [send]). */
    suspend fun ask(text: String): Reply = send(text).filterIsInstance<ChatEvent.Done>().single().reply

    /** Like [ask], with [options]. */
    suspend fun ask(text: String, options: RequestOptions): Reply = send(text, options).filterIsInstance<ChatEvent.Done>().single().reply

    /**
     * The messages so far, system prompt first. Returns at once, also during an
     * answer: it then includes the message being answered and the text generated so
     * far. When an answer ends it is the engine's history (a cancelled answer keeps
     * its partial text, a failed request is rolled back).
     */
    @Suppress("RedundantSuspendModifier") // kept suspend: source compatible with earlier releases
    suspend fun messages(): List<ChatMessage> = inner.messages()

    /** Forgets everything but the system prompt (waits for a running answer). */
    suspend fun reset() = withContext(Dispatchers.IO) { inner.reset() }

    /**
     * Sets the LoRA adapters the next answers use, each with its scale (1: as trained, 0: off),
     * replacing those set before; an empty map detaches them all. The history is kept; when the
     * adapters in effect change, the next answer re-reads it. Waits for a running answer.
     * @throws LanguageModelException.AdapterMismatch for an adapter loaded onto another model, and
     *   [LanguageModelException.InvalidOption] for a scale that is not a finite number.
     */
    suspend fun setAdapters(adapters: Map<LoraAdapter, Float>) = withContext(Dispatchers.IO) {
        ffiCall { inner.setAdapters(adapters.map { (adapter, scale) -> AdapterSetting(adapter.adapter, scale) }) }
    }

    /**
     * Lets the conversation see images through [projector] (loaded for its model), or stops it
     * with `null`.
     *
     * @throws LanguageModelException.ProjectorMismatch for a projector of another model, and
     *   [LanguageModelException.ImagesUnsupported] when the batch size is smaller than an image.
     */
    suspend fun setProjector(projector: VisionProjector?) = withContext(Dispatchers.IO) {
        ffiCall { inner.setProjector(projector?.projector) }
    }

    /** Changes sampling for the next answers. */
    suspend fun setSampling(sampling: SamplingConfig) = withContext(Dispatchers.IO) { ffiCall { inner.setSampling(sampling) } }

    /**
     * Saves the messages and the KV cache to [file], atomically (a kill mid-save keeps
     * the previous file). Call it after each answer; it waits for a running one.
     */
    suspend fun save(file: File): SavedSession = withContext(Dispatchers.IO) { ffiCall { inner.save(file.path) } }

    /**
     * Restores a conversation saved by [save] (after the app was killed, say): its
     * messages and its KV cache, so the next answer evaluates only the new text.
     *
     * A file from another model, chat template, context setting or PocketLM build, or
     * one damaged or cut short, cannot give back its cache: with [fallBackToTranscript]
     * (the default) the messages are restored anyway when they are intact, the next
     * answer re-reads them, and [RestoredSession.fallbackKind] says why; otherwise it
     * throws [LanguageModelException.Session] and keeps the messages as they were (the
     * KV cache may have been cleared: the next answer re-reads them).
     */
    suspend fun restore(file: File, fallBackToTranscript: Boolean = true): RestoredSession =
        withContext(Dispatchers.IO) { ffiCall { inner.restore(file.path, fallBackToTranscript) } }

    /** Restores only the messages of a session file (saved with any model); the next answer re-reads them. */
    suspend fun restoreTranscript(file: File): RestoredSession =
        withContext(Dispatchers.IO) { ffiCall { inner.restoreTranscript(file.path) } }

    /** The context window in tokens (fixed; safe to read on the main thread at any time). */
    val contextLength: Int get() = inner.contextLength()

    companion object {
        init {
            NativeLibrary.name // pick the native build for this CPU before the first call (summary() may be the first)
        }

        internal val noOptions = RequestOptions(constraint = null, tools = emptyList(), toolChoice = ToolChoice.Auto)

        /**
         * A saved conversation's messages and save time, read without loading a model
         * (for a list of conversations).
         */
        suspend fun summary(file: File): SessionSummary =
            withContext(Dispatchers.IO) { ffiCall { readSessionSummary(file.path) } }
    }

    /** Frees the conversation's context and KV cache. */
    override fun close() = inner.close()
}
