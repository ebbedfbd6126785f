package dev.pocketlm

import dev.pocketlm.ffi.EmbedConfig
import dev.pocketlm.ffi.EmbedPooling
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import java.io.File
import kotlin.math.abs

/** Embeddings and the vector index from Kotlin, on the real all-MiniLM-L6-v2 model. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EmbeddingTest {
    private val chatModel: String = System.getProperty("pocketlm.testModel")
        ?: error("set -Dpocketlm.testModel to the Qwen2.5 0.5B GGUF path")
    // scripts/fetch-test-models.sh puts the embedding model beside the chat model.
    private val minilm = File(chatModel).resolveSibling("all-minilm-l6-v2-f16.gguf").path
    private lateinit var embedder: Embedder

    @BeforeAll
    fun load() = runBlocking {
        embedder = Embedder.load(minilm, EmbedConfig(threads = 2))
    }

    @AfterAll
    fun close() = embedder.close()

    private fun dot(a: FloatArray, b: FloatArray) = a.indices.sumOf { (a[it] * b[it]).toDouble() }

    @Test
    fun `texts become unit vectors and the index finds the answer`(): Unit = runBlocking {
        assertEquals(384, embedder.dimensions)
        val chunks = listOf(
            "Paris is the capital and largest city of France.",
            "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
            "Lithium-ion batteries last longer when kept between 20 and 80 percent.",
        )
        val vectors = embedder.embed(chunks)
        assertEquals(3, vectors.size)
        vectors.forEach { assertTrue(abs(dot(it, it) - 1.0) < 1e-3) }
        // The published all-MiniLM-L6-v2 vector of "Hello world" starts -0.0345, 0.0310.
        val hello = embedder.embed(listOf("Hello world")).single()
        assertTrue(abs(hello[0] + 0.0345f) < 2e-3f && abs(hello[1] - 0.0310f) < 2e-3f, "${hello[0]}, ${hello[1]}")

        val index = VectorIndex(embedder.dimensions)
        chunks.zip(vectors).forEachIndexed { i, (text, v) -> index.add("chunk-$i", text, v) }
        assertEquals(3, index.size)
        val query = embedder.embed(listOf("How should I charge my phone to keep its battery healthy?")).single()
        val hits = index.search(query, 2)
        assertEquals("chunk-2", hits[0].id)
        assertTrue(hits[0].score > hits[1].score)

        val file = File.createTempFile("pocketlm-index", ".idx")
        index.save(file.path)
        val loaded = VectorIndex.load(file.path)
        assertEquals(hits, loaded.search(query, 2))
        assertTrue(loaded.remove("chunk-2"))
        assertFalse(loaded.remove("chunk-2"))
        assertEquals("chunk-0", loaded.search(embedder.embed(listOf("capital of France")).single(), 1)[0].id)
        file.writeBytes(file.readBytes().copyOf(40))
        assertThrows<LanguageModelException.VectorIndex> { runBlocking { VectorIndex.load(file.path) } }
        assertThrows<LanguageModelException.VectorIndex> { index.add("bad", "", FloatArray(3)) }
        file.delete()
        index.close()
        loaded.close()
    }

    @Test
    fun `bad input and the wrong model give typed errors`(): Unit = runBlocking {
        val small = Embedder.load(minilm, EmbedConfig(maxTokens = 16, threads = 2))
        val e = assertThrows<LanguageModelException.EmbeddingInputTooLong> {
            runBlocking { small.embed(listOf("fine", "word ".repeat(40))) }
        }
        assertEquals(1, e.index)
        assertEquals(16, e.limit)
        small.close()
        val refused = assertThrows<LanguageModelException.CannotEmbed> { runBlocking { Embedder.load(chatModel) } }
        assertTrue(refused.reason.contains("pooling"), refused.reason)
        val chat = Embedder.load(chatModel, EmbedConfig(pooling = EmbedPooling.MEAN, maxTokens = 64, threads = 2))
        assertEquals(896, chat.dimensions)
        chat.close()
        assertThrows<LanguageModelException.NotAChatModel> { runBlocking { LanguageModel.load(minilm) } }
    }
}
