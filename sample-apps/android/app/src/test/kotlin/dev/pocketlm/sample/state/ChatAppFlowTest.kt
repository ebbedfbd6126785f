package dev.pocketlm.sample.state

import com.sun.net.httpserver.HttpServer
import dev.pocketlm.ModelCatalog
import dev.pocketlm.ModelDownloads
import dev.pocketlm.ffi.CatalogEntry
import dev.pocketlm.ffi.CatalogFile
import dev.pocketlm.ffi.ModelShape
import dev.pocketlm.ffi.Role
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.io.RandomAccessFile
import java.net.InetSocketAddress
import java.nio.file.Files
import java.security.MessageDigest
import java.util.concurrent.atomic.AtomicBoolean

/**
 * The sample app's whole path through its view models on the real engine, as the
 * Compose screens drive them: download the model from a loopback server (pause,
 * resume) → load → chat → stop mid-answer → save → drop everything (an app kill)
 * → restore with the cache → continue → memory pressure → reload → continue.
 */
class ChatAppFlowTest {
    private val model = File(System.getProperty("pocketlm.testModel") ?: error("set -Dpocketlm.testModel to the Qwen2.5 0.5B GGUF path"))
    private val dir: File = Files.createTempDirectory("pocketlm-sample").toFile()
    private val slow = AtomicBoolean(true)

    @AfterEach
    fun cleanUp() {
        dir.deleteRecursively() // holds a copy of the model
    }

    /** Serves the test model at /qwen.gguf honouring `Range`; 1 MiB per 20 ms while [slow]. */
    private fun server(): HttpServer {
        val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/qwen.gguf") { exchange ->
            val size = model.length()
            val range = exchange.requestHeaders.getFirst("Range")
            val from = range?.removePrefix("bytes=")?.substringBefore('-')?.toLong() ?: 0L
            exchange.responseHeaders.add("ETag", "\"v1\"")
            if (range != null) exchange.responseHeaders.add("Content-Range", "bytes $from-${size - 1}/$size")
            exchange.sendResponseHeaders(if (range != null) 206 else 200, size - from)
            try {
                RandomAccessFile(model, "r").use { file ->
                    file.seek(from)
                    exchange.responseBody.use { out ->
                        val buffer = ByteArray(1 shl 20)
                        while (true) {
                            val n = file.read(buffer)
                            if (n < 0) break
                            out.write(buffer, 0, n)
                            if (slow.get()) Thread.sleep(20)
                        }
                    }
                }
            } catch (_: java.io.IOException) {
                // the client hung up (pause or cancel)
            }
        }
        server.start()
        return server
    }

    private fun sha256(file: File): String {
        val digest = MessageDigest.getInstance("SHA-256")
        file.inputStream().use { input ->
            val buffer = ByteArray(1 shl 20)
            while (true) {
                val n = input.read(buffer)
                if (n < 0) break
                digest.update(buffer, 0, n)
            }
        }
        return digest.digest().joinToString("") { "%02x".format(it) }
    }

    private fun settings() = MutableStateFlow(
        ChatSettings(systemPrompt = "You are a concise assistant.", temperature = 0f, maxTokens = 48, contextLength = 1024),
    )

    @Test
    fun `download, chat, stop, kill, restore with the cache, memory pressure and reload`(): Unit = runBlocking {
        val server = server()
        val entry = CatalogEntry(
            id = "qwen-0.5b",
            name = "Qwen2.5-Coder 0.5B",
            quantization = "Q4_K_M",
            license = "Apache-2.0",
            file = CatalogFile(url = "http://127.0.0.1:${server.address.port}/qwen.gguf", fileName = "qwen.gguf", size = model.length(), sha256 = sha256(model)),
            shape = ModelShape("qwen2", 24, 896, 14, 2, 64, 4864, 151936, 32768, tiedEmbeddings = false),
        )
        val path = try {
            ModelCatalog.fromJson("""{"version": 1, "models": []}""").use { catalog ->
                catalog.add(entry)
                ModelDownloads(File(dir, "models").path).use { downloads -> downloadWithPause(catalog, downloads) }
            }
        } finally {
            server.stop(0)
        }

        val store = ConversationStore(File(dir, "conversations"))
        val settings = settings()
        val first = ChatViewModel(this, store, settings)
        first.load(path).join()
        assertTrue(first.ui.value.model is ModelStatus.Ready, "${first.ui.value.model}")

        // A streamed answer with its figures, saved as soon as it is done.
        first.send("Name three primary colours.")
        val answered = withTimeout(120_000) { first.ui.first { !it.streaming && it.messages.size == 2 } }
        val answer = answered.messages[1]
        assertEquals(Role.ASSISTANT, answer.role)
        assertTrue(answer.text.isNotBlank())
        val stats = assertNotNull(answer.stats).let { answer.stats!! }
        assertTrue(stats.onDevice && stats.ttftMs > 0 && stats.tokensPerSecond > 0, "$stats")
        val id = answered.conversationId!!
        assertTrue(store.file(id).length() > 0, "saved after the answer")

        // Stop mid-answer: what was shown stays, and is saved.
        settings.value = settings.value.copy(maxTokens = 400)
        first.send("Write a long story about a lighthouse keeper.")
        val shown = withTimeout(120_000) { first.ui.first { it.streaming && (it.messages.lastOrNull()?.takeIf { m -> m.role == Role.ASSISTANT }?.text?.length ?: 0) > 20 } }
        first.stop()
        val stopped = withTimeout(60_000) { first.ui.first { !it.streaming } }
        val partial = stopped.messages.last()
        assertEquals(Role.ASSISTANT, partial.role)
        assertTrue(partial.text.startsWith(shown.messages.last().text), "nothing shown is lost")
        assertEquals(4, stopped.messages.size)

        // Regenerate replaces the partial answer; editing the last message replaces the question.
        first.regenerate()
        val regenerated = withTimeout(120_000) { first.ui.first { !it.streaming && it.messages.last().stats != null } }
        assertEquals(4, regenerated.messages.size)
        first.editLast("Write one sentence about a lighthouse.")
        val edited = withTimeout(120_000) { first.ui.first { !it.streaming && it.messages.last().stats != null && it.messages[2].text.startsWith("Write one") } }
        assertEquals(4, edited.messages.size)
        val beforeKill = edited.messages.map { it.role to it.text }

        // An app kill: nothing survives but the files.
        first.close()
        assertEquals(listOf(id), store.list().map { it.id })
        assertEquals("Name three primary colours.", store.list().single().title)

        // The app starts again and reopens what was on screen.
        val second = ChatViewModel(this, store, settings)
        assertFalse(second.ui.value.canSend)
        second.resumeLast().join()
        val reopened = second.ui.value
        assertEquals(id, reopened.conversationId)
        assertEquals(path, reopened.modelPath)
        assertTrue(reopened.canSend)
        assertNull(reopened.error, reopened.error)
        assertEquals(beforeKill, reopened.messages.map { it.role to it.text })
        val cached = reopened.restoredCachedTokens!!
        assertTrue(cached > 50, "the KV cache came back: $cached tokens")

        second.send("Thanks.")
        val continued = withTimeout(120_000) { second.ui.first { !it.streaming && it.messages.size == 6 } }
        val reused = continued.messages.last().stats!!.promptTokensReused
        assertTrue(reused >= cached - 2, "only the new turn was evaluated: reused $reused of $cached")

        // Memory pressure unloads; returning reloads and restores from the file.
        second.onMemoryPressure().join()
        assertEquals(ModelStatus.Unloaded, second.ui.value.model)
        assertEquals(6, second.ui.value.messages.size, "the screen keeps the conversation")
        second.onForeground().join()
        assertTrue(second.ui.value.model is ModelStatus.Ready)
        assertEquals(continued.messages.map { it.text }, second.ui.value.messages.map { it.text })
        assertTrue(second.ui.value.restoredCachedTokens!! > cached)
        second.send("Bye.")
        val last = withTimeout(120_000) { second.ui.first { !it.streaming && it.messages.size == 8 } }
        assertTrue(last.messages.last().stats!!.promptTokensReused > cached)
        second.close()
    }

    /** Downloads through the model screen's view model, pausing and resuming once; returns the installed path. */
    private suspend fun downloadWithPause(catalog: ModelCatalog, downloads: ModelDownloads): String = kotlinx.coroutines.coroutineScope {
        val models = ModelsViewModel(this, catalog, downloads, budgetBytes = 1L shl 30, contextLength = 1024)
        models.refresh().join()
        val row = models.rows.value.single()
        assertTrue(row.fits, "${row.note}")
        assertEquals(model.length(), row.downloadBytes)
        assertEquals(ModelState.Available, row.state)

        models.download(row.id)
        withTimeout(60_000) { models.rows.first { (it.single().state as? ModelState.Downloading)?.downloaded ?: 0 > 0 } }
        models.pause(row.id)
        val paused = models.rows.value.single().state as ModelState.Downloading
        assertTrue(paused.paused)
        delay(300)
        val settled = (models.rows.value.single().state as ModelState.Downloading).downloaded
        delay(500)
        assertEquals(settled, (models.rows.value.single().state as ModelState.Downloading).downloaded, "paused means no bytes")
        slow.set(false)
        models.resume(row.id)
        val installed = withTimeout(180_000) { models.rows.first { it.single().state is ModelState.Installed } }.single().state as ModelState.Installed
        assertEquals(sha256(model), sha256(File(installed.path)))

        // A fresh screen sees it installed.
        models.refresh().join()
        assertEquals(installed, models.rows.value.single().state)
        installed.path
    }

    @Test
    fun `a cancelled download leaves nothing, and delete removes an installed model`(): Unit = runBlocking {
        val server = server()
        try {
            val entry = CatalogEntry(
                id = "qwen-0.5b", name = "Qwen", quantization = "Q4_K_M", license = "Apache-2.0",
                file = CatalogFile(url = "http://127.0.0.1:${server.address.port}/qwen.gguf", fileName = "qwen.gguf", size = model.length(), sha256 = null),
                shape = ModelShape("qwen2", 24, 896, 14, 2, 64, 4864, 151936, 32768, tiedEmbeddings = false),
            )
            ModelCatalog.fromJson("""{"version": 1, "models": []}""").use { catalog ->
                catalog.add(entry)
                ModelDownloads(File(dir, "models").path).use { downloads ->
                    kotlinx.coroutines.coroutineScope {
                        val models = ModelsViewModel(this, catalog, downloads, budgetBytes = 1L shl 30, contextLength = 1024)
                        models.refresh().join()
                        models.download("qwen-0.5b")
                        withTimeout(60_000) { models.rows.first { (it.single().state as? ModelState.Downloading)?.downloaded ?: 0 > 0 } }
                        models.cancel("qwen-0.5b").join()
                        assertEquals(ModelState.Available, models.rows.value.single().state)
                        assertEquals(0L, downloads.usedBytes, "the part is gone")
                        assertTrue(downloads.installed().isEmpty())
                    }
                }
            }
        } finally {
            server.stop(0)
        }
    }

    @Test
    fun `routed to a cloud endpoint on loopback, with the cloud badge, redaction and the key, and saved like any conversation`(): Unit = runBlocking {
        val bodies = java.util.Collections.synchronizedList(mutableListOf<String>())
        val keys = java.util.Collections.synchronizedList(mutableListOf<String?>())
        val cloud = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        cloud.createContext("/v1/chat/completions") { exchange ->
            bodies.add(exchange.requestBody.readBytes().decodeToString())
            keys.add(exchange.requestHeaders.getFirst("Authorization"))
            exchange.responseHeaders.add("Content-Type", "text/event-stream")
            exchange.sendResponseHeaders(200, 0)
            exchange.responseBody.use { out ->
                for (part in listOf("Hello", " from", " the cloud.")) {
                    out.write("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"$part\"},\"finish_reason\":null}]}\n\n".toByteArray())
                }
                out.write("data: [DONE]\n\n".toByteArray())
            }
        }
        cloud.start()
        try {
            val settings = MutableStateFlow(
                settings().value.copy(
                    routing = RoutingPolicy.CLOUD_ONLY,
                    cloudEndpoint = "http://127.0.0.1:${cloud.address.port}/v1",
                    cloudModel = "big-model",
                    redaction = true,
                ),
            )
            val store = ConversationStore(File(dir, "conversations"))
            val chat = ChatViewModel(this, store, settings) { "sk-test-key" }
            chat.load(model.path).join()
            chat.send("Write to jane.doe@example.com or call +44 20 7946 0958 about the party.")
            val answered = withTimeout(60_000) { chat.ui.first { !it.streaming && it.messages.size == 2 } }
            assertEquals("Hello from the cloud.", answered.messages[1].text)
            val stats = answered.messages[1].stats!!
            assertFalse(stats.onDevice, "the cloud badge")
            assertTrue(stats.ttftMs > 0, "$stats")
            val sent = bodies.single()
            assertTrue("[email]" in sent && "[phone]" in sent, sent)
            assertFalse("jane.doe@example.com" in sent || "7946" in sent, "nothing personal left the phone: $sent")
            assertTrue("big-model" in sent, sent)
            assertEquals("Bearer sk-test-key", keys.single())
            assertTrue(store.file(answered.conversationId!!).length() > 0, "a routed conversation is saved too")

            // Back to the device for new conversations: the device badge.
            settings.value = settings.value.copy(routing = RoutingPolicy.DEVICE_ONLY)
            chat.newConversation().join()
            chat.send("Say hi.")
            val local = withTimeout(60_000) { chat.ui.first { !it.streaming && it.messages.size == 2 } }
            assertTrue(local.messages[1].stats!!.onDevice)
            assertEquals(1, bodies.size, "nothing more went to the cloud")

            // A cloud that cannot be reached: the typed text comes back for the input, the history is as it was.
            settings.value = settings.value.copy(routing = RoutingPolicy.CLOUD_ONLY, cloudEndpoint = "http://127.0.0.1:9/v1")
            chat.newConversation().join()
            assertTrue(chat.send("Is anyone there?"))
            val failed = withTimeout(60_000) { chat.ui.first { !it.streaming && it.error != null } }
            assertEquals("Is anyone there?", failed.unsent, failed.error)
            assertTrue(failed.messages.isEmpty(), "${failed.messages}")
            assertEquals("Is anyone there?", chat.takeUnsent())
            assertNull(chat.ui.value.unsent)

            // A damaged conversation file opens as a new conversation, and is never saved over.
            val damaged = store.file("chat-damaged")
            damaged.writeBytes(ByteArray(64) { 7 })
            settings.value = settings.value.copy(routing = RoutingPolicy.DEVICE_ONLY)
            chat.open("chat-damaged").join()
            val opened = chat.ui.value
            assertTrue(opened.conversationId != "chat-damaged" && opened.error!!.contains("could not be opened"), "$opened")
            assertTrue(chat.send("Say hi."))
            withTimeout(60_000) { chat.ui.first { !it.streaming && it.messages.size == 2 } }
            assertTrue(damaged.readBytes().all { it == 7.toByte() }, "the damaged file is untouched")
            chat.close()
        } finally {
            cloud.stop(0)
        }
    }

    @Test
    fun `settings persist across restarts and the cloud key stays out of the settings file`() {
        val secrets = object : SecretStore {
            val map = mutableMapOf<String, String>()
            override fun get(name: String) = map[name]
            override fun put(name: String, value: String) { map[name] = value }
            override fun remove(name: String) { map.remove(name) }
        }
        val file = File(dir, "settings.json")
        val first = SettingsViewModel(file, secrets)
        assertEquals(ChatSettings(), first.settings.value, "defaults without a file")
        first.update { it.copy(systemPrompt = "Be terse.", routing = RoutingPolicy.PREFER_DEVICE, cloudEndpoint = "https://api.example.com/v1", redaction = false) }
        first.setCloudKey("sk-secret-123")
        assertTrue(first.hasCloudKey)

        val second = SettingsViewModel(file, secrets)
        assertEquals(first.settings.value, second.settings.value)
        assertEquals("sk-secret-123", second.cloudKey())
        assertFalse(file.readText().contains("sk-secret"), "the key is not in the settings file")
        second.setCloudKey("")
        assertFalse(second.hasCloudKey)

        file.writeText("{ not json")
        assertEquals(ChatSettings(), SettingsViewModel(file, secrets).settings.value, "a damaged file gives the defaults")
    }
}
