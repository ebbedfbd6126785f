package dev.pocketlm

import dev.pocketlm.ffi.BackendInfo
import dev.pocketlm.ffi.ConversationConfig
import dev.pocketlm.ffi.LogLevel
import dev.pocketlm.ffi.LogSink
import dev.pocketlm.ffi.MemoryPlan
import dev.pocketlm.ffi.ModelConfig
import dev.pocketlm.ffi.ModelInfo
import dev.pocketlm.ffi.PocketModel
import dev.pocketlm.ffi.liveModelCount
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * An on-device language model, loaded from a GGUF file.
 *
 * Load it with [PocketLM.load], open [Conversation]s on it, and [close] it when
 * done (or let the garbage collector free it). Safe to share between threads.
 */
class PocketLM private constructor(private val model: PocketModel) : AutoCloseable {
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
        withContext(Dispatchers.IO) { Conversation(model.newConversation(config)) }

    /** Frees the model once no conversation uses it any more. */
    override fun close() = model.close()

    companion object {
        init {
            NativeLibrary.name // pick the native build for this CPU before the first call
        }

        /**
         * Validates and loads the model at [path] off the main thread.
         * @throws dev.pocketlm.ffi.PocketLmException for a missing, corrupt or unsupported file.
         */
        suspend fun load(path: String, config: ModelConfig = ModelConfig()): PocketLM =
            withContext(Dispatchers.IO) { PocketLM(PocketModel.load(path, config)) }

        /**
         * Predicts, from the file header alone, the largest context (and KV cache type)
         * whose peak memory fits [budgetBytes] — e.g. the device's available memory.
         * @throws dev.pocketlm.ffi.PocketLmException.InsufficientMemory when nothing fits.
         */
        suspend fun planMemory(path: String, budgetBytes: ULong): MemoryPlan =
            withContext(Dispatchers.IO) { dev.pocketlm.ffi.planMemory(path, budgetBytes) }

        /**
         * Sends PocketLM's logs (at [level]) and llama.cpp's (at [llamaLevel]) to
         * logcat, and to [sink] when given. Call once at startup; later calls change
         * the levels and the sink.
         */
        fun initLogging(
            level: LogLevel = LogLevel.WARN,
            llamaLevel: LogLevel = LogLevel.ERROR,
            sink: ((level: LogLevel, target: String, message: String) -> Unit)? = null,
        ) {
            val bridge = sink?.let {
                object : LogSink {
                    override fun log(level: LogLevel, target: String, message: String) = it(level, target, message)
                }
            }
            dev.pocketlm.ffi.initLogging(level, llamaLevel, bridge)
        }

        /** Models whose weights are still in memory in this process. */
        val liveModels: Long get() = liveModelCount().toLong()
    }
}
