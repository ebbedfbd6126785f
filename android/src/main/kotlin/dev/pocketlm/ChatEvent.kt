package dev.pocketlm

import dev.pocketlm.ffi.Reply
import dev.pocketlm.ffi.ToolCall
import kotlinx.serialization.json.JsonElement

/** One event of a streamed answer. */
sealed interface ChatEvent {
    /** A new piece of the answer's text. */
    data class Delta(val text: String) : ChatEvent

    /**
     * A JSON answer as written so far: complete fields, a string cut mid-way,
     * open objects and arrays closed. Sent when it changes.
     */
    data class Snapshot(val json: JsonElement) : ChatEvent

    /** The model decided to call a tool (its arguments are complete and valid). */
    data class ToolCallMade(val call: ToolCall) : ChatEvent

    /** The answer is complete; [reply] holds the full text and its metrics. */
    data class Done(val reply: Reply) : ChatEvent
}
