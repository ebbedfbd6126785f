package dev.pocketlm

import dev.pocketlm.ffi.ConversationConfig
import dev.pocketlm.ffi.ModelConfig
import dev.pocketlm.ffi.OutputConstraint
import dev.pocketlm.ffi.RequestOptions
import dev.pocketlm.ffi.SamplingConfig
import dev.pocketlm.ffi.StructuredValue
import dev.pocketlm.ffi.ToolChoice
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.serialization.Serializable
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.jsonArray
import kotlinx.serialization.json.jsonObject
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows

@Serializable
enum class Priority { low, medium, high }

@Serializable
data class Task(
    @Guide("a short title") val title: String,
    val priority: Priority,
    val minutes: Int,
    val tags: List<String>,
)

@Serializable
data class TimerArgs(val minutes: Int, val label: String? = null)

/** Typed answers, snapshots and tools from Kotlin, on the real Qwen2.5 0.5B model. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class StructuredTest {
    private val modelPath: String = System.getProperty("pocketlm.testModel")
        ?: error("set -Dpocketlm.testModel to the Qwen2.5 0.5B GGUF path")
    private lateinit var lm: LanguageModel
    private val config = ConversationConfig(sampling = SamplingConfig(temperature = 0f, maxTokens = 120))

    @BeforeAll
    fun load() = runBlocking {
        lm = LanguageModel.load(modelPath, ModelConfig(contextLength = 1024, threads = 2))
    }

    @AfterAll
    fun close() = lm.close()

    @Test
    fun `a serializable class becomes a JSON Schema`() {
        val schema = Task.serializer().descriptor.toJsonSchema()
        val properties = schema["properties"]!!.jsonObject
        assertEquals(setOf("title", "priority", "minutes", "tags"), properties.keys)
        assertEquals("a short title", properties["title"]!!.jsonObject["description"].toString().trim('"'))
        assertEquals(3, properties["priority"]!!.jsonObject["enum"]!!.jsonArray.size)
        assertEquals(4, schema["required"]!!.jsonArray.size)
        // A property with a default is optional.
        assertEquals(1, TimerArgs.serializer().descriptor.toJsonSchema()["required"]!!.jsonArray.size)
    }

    @Test
    fun `respond decodes a typed value`(): Unit = runBlocking {
        lm.conversation(config).use { chat ->
            val task: Task = chat.respond("Make a task: water the plants, high priority, 10 minutes, tags home and garden.")
            assertEquals(Priority.high, task.priority, "$task")
            assertTrue(task.title.isNotBlank(), "$task")
            assertTrue(task.minutes > 0, "$task")
        }
    }

    @Test
    fun `a streamed typed answer sends growing snapshots`(): Unit = runBlocking {
        lm.conversation(config).use { chat ->
            val events = chat.streamResponse<Task>("Make a task: call the bank, medium priority, 5 minutes, tag finance.").toList()
            val snapshots = events.filterIsInstance<ChatEvent.Snapshot>().map { it.json }
            assertTrue(snapshots.size > 3, "$snapshots")
            assertTrue(snapshots.all { it is JsonObject })
            val done = events.filterIsInstance<ChatEvent.Done>().single().reply
            val task: Task = done.decodeAnswer()
            assertEquals(Priority.medium, task.priority)
        }
    }

    @Test
    fun `a choice carries every option's probability`(): Unit = runBlocking {
        lm.conversation(config).use { chat ->
            val options = RequestOptions(OutputConstraint.Choice(listOf("positive", "negative")), emptyList(), ToolChoice.Auto)
            val reply = chat.ask("Sentiment of: I love this phone, it is wonderful!", options)
            val choice = reply.structured as StructuredValue.Choice
            assertEquals("positive", reply.text)
            assertEquals(0, choice.index)
            assertEquals(1.0, choice.probabilities.sum(), 1e-9)
        }
    }

    @Test
    fun `a tool round trip runs the suspend handler and answers`(): Unit = runBlocking {
        lm.conversation(config).use { chat ->
            val calls = mutableListOf<TimerArgs>()
            val timer = Tool<TimerArgs>("set_timer", "Start a countdown timer.") { args ->
                calls += args
                """{"ok": true}"""
            }
            val events = mutableListOf<ChatEvent>()
            val reply = chat.respond("Set a timer for 25 minutes.", listOf(timer), choice = ToolChoice.Required) { events += it }
            assertEquals(25, calls.first().minutes, "$calls")
            assertTrue(events.any { it is ChatEvent.ToolCallMade }, "$events")
            assertTrue(reply.toolCalls.isEmpty() && reply.text.isNotBlank(), "$reply")
        }
    }

    @Test
    fun `errors are typed`(): Unit = runBlocking {
        lm.conversation(config).use { chat ->
            val bad = RequestOptions(OutputConstraint.JsonSchema("{\"type\": \"object\", \"uniqueItems\": 3"), emptyList(), ToolChoice.Auto)
            assertThrows<LanguageModelException.InvalidConstraint> { chat.ask("hi", bad) }
            val short = lm.conversation(ConversationConfig(sampling = SamplingConfig(temperature = 0f, maxTokens = 4)))
            val e = assertThrows<LanguageModelException.StructuredOutputIncomplete> { short.respond<Task>("Make a task: buy milk.") }
            assertTrue(e.partialText.startsWith("{"), e.partialText)
            short.close()
            val never = Tool<TimerArgs>("set_timer", "Start a countdown timer.") { "{}" }
            assertThrows<LanguageModelException.ToolRoundsExceeded> {
                chat.respond("Set a timer for 3 minutes.", listOf(never), choice = ToolChoice.Required, maxRounds = 0)
            }
            Unit
        }
    }
}
