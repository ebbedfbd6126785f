package dev.pocketlm

import com.sun.net.httpserver.HttpServer
import dev.pocketlm.ffi.CloudEndpoint
import dev.pocketlm.ffi.ConversationConfig
import dev.pocketlm.ffi.ModelConfig
import dev.pocketlm.ffi.FfiException
import dev.pocketlm.ffi.PocketModel
import dev.pocketlm.ffi.Reply
import dev.pocketlm.ffi.ReplyListener
import dev.pocketlm.ffi.Role
import dev.pocketlm.ffi.RoutePolicy
import dev.pocketlm.ffi.RouterConfig
import dev.pocketlm.ffi.SamplingConfig
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.net.InetSocketAddress
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference

/** The UI never blocks: reads during an answer, cancellable loading with progress, failing listeners. */
class ResponsivenessTest {
    private val modelPath: String = System.getProperty("pocketlm.testModel")
        ?: error("set -Dpocketlm.testModel to the Qwen2.5 0.5B GGUF path")
    private val modelConfig = ModelConfig(contextLength = 1024, threads = 2)
    private val longAnswer = ConversationConfig(sampling = SamplingConfig(temperature = 0f, maxTokens = 400))

    /** Runs [read] and returns its value and how long it took, in milliseconds. */
    private inline fun <T> timed(read: () -> T): Pair<T, Double> {
        val started = System.nanoTime()
        val value = read()
        return value to (System.nanoTime() - started) / 1e6
    }

    @Test
    fun `conversation reads return at once while an answer streams`(): Unit = runBlocking {
        LanguageModel.load(modelPath, modelConfig).use { lm ->
            lm.conversation(longAnswer).use { chat ->
                chat.contextLength // first call loads the JNA classes
                val deltas = Channel<String>(Channel.UNLIMITED)
                val streaming = launch(Dispatchers.Default) {
                    chat.send("Write a long story about a lighthouse keeper.").collect { event ->
                        if (event is ChatEvent.Delta) deltas.send(event.text)
                    }
                }
                deltas.receive()
                deltas.receive() // the engine is decoding and holds its lock
                val (length, lengthMs) = timed { chat.contextLength }
                val (history, historyMs) = timed { chat.messages() }
                assertTrue(lengthMs < 50, "contextLength took $lengthMs ms")
                assertTrue(historyMs < 50, "messages() took $historyMs ms")
                assertEquals(1024, length)
                // During an answer: the message being answered and the text so far.
                assertEquals(listOf(Role.USER, Role.ASSISTANT), history.map { it.role })
                assertTrue(history[1].content.isNotEmpty(), "$history")
                streaming.cancelAndJoin()
            }
        }
    }

    @Test
    fun `routed reads return at once while the cloud is slow`(): Unit = runBlocking {
        val requestArrived = CountDownLatch(1)
        val release = CountDownLatch(1)
        val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/v1/chat/completions") { exchange ->
            exchange.requestBody.readBytes()
            requestArrived.countDown()
            release.await(20, TimeUnit.SECONDS) // a cloud that takes its time
            exchange.responseHeaders.add("Content-Type", "text/event-stream")
            exchange.sendResponseHeaders(200, 0)
            exchange.responseBody.use { out ->
                out.write("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n".toByteArray())
                out.write("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n".toByteArray())
            }
        }
        val pool = Executors.newCachedThreadPool()
        server.executor = pool
        server.start()
        try {
            val router = RouterConfig(
                policy = RoutePolicy.CLOUD_ONLY,
                cloud = CloudEndpoint(baseUrl = "http://127.0.0.1:${server.address.port}/v1", model = "big"),
                priceInputPerMillion = 1.0,
            )
            RoutedChat.open("/nonexistent/model.gguf", router).use { chat ->
                chat.totalCloudCost
                val answer = launch(Dispatchers.Default) { chat.ask("Hello?") }
                assertTrue(requestArrived.await(20, TimeUnit.SECONDS), "the request reached the cloud")
                val (cost, costMs) = timed { chat.totalCloudCost }
                val (error, errorMs) = timed { chat.deviceError }
                val (history, historyMs) = timed { chat.messages() }
                assertTrue(costMs < 50 && errorMs < 50 && historyMs < 50, "reads took $costMs, $errorMs, $historyMs ms")
                assertEquals(0.0, cost, "a running request's cost is added when it ends")
                assertTrue(error!!.contains("not found"), error)
                assertEquals(listOf(Role.USER), history.map { it.role })
                release.countDown()
                answer.join()
                assertEquals(10.0 / 1e6, chat.totalCloudCost, 1e-12)
                assertEquals(2, chat.messages().size)
            }
        } finally {
            release.countDown()
            server.stop(0)
            pool.shutdown()
        }
    }

    @Test
    fun `loading reports progress`(): Unit = runBlocking {
        val seen = Collections.synchronizedList(mutableListOf<Float>())
        LanguageModel.load(modelPath, modelConfig) { seen += it }.close()
        assertTrue(seen.size > 5, "$seen")
        assertTrue(seen.zipWithNext().all { (a, b) -> a < b }, "increasing: $seen")
        assertEquals(1f, seen.last())
        // A progress callback that throws does not break the load.
        LanguageModel.load(modelPath, modelConfig) { throw IllegalStateException("progress bar broke") }.close()
    }

    @Test
    fun `cancelling the coroutine stops the load`(): Unit = runBlocking {
        val before = LanguageModel.liveModels
        val calls = AtomicInteger()
        val job = AtomicReference<Job>()
        val loading = launch(Dispatchers.Default, start = CoroutineStart.LAZY) {
            LanguageModel.load(modelPath, modelConfig) {
                calls.incrementAndGet()
                job.get().cancel() // e.g. the user leaves the screen
            }.close()
        }
        job.set(loading)
        loading.start()
        withTimeout(10_000) { loading.join() }
        assertTrue(loading.isCancelled)
        delay(1_500) // a load that went on would report more progress (a full load takes < 1 s here)
        assertEquals(1, calls.get(), "no progress after the cancel: the native load stopped")
        assertEquals(before, LanguageModel.liveModels)
    }

    @Test
    fun `a listener that throws ends the answer with an error and stops decoding`(): Unit = runBlocking {
        PocketModel.load(modelPath, modelConfig).use { model ->
            model.newConversation(longAnswer).use { chat ->
                val failure = CompletableDeferred<FfiException>()
                val deltas = AtomicInteger()
                val handle = chat.send("Write a long story about a lighthouse keeper.", object : ReplyListener {
                    override fun onDelta(text: String) {
                        deltas.incrementAndGet()
                        throw IllegalStateException("the UI crashed")
                    }

                    override fun onSnapshot(json: String) {}

                    override fun onToolCall(call: dev.pocketlm.ffi.ToolCall) {}

                    override fun onComplete(reply: Reply) {
                        failure.completeExceptionally(AssertionError("completed normally: $reply"))
                    }

                    override fun onError(error: FfiException) {
                        failure.complete(error)
                    }
                })
                val error = withTimeout(30_000) { failure.await() }.toPublic()
                assertTrue(error is LanguageModelException.Inference, "$error")
                assertTrue(error.message!!.contains("the UI crashed"), error.message)
                assertEquals(1, deltas.get(), "no deltas after the failure")
                assertTrue(handle.isFinished())
                handle.close()
                // Decoding stopped (not 400 tokens) and the conversation is free again.
                val partial = chat.messages().last()
                assertEquals(Role.ASSISTANT, partial.role)
                assertTrue(partial.content.length < 200, "stopped early: ${partial.content.length} chars")
                val (reply, ms) = timed { chat.ask("What is 2 + 2? Answer with a number.") }
                assertTrue(reply.text.contains("4"), reply.text)
                assertTrue(ms < 30_000, "answered in $ms ms")
            }
        }
    }

    @Test
    fun `a collector that throws stops the engine`(): Unit = runBlocking {
        LanguageModel.load(modelPath, modelConfig).use { lm ->
            lm.conversation(longAnswer).use { chat ->
                val thrown = runCatching {
                    chat.send("Write a long story about a lighthouse keeper.").collect { throw IllegalStateException("boom") }
                }.exceptionOrNull()
                assertEquals("boom", thrown?.message)
                val next = chat.ask("What is 2 + 2? Answer with a number.")
                assertTrue(next.text.contains("4"), next.text)
            }
        }
    }
}
