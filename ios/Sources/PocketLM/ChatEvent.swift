import PocketLMFFI

/// One event of a streamed answer.
public enum ChatEvent: Sendable {
    /// A new piece of the answer's text.
    case delta(String)
    /// The answer is complete: full text and metrics.
    case done(Reply)
}
