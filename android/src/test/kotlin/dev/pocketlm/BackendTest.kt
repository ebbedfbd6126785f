package dev.pocketlm

import dev.pocketlm.ffi.BackendRequest
import dev.pocketlm.ffi.ModelConfig
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** Native library choice per CPU, and the backend report and GPU fallback through the real engine. */
class BackendTest {
    private val modelPath: String = System.getProperty("pocketlm.testModel")
        ?: error("set -Dpocketlm.testModel to the Qwen2.5 0.5B GGUF path")

    private fun auxv(vararg pairs: Pair<Long, Long>): ByteArray {
        val buffer = ByteBuffer.allocate((pairs.size + 1) * 16).order(ByteOrder.LITTLE_ENDIAN)
        for ((key, value) in pairs.toList() + listOf(0L to 0L)) buffer.putLong(key).putLong(value)
        return buffer.array()
    }

    @Test
    fun `the dotprod build is chosen only for arm64 CPUs with dot product and fp16`() {
        val cortexA55 = (1L shl 20) or (1L shl 10) or (1L shl 9) or 0xffL // asimddp, asimdhp, fphp, ...
        val cortexA53 = 0xffL
        val all = { _: String -> true }
        assertEquals(NativeLibrary.DOTPROD, NativeLibrary.choose("aarch64", cortexA55, all))
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.choose("aarch64", cortexA53, all))
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.choose("aarch64", (1L shl 20) or 0xffL, all), "dotprod without fp16")
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.choose("aarch64", null, all), "auxv unreadable")
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.choose("aarch64", cortexA55) { it != NativeLibrary.DOTPROD }, "not packaged")
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.choose("amd64", cortexA55, all))
    }

    @Test
    fun `AT_HWCAP is read from the auxiliary vector`() {
        assertEquals(0x1234L, NativeLibrary.hwcapFromAuxv(auxv(6L to 4096L, 16L to 0x1234L, 26L to 1L)))
        assertNull(NativeLibrary.hwcapFromAuxv(auxv(6L to 4096L)))
        // This JVM's own vector parses too (x86-64 here: the baseline library).
        assertTrue(NativeLibrary.hwcapFromAuxv(java.io.File("/proc/self/auxv").readBytes()) != null)
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.name)
    }

    @Test
    fun `the backend is reported and a GPU request without a GPU falls back to the CPU`() = runBlocking {
        LanguageModel.load(modelPath, ModelConfig(contextLength = 256, backend = BackendRequest.GPU)).use { lm ->
            val backend = lm.backend
            assertEquals("cpu", backend.backend)
            assertTrue(backend.device.isNotEmpty())
            assertTrue(backend.fallbackReason!!.contains("no GPU backend"), backend.fallbackReason)
            assertTrue("avx2" in backend.cpuKernels, backend.cpuKernels.toString())
            lm.conversation().use { chat ->
                val reply = chat.ask("Say hi.")
                assertEquals("cpu", reply.metrics.backend)
                assertEquals(backend.device, reply.metrics.device)
            }
        }
    }
}
