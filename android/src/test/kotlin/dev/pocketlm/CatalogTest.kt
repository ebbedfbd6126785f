package dev.pocketlm

import com.sun.net.httpserver.HttpServer
import dev.pocketlm.ffi.CatalogEntry
import dev.pocketlm.ffi.CatalogFile
import dev.pocketlm.ffi.ModelConfig
import dev.pocketlm.ffi.ModelShape
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.net.InetSocketAddress
import java.nio.file.Files
import java.security.MessageDigest

/** The catalog and recommendations from Kotlin, and a catalog entry downloaded from loopback and loaded. */
class CatalogTest {
    private val modelPath: String = System.getProperty("pocketlm.testModel")
    private val gib = 1L shl 30

    @Test
    fun `the builtin catalog recommends what fits, largest first, and says why the rest does not`() {
        ModelCatalog.builtin().use { catalog ->
            assertTrue(catalog.entries.size >= 8)
            assertNotNull(catalog["llama-3.2-1b-instruct-q4_k_m"])
            assertTrue(catalog.entries.all { it.sources.isNotEmpty() && it.quantization == "Q4_K_M" })

            val small = catalog.recommend(budgetBytes = 2 * gib, contextLength = 4096)
            val fitting = small.takeWhile { it.fits }
            assertTrue(fitting.isNotEmpty() && fitting.size < small.size, "$small")
            assertTrue(fitting.zipWithNext().all { (a, b) -> a.weightsBytes >= b.weightsBytes })
            assertTrue(fitting.all { it.plan!!.predictedPeakBytes <= 2 * gib * 95 / 100 })
            assertTrue(small.drop(fitting.size).all { !it.fits && it.reason!!.contains("MiB") })
            assertTrue(fitting.any { it.id == "llama-3.2-1b-instruct-q4_k_m" })
            assertTrue(fitting.none { it.id == "gemma-3-4b-it-q4_k_m" })

            val large = catalog.recommend(budgetBytes = 8 * gib, contextLength = 4096)
            assertEquals(large.size, large.count { it.fits })

            val e = assertThrows<LanguageModelException.InvalidOption> { catalog.recommend(budgetBytes = -1, contextLength = 4096) }
            assertEquals("budget_bytes", e.name)
        }
    }

    @Test
    fun `a bad app entry is refused and a catalog round-trips through JSON`() {
        ModelCatalog.builtin().use { catalog ->
            val good = catalog.entries.first()
            val e = assertThrows<LanguageModelException.InvalidOption> { catalog.add(good.copy(id = "Not An Id")) }
            assertTrue(e.message!!.contains("Not An Id"), e.message)
            val escape = assertThrows<LanguageModelException.InvalidOption> { catalog.add(good.copy(file = good.file.copy(fileName = "../escape.gguf"))) }
            assertTrue(escape.message!!.contains("file.file_name"), escape.message)
            assertThrows<LanguageModelException> { catalog.add(good.copy(shape = good.shape.copy(layers = -3))) }
            ModelCatalog.fromJson(catalog.toJson()).use { copy -> assertEquals(catalog.entries, copy.entries) }
            assertThrows<LanguageModelException.InvalidOption> { ModelCatalog.fromJson("""{"version": 9, "models": []}""") }
        }
    }

    @Test
    fun `an app's own entry is recommended, downloaded, verified and loaded`(): Unit = runBlocking {
        val model = File(modelPath)
        val sha = MessageDigest.getInstance("SHA-256").let { d ->
            model.inputStream().use { input ->
                val buf = ByteArray(1 shl 20)
                while (true) {
                    val n = input.read(buf)
                    if (n < 0) break
                    d.update(buf, 0, n)
                }
            }
            d.digest().joinToString("") { "%02x".format(it) }
        }
        val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/qwen.gguf") { exchange ->
            exchange.sendResponseHeaders(200, model.length())
            exchange.responseBody.use { out -> model.inputStream().use { it.copyTo(out) } }
        }
        server.start()
        try {
            // The Qwen2.5-Coder 0.5B test model, shapes from its config.json.
            val entry = CatalogEntry(
                id = "my-qwen-0.5b",
                name = "My Qwen 0.5B",
                quantization = "Q4_K_M",
                license = "Apache-2.0",
                file = CatalogFile(url = "http://127.0.0.1:${server.address.port}/qwen.gguf", fileName = "my-qwen.gguf", size = model.length(), sha256 = sha),
                shape = ModelShape("qwen2", 24, 896, 14, 2, 64, 4864, 151936, 32768, tiedEmbeddings = false),
            )
            ModelCatalog.builtin().use { catalog ->
                catalog.add(entry)
                val mine = catalog.recommend(budgetBytes = gib, contextLength = 2048).single { it.id == "my-qwen-0.5b" }
                assertTrue(mine.fits, "$mine")
                assertFalse(mine.weightsEstimated)
                assertEquals(model.length(), mine.downloadBytes)

                val dir = Files.createTempDirectory("pocketlm-catalog").toFile()
                try {
                    downloadAndLoad(catalog, dir.path, sha, mine.plan!!.contextLength)
                } finally {
                    dir.deleteRecursively() // a copy of the model: do not leave it in /tmp
                }
            }
        } finally {
            server.stop(0)
        }
    }

    private suspend fun downloadAndLoad(catalog: ModelCatalog, dir: String, sha: String, contextLength: Int) {
        ModelDownloads(dir).use { downloads ->
            val installed = downloads.download(catalog["my-qwen-0.5b"]!!).await()
            assertEquals(sha, installed.sha256)
            LanguageModel.load(installed.path, ModelConfig(contextLength = contextLength, threads = 2)).use { lm ->
                assertEquals("qwen2", lm.info.architecture)
            }
        }
    }
}
