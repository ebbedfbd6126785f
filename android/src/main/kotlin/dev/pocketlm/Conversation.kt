package dev.pocketlm

import dev.pocketlm.ffi.ChatMessage
import dev.pocketlm.ffi.PocketConversation
import dev.pocketlm.ffi.FfiException
import dev.pocketlm.ffi.Reply
import dev.pocketlm.ffi.ReplyListener
import dev.pocketlm.ffi.SamplingConfig
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
    fun send(text: String): Flow<ChatEvent> = callbackFlow {
        val handle = inner.send(text, object : ReplyListener {
            override fun onDelta(text: String) {
                trySend(ChatEvent.Delta(text))
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

    /** Changes sampling for the next answers. */
    suspend fun setSampling(sampling: SamplingConfig) = withContext(Dispatchers.IO) { ffiCall { inner.setSampling(sampling) } }

    /** The context window in tokens (fixed; safe to read on the main thread at any time). */
    val contextLength: Int get() = inner.contextLength()

    /** Frees the conversation's context and KV cache. */
    override fun close() = inner.close()
}
