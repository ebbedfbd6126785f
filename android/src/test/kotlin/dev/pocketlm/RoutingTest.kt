package dev.pocketlm

import com.sun.net.httpserver.HttpServer
import dev.pocketlm.ffi.CloudEndpoint
import dev.pocketlm.ffi.CloudErrorKind
import dev.pocketlm.ffi.ConversationConfig
import dev.pocketlm.ffi.ModelConfig
import dev.pocketlm.ffi.RoutePolicy
import dev.pocketlm.ffi.RouteReason
import dev.pocketlm.ffi.RouteRequest
import dev.pocketlm.ffi.RouterConfig
import dev.pocketlm.ffi.SamplingConfig
import dev.pocketlm.ffi.OutputConstraint
import dev.pocketlm.ffi.RequestOptions
import dev.pocketlm.ffi.StructuredValue
import dev.pocketlm.ffi.ToolChoice
import dev.pocketlm.ffi.ToolResult
import dev.pocketlm.ffi.ToolSpec
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.net.InetSocketAddress
import java.util.Collections

/** Hybrid routing from Kotlin, with a real OpenAI-style SSE server on loopback. */
class RoutingTest {
    private val modelPath: String = System.getProperty("pocketlm.testModel")
        ?: error("set -Dpocketlm.testModel to the Qwen2.5 0.5B GGUF path")
    private val probePath: String = System.getProperty("pocketlm.testProbe")
        ?: error("set -Dpocketlm.testProbe to a probe from scripts/make-test-probe.sh")
    private val greedy = ConversationConfig(sampling = SamplingConfig(temperature = 0f, maxTokens = 16))

    /** Answers every chat completion with a streamed "Hello from the cloud."; records request bodies. */
    private fun cloud(bodies: MutableList<String>): HttpServer {
        val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/v1/chat/completions") { exchange ->
            bodies.add(exchange.requestBody.readBytes().decodeToString())
            exchange.responseHeaders.add("Content-Type", "text/event-stream")
            exchange.sendResponseHeaders(200, 0)
            exchange.responseBody.use { out ->
                for (part in listOf("Hello", " from", " the cloud.")) {
                    out.write("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"$part\"},\"finish_reason\":null}]}\n\n".toByteArray())
                }
                out.write("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":5}}\n\ndata: [DONE]\n\n".toByteArray())
            }
        }
        server.start()
        return server
    }

    private fun HttpServer.url() = "http://127.0.0.1:${address.port}/v1"

    /** Streams each request's next scripted answer (SSE `data:` payloads); records request bodies. */
    private fun scripted(bodies: MutableList<String>, answers: List<List<String>>): HttpServer {
        val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/v1/chat/completions") { exchange ->
            bodies.add(exchange.requestBody.readBytes().decodeToString())
            val events = answers[minOf(bodies.size, answers.size) - 1]
            exchange.responseHeaders.add("Content-Type", "text/event-stream")
            exchange.sendResponseHeaders(200, 0)
            exchange.responseBody.use { out ->
                for (data in events + "[DONE]") out.write("data: $data\n\n".toByteArray())
            }
        }
        server.start()
        return server
    }

    @Test
    fun `tools and schemas go to the cloud and come back typed`(): Unit = runBlocking {
        val bodies = Collections.synchronizedList(mutableListOf<String>())
        val call = listOf(
            """{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}""",
            """{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Oslo\"}"}}]}}]}""",
            """{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}""",
        )
        val answer = listOf("""{"choices":[{"index":0,"delta":{"content":"Snowing in Oslo."},"finish_reason":"stop"}]}""")
        val json = listOf("""{"choices":[{"index":0,"delta":{"content":"{\"city\": \"Oslo\"}"},"finish_reason":"stop"}]}""")
        val server = scripted(bodies, listOf(call, answer, json))
        try {
            val router = RouterConfig(policy = RoutePolicy.CLOUD_ONLY, cloud = CloudEndpoint(baseUrl = server.url(), model = "big"))
            RoutedChat.open("/nonexistent/model.gguf", router, conversation = greedy).use { chat ->
                val weather = ToolSpec(
                    "get_weather",
                    "Weather for a city.",
                    """{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}""",
                )
                val tools = RouteRequest(options = RequestOptions(constraint = null, tools = listOf(weather), toolChoice = ToolChoice.Auto))
                val events = chat.send("Weather in Oslo?", tools).toList()
                val made = events.filterIsInstance<RouteEvent.ToolCallMade>().single().call
                assertEquals("get_weather" to """{"city":"Oslo"}""", made.name to made.argumentsJson)
                val reply = (events.last() as RouteEvent.Done).reply
                assertEquals(listOf(made), reply.toolCalls)
                assertTrue(bodies[0].contains("\"tools\"") && bodies[0].contains("get_weather"), bodies[0])

                val results = listOf(ToolResult(made.id, made.name, """{"sky": "snow"}""", isError = false))
                val next = chat.sendToolResults(results, tools).toList()
                assertEquals("Snowing in Oslo.", (next.last() as RouteEvent.Done).reply.text)
                assertTrue(bodies[1].contains("\"tool_call_id\":\"call_1\""), bodies[1])
                assertEquals(listOf("user", "assistant", "tool", "assistant"), chat.messages().map { it.role.name.lowercase() })

                val schema = """{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}"""
                val typed = RouteRequest(options = RequestOptions(OutputConstraint.JsonSchema(schema), emptyList(), ToolChoice.Auto))
                val value = chat.ask("Which city?", typed).structured
                assertEquals(StructuredValue.Json("""{"city":"Oslo"}"""), value)
                assertTrue(bodies[2].contains("\"response_format\""), bodies[2])
            }
        } finally {
            server.stop(0)
        }
    }

    @Test
    fun `a missing model escalates to the cloud, redacted and costed`(): Unit = runBlocking {
        val bodies = Collections.synchronizedList(mutableListOf<String>())
        val server = cloud(bodies)
        try {
            val router = RouterConfig(
                policy = RoutePolicy.PREFER_LOCAL,
                cloud = CloudEndpoint(baseUrl = server.url(), model = "big"),
                priceInputPerMillion = 1.0,
                priceOutputPerMillion = 2.0,
            )
            RoutedChat.open("/nonexistent/model.gguf", router, conversation = greedy) { _, content ->
                content.replace("secret-42", "[redacted]")
            }.use { chat ->
                assertTrue(chat.deviceError!!.contains("not found"), chat.deviceError)
                val events = chat.send("My code is secret-42. Hi!").toList()
                val reply = (events.last() as RouteEvent.Done).reply
                assertEquals("Hello from the cloud.", reply.text)
                assertTrue(reply.answeredByCloud)
                assertEquals(RouteReason.MODEL_UNAVAILABLE, reply.reason)
                assertEquals(20, reply.cost.cloudInputTokens)
                assertEquals((20 * 1.0 + 5 * 2.0) / 1e6, reply.cost.cloudCost, 1e-12)
                assertTrue(bodies.single().contains("[redacted]") && !bodies.single().contains("secret-42"))
                assertEquals(2, chat.messages().size)
            }
        } finally {
            server.stop(0)
        }
    }

    @Test
    fun `local-only and allowCloud false never call the cloud`(): Unit = runBlocking {
        val bodies = Collections.synchronizedList(mutableListOf<String>())
        val server = cloud(bodies)
        try {
            val endpoint = CloudEndpoint(baseUrl = server.url(), model = "big")
            val config = ModelConfig(contextLength = 1024, threads = 2)
            RoutedChat.open(modelPath, RouterConfig(policy = RoutePolicy.LOCAL_ONLY, cloud = endpoint), config, greedy).use { chat ->
                val reply = chat.ask("What is the capital of France?")
                assertFalse(reply.answeredByCloud)
                assertEquals(RouteReason.POLICY, reply.reason)
                assertTrue(reply.text.contains("Paris"), reply.text)
            }
            RoutedChat.open(modelPath, RouterConfig(policy = RoutePolicy.CLOUD_ONLY, cloud = endpoint), config, greedy).use { chat ->
                val reply = chat.ask("What is the capital of France?", RouteRequest(policy = RoutePolicy.PREFER_LOCAL, allowCloud = false))
                assertFalse(reply.answeredByCloud)
            }
            assertTrue(bodies.isEmpty(), "nothing may leave the device")
        } finally {
            server.stop(0)
        }
    }

    @Test
    fun `a cloud that refuses is a typed error with its kind`(): Unit = runBlocking {
        val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/v1/chat/completions") { exchange ->
            exchange.requestBody.readBytes()
            val body = "{\"error\":{\"message\":\"bad key\"}}".toByteArray()
            exchange.sendResponseHeaders(401, body.size.toLong())
            exchange.responseBody.use { it.write(body) }
        }
        server.start()
        try {
            val router = RouterConfig(policy = RoutePolicy.CLOUD_ONLY, cloud = CloudEndpoint(baseUrl = server.url(), model = "big"))
            RoutedChat.open("/nonexistent/model.gguf", router).use { chat ->
                val e = assertThrows<LanguageModelException.Cloud> { chat.ask("Hi") }
                assertEquals(CloudErrorKind.UNAUTHORIZED, e.kind)
                assertFalse(e.transient)
                assertTrue(e.message!!.contains("API key"), e.message)
                assertTrue(chat.messages().isEmpty(), "a failed request leaves no history")
            }
        } finally {
            server.stop(0)
        }
    }

    @Test
    fun `a routed chat over a loaded model regenerates, edits, saves and restores with its cache`(): Unit = runBlocking {
        val file = java.nio.file.Files.createTempFile("pocketlm-routed", ".session").toFile()
        try {
            LanguageModel.load(modelPath, ModelConfig(contextLength = 1024, threads = 2)).use { lm ->
                val router = RouterConfig(policy = RoutePolicy.LOCAL_ONLY)
                val (history, next) = lm.routedChat(router, greedy).use { chat ->
                    val first = chat.ask("What is the capital of France?")
                    assertFalse(first.answeredByCloud)
                    val again = chat.regenerate().toList().filterIsInstance<RouteEvent.Done>().single().reply
                    assertEquals(first.text, again.text, "greedy: the same answer again")
                    assertEquals(2, chat.messages().size, "regenerate replaces the answer")
                    chat.editLastMessage("What is the capital of Italy?").toList()
                    val messages = chat.messages()
                    assertEquals(listOf("What is the capital of Italy?"), messages.filter { it.role == dev.pocketlm.ffi.Role.USER }.map { it.content })
                    assertTrue(messages.last().content.contains("Rome"), messages.last().content)
                    val saved = chat.save(file)
                    assertEquals(2, saved.messages)
                    messages to chat.ask("And of Spain?").text
                }
                // A new routed chat (as after an app kill) restores the history and the device's cache.
                lm.routedChat(router, greedy).use { chat ->
                    val restored = chat.restore(file)
                    assertEquals(null, restored.fallbackReason)
                    assertTrue(restored.cachedTokens > 10, "$restored")
                    assertEquals(history, chat.messages())
                    val reply = chat.ask("And of Spain?")
                    assertEquals(next, reply.text)
                    assertEquals(restored.cachedTokens, reply.metrics!!.promptTokensReused)
                }
            }
        } finally {
            file.delete()
        }
    }

    @Test
    fun `a router probe scores choices, keeps to its model, and budgets keep requests on the device`(): Unit = runBlocking {
        val bodies = Collections.synchronizedList(mutableListOf<String>())
        val server = cloud(bodies)
        val badProbe = java.nio.file.Files.createTempFile("pocketlm-probe", ".json").toFile()
        try {
            val endpoint = CloudEndpoint(baseUrl = server.url(), model = "big")
            val config = ModelConfig(contextLength = 1024, threads = 2)
            val choice = RouteRequest(options = RequestOptions(OutputConstraint.Choice(listOf("A", "B", "C", "D")), emptyList(), ToolChoice.Auto))
            val question = "Which planet is known as the Red Planet? A. Venus B. Mars C. Jupiter D. Saturn. Reply with the letter only."
            RoutedChat.open(modelPath, RouterConfig(policy = RoutePolicy.LOCAL_ONLY, probePath = probePath), config, greedy).use { chat ->
                val reply = chat.ask(question, choice)
                val signals = reply.confidence!!
                assertTrue(signals.probe!! in 0f..1f, "$signals")
                assertTrue(signals.answerProbability!! > 0f && signals.answerMargin!! >= 0f, "$signals")
            }
            // The same probe bound to another model file is refused when the chat opens.
            badProbe.writeText(java.io.File(probePath).readText().replace(Regex("\"header_sha256\":\"[0-9a-f]+\""), "\"header_sha256\":\"${"0".repeat(64)}\""))
            val e = assertThrows<LanguageModelException.RouterProbe> {
                RoutedChat.open(modelPath, RouterConfig(policy = RoutePolicy.LOCAL_ONLY, probePath = badProbe.path), config, greedy)
            }
            assertTrue(e.detail.contains("train one for this model"), e.message)
            // A budget too small for any cloud answer: prefer-cloud answers on the device, and says why.
            val router = RouterConfig(policy = RoutePolicy.PREFER_CLOUD, cloud = endpoint, priceInputPerMillion = 1.0, budgetPerRequest = 1e-9)
            RoutedChat.open(modelPath, router, config, greedy).use { chat ->
                val reply = chat.ask("What is the capital of France?")
                assertFalse(reply.answeredByCloud)
                assertEquals(RouteReason.CLOUD_BUDGET, reply.reason)
                assertTrue(reply.detail!!.contains("per-request budget"), reply.detail)
            }
            assertTrue(bodies.isEmpty(), "nothing was sent over budget")
        } finally {
            badProbe.delete()
            server.stop(0)
        }
    }
}
