package dev.pocketlm.sample.state

import dev.pocketlm.Conversation
import dev.pocketlm.LanguageModelException
import dev.pocketlm.ffi.Role
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import java.io.File

/** One row of the conversation list. [problem] says why a damaged file cannot be opened. */
data class ConversationSummary(
    val id: String,
    val title: String,
    val messages: Int,
    val savedAtMillis: Long,
    val problem: String? = null,
)

/**
 * The saved conversations: one session file per conversation in [dir]
 * (`<id>.plmsession`, written by `Conversation.save`), listed newest first.
 */
class ConversationStore(val dir: File) {
    init {
        dir.mkdirs()
    }

    /** The file of conversation [id]. */
    fun file(id: String): File = File(dir, "$id$SUFFIX")

    /** A fresh id, sortable by creation time. */
    fun newId(): String = "chat-${System.currentTimeMillis()}-${(1000..9999).random()}"

    /** Every saved conversation, newest first; a damaged file is listed with its problem. */
    suspend fun list(): List<ConversationSummary> = withContext(Dispatchers.IO) {
        (dir.listFiles { f -> f.name.endsWith(SUFFIX) } ?: emptyArray())
            .sortedByDescending { it.lastModified() }
            .map { f ->
                val id = f.name.removeSuffix(SUFFIX)
                try {
                    val summary = Conversation.summary(f)
                    val first = summary.messages.firstOrNull { it.role == Role.USER }?.content.orEmpty()
                    ConversationSummary(id, title(first), summary.messages.size, summary.savedAt * 1000)
                } catch (e: LanguageModelException) {
                    ConversationSummary(id, "Unreadable conversation", 0, f.lastModified(), e.message)
                }
            }
    }

    /** Deletes conversation [id]. */
    suspend fun delete(id: String): Boolean = withContext(Dispatchers.IO) { file(id).delete() }

    private fun title(text: String): String {
        val line = text.lineSequence().firstOrNull()?.trim().orEmpty()
        return if (line.isEmpty()) "New conversation" else if (line.length > 48) line.take(47) + "…" else line
    }

    private companion object {
        const val SUFFIX = ".plmsession"
    }
}
