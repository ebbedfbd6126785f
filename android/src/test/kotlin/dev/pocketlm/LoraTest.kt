package dev.pocketlm

import dev.pocketlm.ffi.ConversationConfig
import dev.pocketlm.ffi.ModelConfig
import dev.pocketlm.ffi.SamplingConfig
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.single
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import java.io.File

/** LoRA adapters from Kotlin, on the real Qwen model with the adapters of scripts/lora_adapters.py. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LoraTest {
    private val modelPath: String = System.getProperty("pocketlm.testModel")
        ?: error("set -Dpocketlm.testModel to the Qwen2.5 0.5B GGUF path")
    // scripts/fetch-test-models.sh writes the adapters into lora/ beside the model.
    private fun adapterPath(name: String) = File(modelPath).resolveSibling("lora/qwen-lora-$name.gguf").path
    private lateinit var lm: LanguageModel
    private val greedy = ConversationConfig(sampling = SamplingConfig(temperature = 0f, maxTokens = 16))
    private val question = "Name three colours of the rainbow."

    private suspend fun Flow<ChatEvent>.collectReply() = filterIsInstance<ChatEvent.Done>().single().reply

    @BeforeAll
    fun load() = runBlocking {
        lm = LanguageModel.load(modelPath, ModelConfig(contextLength = 1024, threads = 2))
    }

    @AfterAll
    fun close() = lm.close()

    @Test
    fun `an adapter changes the answers of one conversation and comes off again`(): Unit = runBlocking {
        val output = lm.loadAdapter(adapterPath("output"))
        assertEquals(2, output.info.rank)
        assertEquals(2f, output.info.alpha)
        assertEquals(1, output.info.targets)
        assertEquals(64, output.info.sha256.length)
        lm.conversation(greedy).use { chat ->
            val base = chat.ask(question).text
            chat.setAdapters(mapOf(output to 3f))
            val tuned = chat.regenerate().collectReply().text
            assertNotEquals(base, tuned)
            chat.setAdapters(mapOf(output to 0f))
            assertEquals(base, chat.regenerate().collectReply().text, "scale 0 is the base model")
            chat.setAdapters(mapOf(output to 3f))
            assertEquals(tuned, chat.regenerate().collectReply().text, "the same adapter, the same answer")
            chat.setAdapters(emptyMap())
            assertEquals(base, chat.regenerate().collectReply().text, "detached")
            assertEquals(2, chat.messages().size, "the history is kept")
        }
        output.close()
    }

    @Test
    fun `bad adapters and scales throw typed exceptions`(): Unit = runBlocking {
        val foreign = assertThrows<LanguageModelException.AdapterMismatch> { runBlocking { lm.loadAdapter(adapterPath("bad-arch")) } }
        assertTrue(foreign.reason.contains("gemma3"), foreign.reason)
        assertThrows<LanguageModelException.AdapterMismatch> { runBlocking { lm.loadAdapter(adapterPath("bad-alpha")) } }
        assertThrows<LanguageModelException.ModelNotFound> { runBlocking { lm.loadAdapter("/no/such/adapter.gguf") } }
        val attn = lm.loadAdapter(adapterPath("attn"))
        lm.conversation(greedy).use { chat ->
            val refused = assertThrows<LanguageModelException.InvalidOption> { runBlocking { chat.setAdapters(mapOf(attn to Float.NaN)) } }
            assertEquals("adapter scale", refused.name)
            assertTrue(chat.ask(question).text.isNotEmpty(), "the conversation still answers")
        }
        attn.close()
    }

    @Test
    fun `the planner counts the adapters`(): Unit = runBlocking {
        val budget = 700L shl 20
        val bare = LanguageModel.planMemory(modelPath, budget)
        val with = LanguageModel.planMemory(modelPath, budget, listOf(adapterPath("sum"), adapterPath("attn")))
        assertTrue(with.contextLength <= bare.contextLength)
        assertThrows<LanguageModelException.AdapterMismatch> {
            runBlocking { LanguageModel.planMemory(modelPath, budget, listOf(adapterPath("bad-shape"))) }
        }
    }
}
