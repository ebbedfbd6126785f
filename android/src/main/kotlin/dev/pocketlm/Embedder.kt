package dev.pocketlm

import dev.pocketlm.ffi.EmbedConfig
import dev.pocketlm.ffi.PocketEmbedder
import dev.pocketlm.ffi.PocketVectorIndex
import dev.pocketlm.ffi.SearchHit
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * Turns texts into vectors with an embedding model (all-MiniLM, bge, e5, nomic-embed, …),
 * for on-device retrieval with [VectorIndex].
 *
 * ```
 * val embedder = Embedder.load(path)
 * val index = VectorIndex(embedder.dimensions)
 * chunks.zip(embedder.embed(chunks)).forEachIndexed { i, (text, v) -> index.add("$i", text, v) }
 * val best = index.search(embedder.embed(listOf(question)).single(), k = 3)
 * ```
 * Every call runs off the main thread. [close] frees the model.
 */
class Embedder private constructor(private val embedder: PocketEmbedder) : AutoCloseable {
    /** The width of the vectors. */
    val dimensions: Int get() = embedder.dimensions()

    /**
     * One vector per text, in order.
     * @throws LanguageModelException.EmbeddingInputTooLong naming the first text over the token limit
     *   (unless [EmbedConfig.truncate]).
     */
    suspend fun embed(texts: List<String>): List<FloatArray> =
        withContext(Dispatchers.IO) { ffiCall { embedder.embed(texts) }.map { it.toFloatArray() } }

    /** Frees the model and its context. */
    override fun close() = embedder.close()

    companion object {
        init {
            NativeLibrary.name // pick the native build for this CPU before the first call
        }

        /**
         * Loads the model at [path] for embeddings, off the main thread. A chat model embeds only
         * with [EmbedConfig.pooling] set.
         * @throws LanguageModelException.CannotEmbed for a model that cannot embed, and the
         *   model-file errors of [LanguageModel.load] for a bad file.
         */
        suspend fun load(path: String, config: EmbedConfig = EmbedConfig()): Embedder =
            withContext(Dispatchers.IO) { Embedder(ffiCall { PocketEmbedder.load(path, config) }) }
    }
}

/**
 * Chunks of text and their vectors, searchable by cosine similarity; exact search, fast for
 * tens of thousands of chunks. Safe to share between threads; [save] and [load] run off the
 * main thread.
 */
class VectorIndex private constructor(private val index: PocketVectorIndex) : AutoCloseable {
    /** An empty index for vectors of [dimensions] values (an [Embedder]'s). */
    constructor(dimensions: Int) : this(ffiCall { PocketVectorIndex(dimensions) })

    /** How many chunks it holds. */
    val size: Int get() = index.size().toInt()

    /** Adds a chunk, or replaces the one with the same [id]. */
    fun add(id: String, text: String, vector: FloatArray) = ffiCall { index.add(id, text, vector.toList()) }

    /** Removes a chunk; `false` if there was none with this [id]. */
    fun remove(id: String): Boolean = index.remove(id)

    /** The [k] chunks closest to [query], closest first. */
    fun search(query: FloatArray, k: Int): List<SearchHit> = ffiCall { index.search(query.toList(), k) }

    /** Writes the index to [path] (a temporary file, then a rename). */
    suspend fun save(path: String) = withContext(Dispatchers.IO) { ffiCall { index.save(path) } }

    /** Frees the index. */
    override fun close() = index.close()

    companion object {
        init {
            NativeLibrary.name // pick the native build for this CPU before the first call
        }

        /**
         * Reads an index written by [save].
         * @throws LanguageModelException.VectorIndex for a damaged file.
         */
        suspend fun load(path: String): VectorIndex = withContext(Dispatchers.IO) { VectorIndex(ffiCall { PocketVectorIndex.load(path) }) }
    }
}
