package dev.pocketlm

import dev.pocketlm.ffi.RouteReason
import dev.pocketlm.ffi.RoutedReply
import dev.pocketlm.ffi.ToolCall

/** One event of a routed answer. */
sealed interface RouteEvent {
    /** More answer text. */
    data class Text(val text: String) : RouteEvent

    /** Drop the text shown so far: an answer from the other side follows, for [reason]. */
    data class Restart(val reason: RouteReason) : RouteEvent

    /** The model, on the device or in the cloud, called a tool (arguments complete and checked). */
    data class ToolCallMade(val call: ToolCall) : RouteEvent

    /** The answer is complete: where it came from, why, and what it cost. */
    data class Done(val reply: RoutedReply) : RouteEvent
}
