package dev.pocketlm

import dev.pocketlm.ffi.CatalogEntry
import dev.pocketlm.ffi.CatalogFile
import dev.pocketlm.ffi.DownloadRequest
import dev.pocketlm.ffi.PocketCatalog
import dev.pocketlm.ffi.Recommendation

/**
 * The models an app can offer: PocketLM's built-in catalog (Llama 3.2, Gemma 3, Qwen 2.5
 * and 3, Phi-4-mini; Q4_K_M), plus the app's own entries, and which of them fit the
 * device before any byte is downloaded. Everything here is computed locally in
 * microseconds: no network, safe on any thread.
 */
class ModelCatalog private constructor(private val inner: PocketCatalog) : AutoCloseable {
    /** Every entry, in order. */
    val entries: List<CatalogEntry> get() = inner.entries()

    /** The entry with [id], or null. */
    operator fun get(id: String): CatalogEntry? = inner.get(id)

    /** Adds [entry] after checking it (replacing one with the same id); a bad one throws [LanguageModelException.InvalidOption]. */
    fun add(entry: CatalogEntry) = ffiCall { inner.add(entry) }

    /**
     * Every entry costed by the memory planner for [budgetBytes] of memory at [contextLength]
     * tokens (with the vision projector when [withProjector]): the ones that fit first,
     * largest first. For the budget, use `ActivityManager.MemoryInfo.availMem` or your own cap.
     */
    fun recommend(budgetBytes: Long, contextLength: Int = 4096, withProjector: Boolean = false): List<Recommendation> =
        ffiCall { inner.recommend(budgetBytes, contextLength, withProjector) }

    /** The catalog as JSON that [fromJson] reads back. */
    fun toJson(): String = inner.toJson()

    override fun close() = inner.close()

    companion object {
        init {
            NativeLibrary.name // pick the native build for this CPU before the first call
        }

        /** PocketLM's built-in catalog. */
        fun builtin(): ModelCatalog = ModelCatalog(PocketCatalog.builtin())

        /** A catalog from a JSON document `{"version": 1, "models": [...]}`; a bad one throws. */
        fun fromJson(json: String): ModelCatalog = ModelCatalog(ffiCall { PocketCatalog.fromJson(json) })
    }
}

/** The request that downloads this file, verified against its size and SHA-256 when known. */
fun CatalogFile.downloadRequest(token: String? = null): DownloadRequest =
    DownloadRequest(url = url, fileName = fileName, sha256 = sha256, size = size, token = token)

/** A download of [entry]'s model file ([token] for a gated model). */
fun ModelDownloads.download(entry: CatalogEntry, token: String? = null): Download = download(entry.file.downloadRequest(token))
