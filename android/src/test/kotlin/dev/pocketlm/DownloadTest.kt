package dev.pocketlm

import com.sun.net.httpserver.HttpServer
import dev.pocketlm.ffi.DownloadErrorKind
import dev.pocketlm.ffi.DownloadOptions
import dev.pocketlm.ffi.DownloadRequest
import dev.pocketlm.ffi.DownloadState
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.net.InetSocketAddress
import java.nio.file.Files
import java.security.MessageDigest
import java.util.Collections

/** Model downloads from Kotlin against a real HTTP server on loopback with Range support. */
class DownloadTest {
    private val bytes = ByteArray(2 shl 20) { (it * 31 + (it shr 9)).toByte() }
    private val sha = MessageDigest.getInstance("SHA-256").digest(bytes).joinToString("") { "%02x".format(it) }

    /** Serves [bytes] at /model.gguf honouring `Range` (64 KiB every [delayMs]); records each Range header. */
    private fun server(ranges: MutableList<String?>, delayMs: Long): HttpServer {
        val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/model.gguf") { exchange ->
            val range = exchange.requestHeaders.getFirst("Range")
            ranges.add(range)
            val from = range?.removePrefix("bytes=")?.removeSuffix("-")?.toInt() ?: 0
            exchange.responseHeaders.add("ETag", "\"v1\"")
            if (range != null) {
                exchange.responseHeaders.add("Content-Range", "bytes $from-${bytes.size - 1}/${bytes.size}")
            }
            exchange.sendResponseHeaders(if (range != null) 206 else 200, (bytes.size - from).toLong())
            try {
                exchange.responseBody.use { out ->
                    var at = from
                    while (at < bytes.size) {
                        val n = minOf(65536, bytes.size - at)
                        out.write(bytes, at, n)
                        out.flush()
                        at += n
                        Thread.sleep(delayMs)
                    }
                }
            } catch (_: java.io.IOException) {
                // the client hung up (pause or cancel)
            }
        }
        server.start()
        return server
    }

    private fun HttpServer.url() = "http://127.0.0.1:${address.port}/model.gguf"

    private fun dir(): String = Files.createTempDirectory("pocketlm-downloads").toString()

    @Test
    fun `a download reports progress, verifies and is listed`(): Unit = runBlocking {
        val ranges = Collections.synchronizedList(mutableListOf<String?>())
        val server = server(ranges, 0)
        try {
            ModelDownloads(dir()).use { downloads ->
                val events = downloads.download(DownloadRequest(server.url(), "model.gguf", sha256 = sha)).events.toList()
                val states = events.filterIsInstance<DownloadEvent.Progress>().map { it.progress.state }
                assertEquals(DownloadState.QUEUED, states.first())
                assertEquals(DownloadState.DONE, states.last())
                val model = (events.last() as DownloadEvent.Done).model
                assertArrayEquals(bytes, File(model.path).readBytes())
                assertEquals(listOf(model), downloads.installed())
                assertEquals(sha, model.sha256)
                assertTrue(downloads.delete("model.gguf"))
                assertTrue(downloads.installed().isEmpty())
            }
        } finally {
            server.stop(0)
        }
    }

    @Test
    fun `pause and resume continue from the same byte`(): Unit = runBlocking {
        val ranges = Collections.synchronizedList(mutableListOf<String?>())
        val server = server(ranges, 15)
        try {
            ModelDownloads(dir(), DownloadOptions(readTimeoutMs = 5000)).use { downloads ->
                val download = downloads.download(DownloadRequest(server.url(), "model.gguf", sha256 = sha))
                val states = mutableListOf<DownloadState>()
                var pausedOnce = false
                download.events.collect { event ->
                    if (event is DownloadEvent.Progress) {
                        states.add(event.progress.state)
                        if (!pausedOnce && event.progress.downloaded > 200_000) {
                            pausedOnce = true
                            download.pause()
                            launch {
                                kotlinx.coroutines.delay(300)
                                download.resume()
                            }
                        }
                    }
                }
                assertTrue(DownloadState.PAUSED in states, "$states")
                assertEquals(DownloadState.DONE, states.last())
                assertEquals(2, ranges.size, "$ranges")
                assertTrue(ranges[1]!!.removePrefix("bytes=").removeSuffix("-").toInt() > 200_000, "$ranges")
            }
        } finally {
            server.stop(0)
        }
    }

    @Test
    fun `cancelling the collector keeps the part, and a new download resumes it`(): Unit = runBlocking {
        val ranges = Collections.synchronizedList(mutableListOf<String?>())
        val server = server(ranges, 15)
        try {
            ModelDownloads(dir(), DownloadOptions(readTimeoutMs = 5000)).use { downloads ->
                val request = DownloadRequest(server.url(), "model.gguf", sha256 = sha)
                // first() cancels the flow once 300 kB are in.
                downloads.download(request).events.first { it is DownloadEvent.Progress && it.progress.downloaded > 300_000 }
                assertTrue(downloads.installed().isEmpty())
                // The cancelled download flushes its part as it stops.
                repeat(100) { if (downloads.usedBytes <= 300_000) kotlinx.coroutines.delay(20) }
                assertTrue(downloads.usedBytes > 300_000, "the part is kept: ${downloads.usedBytes}")
                val model = downloads.download(request).await()
                assertEquals(bytes.size.toLong(), model.size)
                val resumedFrom = ranges.last()!!.removePrefix("bytes=").removeSuffix("-").toInt()
                assertTrue(resumedFrom > 300_000, "$ranges")
            }
        } finally {
            server.stop(0)
        }
    }

    @Test
    fun `a missing file is a typed error`(): Unit = runBlocking {
        val server = server(Collections.synchronizedList(mutableListOf()), 0)
        try {
            ModelDownloads(dir()).use { downloads ->
                val url = "http://127.0.0.1:${server.address.port}/missing.gguf"
                val error = assertThrows<LanguageModelException.Download> {
                    runBlocking { downloads.download(DownloadRequest(url, "missing.gguf")).await() }
                }
                assertEquals(DownloadErrorKind.NOT_FOUND, error.kind)
                assertTrue(error.message!!.contains("URL"), error.message)
                val bad = assertThrows<LanguageModelException.Download> {
                    runBlocking { downloads.download(DownloadRequest(url, "../escape.gguf")).await() }
                }
                assertEquals(DownloadErrorKind.INVALID_REQUEST, bad.kind)
            }
        } finally {
            server.stop(0)
        }
    }

    @Test
    fun `a file downloaded by other means is verified before it is adopted`(): Unit = runBlocking {
        ModelDownloads(dir()).use { downloads ->
            val source = Files.createTempFile("download", ".tmp").toFile()
            source.writeBytes(bytes)
            val wrong = assertThrows<LanguageModelException.Download> {
                runBlocking { downloads.adopt(source.path, "model.gguf", "0".repeat(64)) }
            }
            assertEquals(DownloadErrorKind.HASH_MISMATCH, wrong.kind)
            assertTrue(source.exists() && downloads.installed().isEmpty())
            val model = downloads.adopt(source.path, "model.gguf", sha)
            assertEquals(sha, model.sha256)
            assertArrayEquals(bytes, File(model.path).readBytes())
        }
    }
}
