package dev.pocketlm.sample.state

import dev.pocketlm.ChatEvent
import dev.pocketlm.Conversation
import dev.pocketlm.RouteEvent
import dev.pocketlm.RoutedChat
import dev.pocketlm.ffi.ChatMessage
import dev.pocketlm.ffi.Metrics
import dev.pocketlm.ffi.RestoredSession
import dev.pocketlm.ffi.RoutedReply
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.mapNotNull
import java.io.File

/** What one answer streams to the chat screen, whichever side gives it. */
internal sealed interface Answered {
    /** More text. */
    data class Text(val text: String) : Answered

    /** The router moved the answer to the other side: drop what was shown of it. */
    data object Restart : Answered

    /** The answer is complete. */
    data class Done(val stats: AnswerStats) : Answered
}

/** The conversation behind the chat screen: on the device alone, or routed between the device and a cloud model. */
internal interface ChatEngine : AutoCloseable {
    fun send(text: String): Flow<Answered>
    fun regenerate(): Flow<Answered>
    fun editLast(text: String): Flow<Answered>
    suspend fun messages(): List<ChatMessage>
    suspend fun save(file: File)
    suspend fun restore(file: File): RestoredSession
}

/** Every answer on the device. */
internal class DeviceEngine(private val chat: Conversation) : ChatEngine {
    override fun send(text: String) = answers(chat.send(text))
    override fun regenerate() = answers(chat.regenerate())
    override fun editLast(text: String) = answers(chat.editLastMessage(text))
    override suspend fun messages() = chat.messages()
    override suspend fun save(file: File) {
        chat.save(file)
    }
    override suspend fun restore(file: File) = chat.restore(file)
    override fun close() = chat.close()

    private fun answers(events: Flow<ChatEvent>): Flow<Answered> = events.mapNotNull { event ->
        when (event) {
            is ChatEvent.Delta -> Answered.Text(event.text)
            is ChatEvent.Done -> Answered.Done(stats(event.reply.metrics, onDevice = true))
            else -> null
        }
    }
}

/** Answers routed by policy between the device and a cloud model. */
internal class RoutedEngine(private val chat: RoutedChat) : ChatEngine {
    override fun send(text: String) = answers(chat.send(text))
    override fun regenerate() = answers(chat.regenerate())
    override fun editLast(text: String) = answers(chat.editLastMessage(text))
    override suspend fun messages() = chat.messages()
    override suspend fun save(file: File) {
        chat.save(file)
    }
    override suspend fun restore(file: File) = chat.restore(file)
    override fun close() = chat.close()

    private fun answers(events: Flow<RouteEvent>): Flow<Answered> = events.mapNotNull { event ->
        when (event) {
            is RouteEvent.Text -> Answered.Text(event.text)
            is RouteEvent.Restart -> Answered.Restart
            is RouteEvent.Done -> Answered.Done(stats(event.reply))
            else -> null
        }
    }

    private fun stats(reply: RoutedReply): AnswerStats = reply.metrics?.let { stats(it, onDevice = !reply.answeredByCloud) }
        ?: AnswerStats(0.0, 0.0, 0, 0, onDevice = !reply.answeredByCloud, stopReason = "stop")
}

/** The figures shown under an answer. */
internal fun stats(metrics: Metrics, onDevice: Boolean) = AnswerStats(
    ttftMs = metrics.ttftMs,
    tokensPerSecond = metrics.decodeTokensPerS,
    promptTokensReused = metrics.promptTokensReused,
    promptTokensEvaluated = metrics.promptTokensEvaluated,
    onDevice = onDevice,
    stopReason = metrics.stopReason.name.lowercase(),
)

/**
 * What "redaction on" removes before a message leaves the phone: e-mail
 * addresses and phone numbers. A sample's rule; an app adds what its users type.
 */
fun redact(content: String): String = content.replace(email, "[email]").replace(phone, "[phone]")

private val email = Regex("[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}")
private val phone = Regex("\\+?\\d[\\d ()-]{7,}\\d")
