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

    /** Entry [type] of this process's auxiliary vector, to cross-check `getauxval` (readable on a host JVM). */
    private fun fromProcAuxv(type: Long): Long? {
        val buffer = ByteBuffer.wrap(java.io.File("/proc/self/auxv").readBytes()).order(ByteOrder.LITTLE_ENDIAN)
        while (buffer.remaining() >= 16) {
            val key = buffer.long
            val value = buffer.long
            if (key == type) return value
            if (key == 0L) break
        }
        return null
    }

    @Test
    fun `the dotprod build is chosen only for arm64 CPUs with dot product and fp16`() {
        val cortexA55 = (1L shl 20) or (1L shl 10) or (1L shl 9) or 0xffL // asimddp, asimdhp, fphp, ...
        val cortexA53 = 0xffL
        val all = { _: String -> true }
        assertEquals(NativeLibrary.DOTPROD, NativeLibrary.choose("aarch64", cortexA55, all))
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.choose("aarch64", cortexA53, all))
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.choose("aarch64", (1L shl 20) or 0xffL, all), "dotprod without fp16")
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.choose("aarch64", null, all), "capabilities unreadable")
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.choose("aarch64", cortexA55) { it != NativeLibrary.DOTPROD }, "not packaged")
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.choose("amd64", cortexA55, all))
    }

    @Test
    fun `hardware capabilities come from getauxval, else from the cpuinfo Features line`() {
        // A Cortex-A55 core (Pixel 4a class) and a Cortex-A53 core, as the arm64 kernel prints them.
        val a55 = "processor\t: 0\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics " +
            "fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x51\n"
        val a53 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\n"
        val all = { _: String -> true }
        assertEquals(NativeLibrary.DOTPROD, NativeLibrary.choose("aarch64", NativeLibrary.hwcapFromCpuinfo(a55), all))
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.choose("aarch64", NativeLibrary.hwcapFromCpuinfo(a53), all))
        assertEquals((1L shl 20) or (1L shl 10) or (1L shl 9), NativeLibrary.hwcapFromCpuinfo(a55))
        assertEquals(0L, NativeLibrary.hwcapFromCpuinfo(a53))
        assertNull(NativeLibrary.hwcapFromCpuinfo("processor\t: 0\nmodel name\t: x86\n"), "no Features line")
        // getauxval through JNA agrees with the kernel's vector. (AT_PAGESZ: on x86-64, glibc's
        // AT_HWCAP is its own platform bits, not the kernel's; bionic and arm64 glibc return the kernel's.)
        assertEquals(fromProcAuxv(6L), NativeLibrary.auxval(6L))
        assertTrue(NativeLibrary.auxval(16L) != null)
        assertEquals(NativeLibrary.BASELINE, NativeLibrary.name)
    }

    @Test
    fun `the backend is reported and a GPU request without a GPU falls back to the CPU`(): Unit = runBlocking {
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
