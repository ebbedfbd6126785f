package dev.pocketlm

import dev.pocketlm.ffi.ConversationConfig
import dev.pocketlm.ffi.ModelConfig
import dev.pocketlm.ffi.Role
import dev.pocketlm.ffi.SamplingConfig
import dev.pocketlm.ffi.SessionErrorKind
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files

/**
 * Saved conversations from Kotlin on the real engine: save, close everything as an app
 * kill would, load the model again, restore, and continue with only the new turn
 * evaluated; a damaged or mismatched file is a typed exception and the transcript
 * still comes back.
 */
class SessionTest {
    private val modelPath: String = System.getProperty("pocketlm.testModel")
        ?: error("set -Dpocketlm.testModel to the Qwen2.5 0.5B GGUF path")
    private val greedy = SamplingConfig(temperature = 0f, maxTokens = 24)
    private val dir: File = Files.createTempDirectory("pocketlm-session").toFile()

    private suspend fun <T> withModel(block: suspend (LanguageModel) -> T): T {
        val lm = LanguageModel.load(modelPath, ModelConfig(contextLength = 1024, threads = 2))
        return try { block(lm) } finally { lm.close() }
    }

    @Test
    fun `a conversation survives closing the model and continues where it was`(): Unit = runBlocking {
        val file = File(dir, "chat.session")
        val (expected, evaluated) = withModel { lm ->
            lm.conversation(ConversationConfig(sampling = greedy)).use { chat ->
                chat.ask("Name three primary colours.")
                val saved = chat.save(file)
                assertEquals(2, saved.messages)
                assertEquals(file.length(), saved.fileBytes)
                val next = chat.ask("Which of them is warmest?")
                next.text to next.metrics.promptTokensEvaluated
            }
        }
        // Everything is gone, as after an app kill; a new model instance restores.
        val summary = Conversation.summary(file)
        assertEquals(listOf(Role.USER, Role.ASSISTANT), summary.messages.map { it.role })
        withModel { lm ->
            lm.conversation(ConversationConfig(sampling = greedy)).use { chat ->
                val restored = chat.restore(file)
                assertNull(restored.fallbackKind, restored.fallbackReason)
                assertTrue(restored.cachedTokens > 20, "$restored")
                val reply = chat.ask("Which of them is warmest?")
                assertEquals(expected, reply.text)
                assertEquals(restored.cachedTokens, reply.metrics.promptTokensReused)
                assertEquals(evaluated, reply.metrics.promptTokensEvaluated)
            }
        }
    }

    @Test
    fun `a mismatched or damaged file is typed and the transcript still restores`(): Unit = runBlocking {
        val file = File(dir, "mismatch.session")
        withModel { lm ->
            lm.conversation(ConversationConfig(sampling = greedy)).use { chat ->
                chat.ask("Name three primary colours.")
                chat.save(file)
            }
            lm.conversation(ConversationConfig(contextLength = 512, sampling = greedy)).use { chat ->
                val e = assertThrows<LanguageModelException.Session> { runBlocking { chat.restore(file, fallBackToTranscript = false) } }
                assertEquals(SessionErrorKind.SETTINGS_MISMATCH, e.kind)
                assertTrue(e.transcriptUsable)
                assertTrue(chat.messages().isEmpty(), "a refused restore changes nothing")
                val restored = chat.restore(file)
                assertEquals(SessionErrorKind.SETTINGS_MISMATCH, restored.fallbackKind)
                assertEquals(2, restored.messages)
                assertEquals(0, restored.cachedTokens)
                assertTrue(chat.ask("And the coldest?").metrics.promptTokensEvaluated > 30, "the transcript is re-read")
            }
            val cut = File(dir, "cut.session").apply { writeBytes(file.readBytes().copyOf(100)) }
            lm.conversation(ConversationConfig(sampling = greedy)).use { chat ->
                val e = assertThrows<LanguageModelException.Session> { runBlocking { chat.restore(cut) } }
                assertEquals(SessionErrorKind.CORRUPT, e.kind)
                assertTrue(!e.transcriptUsable)
                val missing = assertThrows<LanguageModelException.Session> { runBlocking { chat.restore(File(dir, "none")) } }
                assertEquals(SessionErrorKind.NOT_FOUND, missing.kind)
                assertTrue(chat.ask("Hello").text.isNotEmpty(), "the conversation still answers")
            }
        }
    }
}
