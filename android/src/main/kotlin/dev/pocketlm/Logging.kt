package dev.pocketlm

import dev.pocketlm.ffi.LogLevel
import dev.pocketlm.ffi.LogSink

/** Where PocketLM's and llama.cpp's log lines go. */
object Logging {
    /**
     * Sends PocketLM's logs (at [level]) and llama.cpp's (at [llamaLevel]) to
     * logcat, and to [sink] when given. Call once at startup; later calls change
     * the levels and the sink.
     */
    fun configure(
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
}
