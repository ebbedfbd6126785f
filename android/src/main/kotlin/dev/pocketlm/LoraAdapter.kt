package dev.pocketlm

import dev.pocketlm.ffi.AdapterInfo
import dev.pocketlm.ffi.PocketAdapter

/**
 * A LoRA adapter loaded onto a [LanguageModel] with [LanguageModel.loadAdapter]: a small file
 * of weight changes fine-tuned for one task, applied at run time without reloading the model.
 *
 * ```
 * val support = model.loadAdapter(dir.resolve("support-tone.gguf").path)
 * conversation.setAdapters(mapOf(support to 1f))   // on
 * conversation.setAdapters(emptyMap())             // off again
 * ```
 * One adapter may be set on any number of conversations of its model at once, each with its own
 * scale. [close] frees it once no conversation uses it any more.
 */
class LoraAdapter internal constructor(internal val adapter: PocketAdapter) : AutoCloseable {
    /** What the adapter is: rank, alpha, how many matrices it changes, its size and SHA-256. */
    val info: AdapterInfo get() = adapter.info()

    /** Frees the adapter once no conversation uses it any more. */
    override fun close() = adapter.close()
}
