import PocketLMFFI

/// Where PocketLM's and llama.cpp's log lines go.
public enum Logging {
    /// Sends PocketLM's logs (at `level`) and llama.cpp's (at `llamaLevel`) to the
    /// unified log, and to `sink` when given. Later calls change levels and sink.
    public static func configure(
        level: LogLevel = .warn,
        llamaLevel: LogLevel = .error,
        sink: (@Sendable (LogLevel, String, String) -> Void)? = nil
    ) {
        initLogging(level: level, llamaLevel: llamaLevel, sink: sink.map(ClosureLogSink.init))
    }
}

private final class ClosureLogSink: LogSink {
    private let body: @Sendable (LogLevel, String, String) -> Void

    init(_ body: @escaping @Sendable (LogLevel, String, String) -> Void) {
        self.body = body
    }

    func log(level: LogLevel, target: String, message: String) {
        body(level, target, message)
    }
}
