import PocketLMFFI

/// One event of a streamed answer.
public enum ChatEvent: Sendable {
    /// A new piece of the answer's text.
    case delta(String)
    /// A JSON answer as written so far (complete fields, a string cut mid-way,
    /// open objects and arrays closed), as JSON text. Sent when it changes.
    case snapshot(String)
    /// The model decided to call a tool (its arguments are complete and valid).
    case toolCall(ToolCall)
    /// The answer is complete: full text and metrics.
    case done(Reply)
}
