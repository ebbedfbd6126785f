package dev.pocketlm

import dev.pocketlm.ffi.BackendInfo
import dev.pocketlm.ffi.CancelSignal
import dev.pocketlm.ffi.ConversationConfig
import dev.pocketlm.ffi.RoutedConversation
import dev.pocketlm.ffi.RouterConfig
import dev.pocketlm.ffi.FfiException
import dev.pocketlm.ffi.LoadProgressListener
import dev.pocketlm.ffi.MemoryPlan
import dev.pocketlm.ffi.ModelConfig
import dev.pocketlm.ffi.ModelInfo
import dev.pocketlm.ffi.PocketAdapter
import dev.pocketlm.ffi.PocketProjector
import dev.pocketlm.ffi.PocketModel
import dev.pocketlm.ffi.liveModelCount
import dev.pocketlm.ffi.planMemoryWithAdapters
import dev.pocketlm.ffi.planMemoryWithProjector
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.asExecutor
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.coroutines.withContext
import kotlin.coroutines.resumeWithException

/**
 * An on-device language model, loaded from a GGUF file.
 *
 * Load it with [LanguageModel.load], open [Conversation]s on it, and [close] it when
 * done (or let the garbage collector free it). Safe to share between threads.
 */
class LanguageModel private constructor(private val model: PocketModel) : AutoCloseable {
    /** What the model is: architecture, size, quantisation, context length. */
    val info: ModelInfo get() = model.info()

    /**
     * Where the model runs: `cpu` or `vulkan`, the device, and, when a GPU was
     * requested but not used, why (the probe failed or the load failed).
     */
    val backend: BackendInfo get() = model.backend()

    /** What the memory planner chose, when loaded with [ModelConfig.memoryBudgetBytes]. */
    val memoryPlan: MemoryPlan? get() = model.memoryPlan()

    /** Starts a conversation with its own context and KV cache. */
    suspend fun conversation(config: ConversationConfig = ConversationConfig()): Conversation =
        withContext(Dispatchers.IO) { Conversation(ffiCall { model.newConversation(config) }) }

    /**
     * Starts a conversation routed by [router] between this model and a cloud model
     * (see [RoutedChat]); [redact] sees every message before it leaves the device.
     */
    suspend fun routedChat(
        router: RouterConfig,
        config: ConversationConfig = ConversationConfig(),
        redact: ((role: String, content: String) -> String)? = null,
    ): RoutedChat = withContext(Dispatchers.IO) {
        RoutedChat(ffiCall { RoutedConversation.over(model, config, router, RoutedChat.redactor(redact)) })
    }

    /**
     * Loads the GGUF LoRA adapter at [path] onto this model, off the main thread; the base
     * weights are shared, not reloaded. Set it on conversations with [Conversation.setAdapters].
     * @throws LanguageModelException.AdapterMismatch for an adapter made for another base model
     *   (architecture, shapes) or malformed, and the model-file errors of [load] for a bad file.
     */
    suspend fun loadAdapter(path: String): LoraAdapter =
        withContext(Dispatchers.IO) { LoraAdapter(ffiCall { PocketAdapter.load(model, path) }) }

    /**
     * Loads the model's vision projector (its `mmproj` GGUF file, shipped beside it) off the
     * main thread, so conversations can take images ([Conversation.setProjector]).
     *
     * @throws LanguageModelException.ProjectorMismatch for a projector that is not the Gemma 3
     *   layout, was made for another model, or is malformed, and the model-file errors of [load].
     */
    suspend fun loadProjector(path: String): VisionProjector =
        withContext(Dispatchers.IO) { VisionProjector(ffiCall { PocketProjector.load(model, path) }) }

    /** Frees the model once no conversation uses it any more. */
    override fun close() = model.close()

    companion object {
        init {
            NativeLibrary.name // pick the native build for this CPU before the first call
        }

        /**
         * Validates and loads the model at [path] off the main thread.
         *
         * [onProgress], when given, receives the fraction loaded (0 to 1, increasing,
         * ending with 1) on the loading thread: post to the UI from it. An exception it
         * throws is logged and stops further progress calls, not the load.
         *
         * Cancelling the calling coroutine stops the load at the next tensor and frees
         * what was read: `load` then throws `CancellationException` at once, while
         * the loading thread winds down in the background.
         * @throws LanguageModelException for a missing, corrupt or unsupported file.
         */
        suspend fun load(
            path: String,
            config: ModelConfig = ModelConfig(),
            onProgress: ((fraction: Float) -> Unit)? = null,
        ): LanguageModel {
            val listener = onProgress?.let { report ->
                object : LoadProgressListener {
                    override fun onProgress(fraction: Float) = report(fraction)
                }
            }
            val signal = CancelSignal()
            return suspendCancellableCoroutine { continuation ->
                continuation.invokeOnCancellation { signal.cancel() }
                Dispatchers.IO.asExecutor().execute {
                    try {
                        val model = PocketModel.loadCancellable(path, config, listener, signal)
                        // A model that finished loading as the caller gave up is closed, not leaked.
                        continuation.resume(LanguageModel(model)) { _, lm, _ -> lm.close() }
                    } catch (e: FfiException) {
                        continuation.resumeWithException(e.toPublic())
                    } catch (e: Throwable) {
                        continuation.resumeWithException(e)
                    }
                    // `signal` is left to the garbage collector: the cancellation handler may still use it.
                }
            }
        }

        /**
         * Predicts, from the file header alone, the largest context (and KV cache type)
         * whose peak memory fits [budgetBytes] — e.g. the device's available memory.
         * @throws LanguageModelException.InsufficientMemory when nothing fits.
         */
        suspend fun planMemory(path: String, budgetBytes: Long): MemoryPlan =
            withContext(Dispatchers.IO) { ffiCall { dev.pocketlm.ffi.planMemory(path, budgetBytes) } }

        /**
         * [planMemory] with the LoRA adapters at [adapterPaths] loaded too: their memory comes
         * out of the budget first.
         * @throws LanguageModelException.AdapterMismatch for an adapter that does not fit the model.
         */
        suspend fun planMemory(path: String, budgetBytes: Long, adapterPaths: List<String>): MemoryPlan =
            withContext(Dispatchers.IO) { ffiCall { planMemoryWithAdapters(path, budgetBytes, adapterPaths) } }

        /**
         * [planMemory] with the LoRA adapters at [adapterPaths] and the vision projector at
         * [projectorPath] loaded too: their memory (for the projector, its tensors and one
         * image's encoding) comes out of the budget first.
         * @throws LanguageModelException.ProjectorMismatch for a projector that does not fit the model.
         */
        suspend fun planMemory(path: String, budgetBytes: Long, adapterPaths: List<String>, projectorPath: String): MemoryPlan =
            withContext(Dispatchers.IO) { ffiCall { planMemoryWithProjector(path, budgetBytes, adapterPaths, projectorPath) } }

        /** Models whose weights are still in memory in this process. */
        val liveModels: Long get() = liveModelCount()
    }
}
