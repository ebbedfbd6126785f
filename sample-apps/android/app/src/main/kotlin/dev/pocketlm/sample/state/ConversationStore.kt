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

    /**
     * Remembers the model and conversation on screen, for [lastOpened] after the app
     * restarts. A model beside the store's directory is kept relative to it.
     */
    suspend fun rememberOpened(modelPath: String, id: String) = withContext(Dispatchers.IO) {
        val base = dir.absoluteFile.parentFile
        val model = File(modelPath).absoluteFile
        val path = if (base != null && model.startsWith(base)) model.relativeTo(base).path else modelPath
        val temp = File(dir, "$LAST.tmp")
        temp.writeText("$path\n$id\n")
        temp.renameTo(File(dir, LAST))
    }

    /** The model path and conversation id on screen when the app last ran, or null. */
    suspend fun lastOpened(): Pair<String, String>? = withContext(Dispatchers.IO) {
        val lines = try { File(dir, LAST).readLines() } catch (e: java.io.IOException) { return@withContext null }
        if (lines.size < 2 || lines[0].isEmpty() || lines[1].isEmpty()) return@withContext null
        val model = File(lines[0]).let { if (it.isAbsolute) it else File(dir.absoluteFile.parentFile, lines[0]) }
        model.path to lines[1]
    }

    /** Deletes conversation [id]. */
    suspend fun delete(id: String): Boolean = withContext(Dispatchers.IO) { file(id).delete() }

    private fun title(text: String): String {
        val line = text.lineSequence().firstOrNull()?.trim().orEmpty()
        return if (line.isEmpty()) "New conversation" else if (line.length > 48) line.take(47) + "…" else line
    }

    private companion object {
        const val SUFFIX = ".plmsession"
        const val LAST = "last-opened"
    }
}
