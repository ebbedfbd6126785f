package dev.pocketlm

import dev.pocketlm.ffi.ConversationConfig
import dev.pocketlm.ffi.ModelConfig
import dev.pocketlm.ffi.SamplingConfig
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.single
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import java.awt.image.BufferedImage
import java.io.ByteArrayOutputStream
import java.io.File
import javax.imageio.ImageIO

/**
 * Images from Kotlin, on the shaped Gemma 3 4B layout (random weights) and its 1-block
 * projector written by scripts/make-test-shaped-models.sh beside the test models.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class VisionTest {
    private val testModel: String = System.getProperty("pocketlm.testModel")
        ?: error("set -Dpocketlm.testModel to the Qwen2.5 0.5B GGUF path")
    private val shaped = File(testModel).resolveSibling("shaped")
    private fun projectorPath(name: String) = shaped.resolve("gemma-3-4b-mmproj-1block/$name.gguf").path
    private lateinit var lm: LanguageModel
    private val greedy = ConversationConfig(sampling = SamplingConfig(temperature = 0f, maxTokens = 3))

    private fun png(red: Int, blue: Int): ByteArray {
        val image = BufferedImage(40, 30, BufferedImage.TYPE_INT_RGB)
        for (x in 0 until 40) for (y in 0 until 30) image.setRGB(x, y, (red shl 16) or (x shl 8) or blue)
        return ByteArrayOutputStream().also { ImageIO.write(image, "png", it) }.toByteArray()
    }

    @BeforeAll
    fun load() = runBlocking {
        lm = LanguageModel.load(shaped.resolve("gemma-3-4b-6layers.gguf").path, ModelConfig(contextLength = 1024, threads = 2))
    }

    @AfterAll
    fun close() = lm.close()

    @Test
    fun `a conversation takes images and keeps them across turns`(): Unit = runBlocking {
        lm.loadProjector(projectorPath("mmproj")).use { vision ->
            assertEquals("gemma3", vision.info.projectorType)
            assertEquals(256, vision.info.embeddingsPerImage)
            lm.conversation(greedy).use { chat ->
                chat.setProjector(vision)
                val events = chat.send("What is in the picture?", images = listOf(png(200, 30))).toList()
                val first = events.filterIsInstance<ChatEvent.Done>().single().reply
                assertTrue(first.metrics.promptTokensEvaluated >= vision.info.tokensPerImage, "${first.metrics}")
                // The next turn finds the image in the KV cache.
                val second = chat.ask("And its colours?")
                assertTrue(second.metrics.promptTokensReused >= first.metrics.promptTokensEvaluated, "${second.metrics}")
                assertTrue(second.metrics.promptTokensEvaluated < vision.info.tokensPerImage, "${second.metrics}")
                assertEquals(4, chat.messages().size)
            }
        }
    }

    @Test
    fun `the planner counts the projector`(): Unit = runBlocking {
        val model = shaped.resolve("gemma-3-4b-6layers.gguf").path
        val budget = 64L shl 30 // ample: both plans choose the longest context
        val plain = LanguageModel.planMemory(model, budget)
        val seeing = LanguageModel.planMemory(model, budget, emptyList(), projectorPath("mmproj"))
        val memory = lm.loadProjector(projectorPath("mmproj")).use { it.info.memoryBytes }
        assertEquals(plain.contextLength, seeing.contextLength)
        assertEquals(plain.predictedPeakBytes + memory, seeing.predictedPeakBytes)
        assertThrows<LanguageModelException.ProjectorMismatch> {
            runBlocking { LanguageModel.planMemory(model, budget, emptyList(), projectorPath("bad-projection")) }
        }
    }

    @Test
    fun `bad images and projectors are typed errors that change nothing`(): Unit = runBlocking {
        lm.conversation(greedy).use { chat ->
            assertThrows<LanguageModelException.ImagesUnsupported> {
                runBlocking { chat.send("Look", images = listOf(png(1, 2))).toList() }
            }
            assertEquals(0, chat.messages().size)
            val vision = lm.loadProjector(projectorPath("mmproj"))
            chat.setProjector(vision)
            val bad = assertThrows<LanguageModelException.InvalidImage> {
                runBlocking { chat.send("Look", images = listOf(png(1, 2), "GIF89a not an image".toByteArray())).toList() }
            }
            assertEquals(1, bad.index)
            assertTrue(bad.reason.contains("not JPEG or PNG"), bad.reason)
            assertEquals(0, chat.messages().size)
            val mismatch = assertThrows<LanguageModelException.ProjectorMismatch> {
                runBlocking { lm.loadProjector(projectorPath("bad-shape")) }
            }
            assertTrue(mismatch.reason.contains("attn_k"), mismatch.reason)
            // Still answers, with an image.
            val reply = chat.send("Look", images = listOf(png(9, 9))).filterIsInstance<ChatEvent.Done>().single().reply
            assertTrue(reply.metrics.generatedTokens >= 1)
        }
    }
}
