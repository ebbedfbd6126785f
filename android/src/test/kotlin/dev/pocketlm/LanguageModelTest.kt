package dev.pocketlm

import dev.pocketlm.ffi.ConversationConfig
import dev.pocketlm.ffi.LogLevel
import dev.pocketlm.ffi.ModelConfig
import dev.pocketlm.ffi.Role
import dev.pocketlm.ffi.SamplingConfig
import dev.pocketlm.ffi.StopReason
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.util.Collections

/** The Kotlin SDK on the real engine and the real Qwen2.5 0.5B model, on the host JVM via JNA. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LanguageModelTest {
    private val modelPath: String = System.getProperty("pocketlm.testModel")
        ?: error("set -Dpocketlm.testModel to the Qwen2.5 0.5B GGUF path")
    private val greedy = SamplingConfig(temperature = 0f, maxTokens = 48)
    private lateinit var lm: LanguageModel

    @BeforeAll
    fun load() = runBlocking {
        lm = LanguageModel.load(modelPath, ModelConfig(contextLength = 1024, threads = 2))
    }

    @AfterAll
    fun close() = lm.close()

    @Test
    fun `readme quick start`(): Unit = runBlocking {
        // README: Kotlin quick start (keep the two in sync).
        val lm = LanguageModel.load(modelPath, ModelConfig(contextLength = 1024, threads = 2))
        lm.conversation(ConversationConfig(sampling = SamplingConfig(temperature = 0f, maxTokens = 48))).use { chat ->
            var answer = ""
            chat.send("What is the capital of France?").collect { event ->
                when (event) {
                    is ChatEvent.Delta -> answer += event.text
                    is ChatEvent.Done -> println("${event.reply.metrics.decodeTokensPerS} tok/s")
                    else -> {} // snapshots and tool calls: see Structured.kt
                }
            }
            val next = chat.ask("And of Germany?")
            println(next.text)
            // End of the README snippet.
            assertTrue(answer.contains("Paris"), answer)
            assertTrue(next.text.contains("Berlin"), next.text)
        }
        lm.close()
    }

    @Test
    fun `loads the model and reads its info`() {
        val info = lm.info
        assertEquals("qwen2", info.architecture)
        assertEquals("Q4_K_M", info.quantization)
        assertTrue(info.hasChatTemplate)
        assertEquals(491_400_064L, info.fileSizeBytes)
    }

    @Test
    fun `streams an answer that contains Paris`(): Unit = runBlocking {
        lm.conversation(ConversationConfig(sampling = greedy)).use { chat ->
            val events = chat.send("What is the capital of France?").toList()
            val deltas = events.filterIsInstance<ChatEvent.Delta>().map { it.text }
            val done = events.last() as ChatEvent.Done
            assertTrue(deltas.size > 1, "streamed in pieces")
            assertEquals(done.reply.text, deltas.joinToString(""))
            assertTrue(done.reply.text.contains("Paris"), done.reply.text)
            assertEquals(StopReason.EOS, done.reply.metrics.stopReason)
        }
    }

    @Test
    fun `second turn reuses the KV cache`(): Unit = runBlocking {
        lm.conversation(ConversationConfig(sampling = greedy)).use { chat ->
            val first = chat.ask("What is the capital of France?")
            val second = chat.ask("And of Germany?")
            assertEquals(0, first.metrics.promptTokensReused)
            assertTrue(second.metrics.promptTokensReused > 20, "reused: ${second.metrics}")
            assertTrue(second.metrics.promptTokensEvaluated < second.metrics.promptTokensReused)
            assertTrue(second.text.contains("Berlin"), second.text)
            assertEquals(4, chat.messages().size)
            chat.reset()
            assertEquals(0, chat.messages().size)
        }
    }

    @Test
    fun `cancelling the collector stops the engine and the chat stays usable`(): Unit = runBlocking {
        lm.conversation(ConversationConfig(sampling = SamplingConfig(temperature = 0f, maxTokens = 400))).use { chat ->
            // take(3) cancels the flow after three deltas, which cancels the engine.
            val first = chat.send("Write a long story about a lighthouse keeper.")
                .filterIsInstance<ChatEvent.Delta>().map { it.text }.take(3).toList()
            assertEquals(3, first.size)
            val history = chat.messages() // waits until the engine has stopped
            assertEquals(Role.ASSISTANT, history.last().role)
            val partial = history.last().content
            assertTrue(partial.length < 200, "stopped early, not after 400 tokens: ${partial.length} chars")
            val next = chat.ask("What is 2 + 2? Answer with a number.")
            assertTrue(next.text.contains("4"), next.text)
        }
    }

    @Test
    fun `missing and corrupt model files are typed errors`(): Unit = runBlocking {
        val missing = assertThrows<LanguageModelException.ModelNotFound> { LanguageModel.load("/no/such/model.gguf") }
        assertEquals("/no/such/model.gguf", missing.path)
        val corrupt = File.createTempFile("corrupt", ".gguf").apply { writeBytes("GGUF\u0003\u0000\u0000\u0000garbage".toByteArray()) }
        val e = assertThrows<LanguageModelException.ModelTruncated> { LanguageModel.load(corrupt.path) }
        assertTrue(e.message!!.contains("truncated"), e.message)
        assertEquals(corrupt.path, e.path)
        assertTrue(e.detail.isNotEmpty(), e.detail)
        val notGguf = File.createTempFile("text", ".gguf").apply { writeText("hello") }
        assertThrows<LanguageModelException.NotGguf> { LanguageModel.load(notGguf.path) }
        Unit
    }

    @Test
    fun `invalid sampling is a typed error with its fields`(): Unit = runBlocking {
        val e = assertThrows<LanguageModelException.InvalidSampling> {
            lm.conversation(ConversationConfig(sampling = SamplingConfig(topP = 1.5f)))
        }
        assertEquals("top_p", e.name)
        assertEquals("1.5", e.value)
        val negative = assertThrows<LanguageModelException.InvalidSampling> {
            lm.conversation(ConversationConfig(sampling = SamplingConfig(maxTokens = -1)))
        }
        assertEquals("max_tokens", negative.name)
        Unit
    }

    @Test
    fun `a negative option is refused by name before anything loads`(): Unit = runBlocking {
        val before = LanguageModel.liveModels
        val e = assertThrows<LanguageModelException.InvalidOption> { LanguageModel.load(modelPath, ModelConfig(threads = -2)) }
        assertEquals("threads", e.name)
        assertEquals("-2", e.value)
        assertEquals(before, LanguageModel.liveModels)
        val budget = assertThrows<LanguageModelException.InvalidOption> { LanguageModel.planMemory(modelPath, -1L) }
        assertEquals("budget_bytes", budget.name)
        Unit
    }

    @Test
    fun `concurrent coroutines do not interfere`(): Unit = runBlocking {
        val answers = (1..3).map {
            async(kotlinx.coroutines.Dispatchers.Default) {
                lm.conversation(ConversationConfig(sampling = SamplingConfig(temperature = 0f, maxTokens = 16))).use {
                    it.ask("What is the capital of Italy?").text
                }
            }
        }.awaitAll()
        assertTrue(answers.all { it == answers[0] }, "$answers")
        assertTrue(answers[0].contains("Rome"), answers[0])
        // Two coroutines on one conversation queue instead of corrupting it.
        lm.conversation(ConversationConfig(sampling = SamplingConfig(temperature = 0f, maxTokens = 16))).use { chat ->
            listOf("Say hi.", "Say bye.").map { q -> async(kotlinx.coroutines.Dispatchers.Default) { chat.ask(q) } }.awaitAll()
            assertEquals(4, chat.messages().size)
        }
    }

    @Test
    fun `closing frees the model`(): Unit = runBlocking {
        val before = LanguageModel.liveModels
        val model = LanguageModel.load(modelPath, ModelConfig(contextLength = 256, threads = 2))
        val chat = model.conversation()
        assertEquals(before + 1, LanguageModel.liveModels)
        model.close()
        assertEquals(before + 1, LanguageModel.liveModels, "the conversation still uses it")
        chat.close()
        assertEquals(before, LanguageModel.liveModels)
    }

    @Test
    fun `a memory budget is planned before loading and refused when nothing fits`(): Unit = runBlocking {
        val budget = 700L * 1024L * 1024L
        val plan = LanguageModel.planMemory(modelPath, budget)
        assertTrue(plan.predictedPeakBytes <= budget, "$plan")
        assertTrue(plan.contextLength in 512..32767, "$plan")
        LanguageModel.load(modelPath, ModelConfig(threads = 2, memoryBudgetBytes = budget)).use { budgeted ->
            assertEquals(plan.contextLength, budgeted.memoryPlan!!.contextLength)
            budgeted.conversation(ConversationConfig(sampling = greedy)).use { chat ->
                assertEquals(plan.contextLength, chat.contextLength)
                assertTrue(chat.ask("What is the capital of France?").text.contains("Paris"))
            }
        }
        val e = assertThrows<LanguageModelException.InsufficientMemory> {
            LanguageModel.load(modelPath, ModelConfig(memoryBudgetBytes = 100L * 1024L * 1024L))
        }
        assertTrue(e.message!!.contains("budget is 100 MiB"), e.message)
        assertEquals(100L * 1024L * 1024L, e.budgetBytes)
        assertTrue(e.neededBytes > e.budgetBytes, "needs ${e.neededBytes}")
    }

    @Test
    fun `logs reach the callback`(): Unit = runBlocking {
        val lines = Collections.synchronizedList(mutableListOf<String>())
        Logging.configure(LogLevel.INFO, LogLevel.OFF) { level, target, message -> lines += "$level $target $message" }
        LanguageModel.load(modelPath, ModelConfig(contextLength = 256)).close()
        Logging.configure(LogLevel.WARN)
        assertTrue(lines.any { it.startsWith("INFO pocketlm loaded") }, "$lines")
    }
}
