package dev.pocketlm

import dev.pocketlm.ffi.PocketProjector
import dev.pocketlm.ffi.ProjectorInfo

/**
 * A vision projector loaded beside a [LanguageModel] with [LanguageModel.loadProjector]: what
 * lets its conversations see images (Gemma 3's `mmproj` file).
 *
 * ```
 * val vision = model.loadProjector(dir.resolve("mmproj-model-f16.gguf").path)
 * conversation.setProjector(vision)
 * conversation.send("What is on this receipt?", images = listOf(jpegBytes)).collect { ... }
 * ```
 * One projector serves any number of conversations of its model. [close] frees it once no
 * conversation uses it any more.
 */
class VisionProjector internal constructor(internal val projector: PocketProjector) : AutoCloseable {
    /** What the projector is: its type, the context positions one image takes, its memory. */
    val info: ProjectorInfo get() = projector.info()

    /** Frees the projector once no conversation uses it any more. */
    override fun close() = projector.close()
}
