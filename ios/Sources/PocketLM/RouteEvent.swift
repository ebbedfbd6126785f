import PocketLMFFI

/// One event of a routed answer.
public enum RouteEvent: Sendable {
    /// More answer text.
    case text(String)
    /// Drop the text shown so far: an answer from the other side follows.
    case restart(RouteReason)
    /// The model, on the device or in the cloud, called a tool (arguments complete and checked).
    case toolCall(ToolCall)
    /// The answer is complete: where it came from, why, and what it cost.
    case done(RoutedReply)
}
