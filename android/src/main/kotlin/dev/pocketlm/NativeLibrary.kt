package dev.pocketlm

import com.sun.jna.Library
import com.sun.jna.Native
import com.sun.jna.NativeLong
import java.io.File

/**
 * Chooses which PocketLM native library to load, before the first call into it.
 *
 * The AAR ships two arm64-v8a builds: `libpocketlm_ffi.so` (armv8-a, NEON only,
 * runs on every 64-bit Arm phone) and `libpocketlm_ffi_dotprod.so`
 * (armv8.2-a with ggml's int8 dot-product and fp16 kernels, the fast Q4 paths,
 * but an illegal instruction on a Cortex-A53). The fast one is
 * chosen when the kernel's hardware capabilities report both features and the
 * library is present; the native side checks again and refuses with
 * `LanguageModelException.UnsupportedCpu` rather than crash. The capabilities
 * come from libc's `getauxval(AT_HWCAP)` (bionic has it since API 18), else
 * from the `Features` line of `/proc/cpuinfo`; `/proc/self/auxv` is not used
 * because release (non-debuggable) apps usually cannot read it.
 *
 * An app can force a library by setting the system property
 * `uniffi.component.pocketlm_ffi.libraryOverride` before using PocketLM.
 */
object NativeLibrary {
    /** The armv8-a build (and the only build on other ABIs). */
    const val BASELINE = "pocketlm_ffi"
    /** The armv8.2-a+dotprod+fp16 build. */
    const val DOTPROD = "pocketlm_ffi_dotprod"

    private const val OVERRIDE = "uniffi.component.pocketlm_ffi.libraryOverride"
    private const val AT_HWCAP = 16L
    // Linux arm64 uapi <asm/hwcap.h>.
    private const val HWCAP_FPHP = 1L shl 9
    private const val HWCAP_ASIMDHP = 1L shl 10
    private const val HWCAP_ASIMDDP = 1L shl 20

    /** The library in use: chosen once, on first access. */
    val name: String by lazy { install() }

    private fun install(): String {
        System.getProperty(OVERRIDE)?.let { return it }
        val chosen = choose(System.getProperty("os.arch") ?: "", readHwcap()) { isLoadable(it) }
        System.setProperty(OVERRIDE, chosen)
        return chosen
    }

    /** The library for a CPU of [arch] with hardware capabilities [hwcap]. */
    internal fun choose(arch: String, hwcap: Long?, available: (String) -> Boolean): String {
        val arm64 = arch == "aarch64" || arch == "arm64"
        val fast = hwcap != null && (hwcap and HWCAP_ASIMDDP) != 0L &&
            (hwcap and HWCAP_FPHP) != 0L && (hwcap and HWCAP_ASIMDHP) != 0L
        return if (arm64 && fast && available(DOTPROD)) DOTPROD else BASELINE
    }

    /** Linux arm64 `/proc/cpuinfo` feature names and their `AT_HWCAP` bits. */
    private val cpuinfoFeatures = mapOf("fphp" to HWCAP_FPHP, "asimdhp" to HWCAP_ASIMDHP, "asimddp" to HWCAP_ASIMDDP)

    /**
     * The `AT_HWCAP` bits this library cares about, from the text of `/proc/cpuinfo`
     * (the first `Features` line; every core of a phone reports the same set), or
     * null without one.
     */
    internal fun hwcapFromCpuinfo(cpuinfo: String): Long? {
        val line = cpuinfo.lineSequence().firstOrNull { it.substringBefore(':').trim() == "Features" } ?: return null
        return line.substringAfter(':').trim().split(Regex("\\s+"))
            .fold(0L) { bits, name -> bits or (cpuinfoFeatures[name] ?: 0L) }
    }

    /** libc's `getauxval`, through JNA. */
    private interface LibC : Library {
        fun getauxval(type: NativeLong): NativeLong
    }

    /** libc's `getauxval(type)`, or null when libc cannot be reached or has no such entry. */
    internal fun auxval(type: Long): Long? = try {
        Native.load("c", LibC::class.java).getauxval(NativeLong(type)).toLong().takeIf { it != 0L }
    } catch (e: Throwable) {
        null
    }

    private fun readHwcap(): Long? = auxval(AT_HWCAP)
        ?: try { hwcapFromCpuinfo(File("/proc/cpuinfo").readText()) } catch (e: Exception) { null }

    private fun isLoadable(library: String): Boolean =
        try { com.sun.jna.NativeLibrary.getInstance(library); true } catch (e: UnsatisfiedLinkError) { false }
}
