package dev.pocketlm

import dev.pocketlm.ffi.DownloadHandle
import dev.pocketlm.ffi.DownloadListener
import dev.pocketlm.ffi.DownloadOptions
import dev.pocketlm.ffi.DownloadProgress
import dev.pocketlm.ffi.DownloadRequest
import dev.pocketlm.ffi.FfiException
import dev.pocketlm.ffi.InstalledModel
import dev.pocketlm.ffi.ModelDownloader
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.single
import kotlinx.coroutines.withContext

/** One event of a download. */
sealed interface DownloadEvent {
    /** Progress: state, bytes, speed and time left (throttled; every state change is sent). */
    data class Progress(val progress: DownloadProgress) : DownloadEvent

    /** The file is installed, its SHA-256 verified. */
    data class Done(val model: InstalledModel) : DownloadEvent
}

/**
 * Model files in one directory the app chooses ([dir], e.g. `context.filesDir/models`):
 * verified, resumable downloads, the installed files, and deleting them. Failures are
 * [LanguageModelException.Download] with a kind that says what to do.
 */
class ModelDownloads(dir: String, options: DownloadOptions = DownloadOptions()) : AutoCloseable {
    private val inner: ModelDownloader = ffiCall { ModelDownloader(dir, options) }

    /** A download of [request]; it runs while its [Download.events] are collected. */
    fun download(request: DownloadRequest): Download = Download(inner, request)

    /**
     * Installs a file downloaded by other means (e.g. `DownloadManager`) after checking
     * its SHA-256; a wrong file throws [LanguageModelException.Download] and stays put.
     */
    suspend fun adopt(path: String, fileName: String, sha256: String?): InstalledModel =
        withContext(Dispatchers.IO) { ffiCall { inner.adopt(path, fileName, sha256) } }

    /** The installed files, by name. */
    suspend fun installed(): List<InstalledModel> = withContext(Dispatchers.IO) { ffiCall { inner.installed() } }

    /** Deletes [fileName] and any part of it; false if there was nothing. */
    suspend fun delete(fileName: String): Boolean = withContext(Dispatchers.IO) { ffiCall { inner.delete(fileName) } }

    /** Bytes used by installed files and parts of downloads. */
    val usedBytes: Long get() = inner.usedBytes()

    /** Free bytes on the directory's file system, when the system says. */
    val freeBytes: Long? get() = inner.freeBytes()

    override fun close() = inner.close()

    companion object {
        init {
            NativeLibrary.name // pick the native build for this CPU before the first call
        }
    }
}

/**
 * One download. Collecting [events] runs it (resuming a part an earlier run left);
 * cancelling the collector cancels it and keeps the part. [pause] and [resume] work
 * from any thread, before or while it runs.
 */
class Download internal constructor(private val downloader: ModelDownloader, private val request: DownloadRequest) {
    @Volatile private var handle: DownloadHandle? = null

    @Volatile private var paused = false

    /** Progress events, then [DownloadEvent.Done]; a failure is thrown as [LanguageModelException.Download]. */
    val events: Flow<DownloadEvent> = callbackFlow {
        val running = downloader.download(request, object : DownloadListener {
            override fun onProgress(progress: DownloadProgress) {
                trySend(DownloadEvent.Progress(progress))
            }

            override fun onComplete(model: InstalledModel) {
                trySend(DownloadEvent.Done(model))
                close()
            }

            override fun onError(error: FfiException) {
                close(error.toPublic())
            }
        })
        handle = running
        if (paused) running.pause()
        awaitClose {
            handle = null
            running.cancel()
            running.close()
        }
    }.buffer(Channel.UNLIMITED)

    /** Stops transferring (the connection closes, the part stays) until [resume]. */
    fun pause() {
        paused = true
        handle?.pause()
    }

    /** Continues from the byte the download reached. */
    fun resume() {
        paused = false
        handle?.resume()
    }

    /** Runs the download to the end and returns the installed file. */
    suspend fun await(): InstalledModel = events.filterIsInstance<DownloadEvent.Done>().single().model
}
