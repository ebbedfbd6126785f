package dev.pocketlm

import dev.pocketlm.ffi.Reply

/** One event of a streamed answer. */
sealed interface ChatEvent {
    /** A new piece of the answer's text. */
    data class Delta(val text: String) : ChatEvent

    /** The answer is complete; [reply] holds the full text and its metrics. */
    data class Done(val reply: Reply) : ChatEvent
}
