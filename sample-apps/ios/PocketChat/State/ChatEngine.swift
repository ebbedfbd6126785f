import Foundation
import PocketLM

/// What one answer streams to the chat screen, whichever side gives it.
enum Answered: Sendable {
    /// More text.
    case text(String)
    /// The router moved the answer to the other side: drop what was shown of it.
    case restart
    /// The answer is complete.
    case done(AnswerStats)
}

/// The conversation behind the chat screen: on the device alone, or routed
/// between the device and a cloud model.
protocol ChatEngine: Sendable {
    func send(_ text: String) -> AsyncThrowingStream<Answered, Error>
    func regenerate() -> AsyncThrowingStream<Answered, Error>
    func editLast(_ text: String) -> AsyncThrowingStream<Answered, Error>
    func messages() async -> [ChatMessage]
    func save(to url: URL) async throws
    func restore(from url: URL) async throws -> RestoredSession
}

/// Every answer on the device.
struct DeviceEngine: ChatEngine {
    let chat: Conversation

    func send(_ text: String) -> AsyncThrowingStream<Answered, Error> { answers(chat.send(text)) }
    func regenerate() -> AsyncThrowingStream<Answered, Error> { answers(chat.regenerate()) }
    func editLast(_ text: String) -> AsyncThrowingStream<Answered, Error> { answers(chat.editLastMessage(text)) }
    func messages() async -> [ChatMessage] { await chat.messages() }
    func save(to url: URL) async throws { try await chat.save(to: url) }
    func restore(from url: URL) async throws -> RestoredSession { try await chat.restore(from: url) }

    private func answers(_ events: AsyncThrowingStream<ChatEvent, Error>) -> AsyncThrowingStream<Answered, Error> {
        relay(events) { event in
            switch event {
            case .delta(let text): return .text(text)
            case .done(let reply): return .done(AnswerStats(reply.metrics, onDevice: true))
            default: return nil
            }
        }
    }
}

/// Answers routed by policy between the device and a cloud model.
struct RoutedEngine: ChatEngine {
    let chat: RoutedChat

    func send(_ text: String) -> AsyncThrowingStream<Answered, Error> { answers(chat.send(text)) }
    func regenerate() -> AsyncThrowingStream<Answered, Error> { answers(chat.regenerate()) }
    func editLast(_ text: String) -> AsyncThrowingStream<Answered, Error> { answers(chat.editLastMessage(text)) }
    func messages() async -> [ChatMessage] { await chat.messages() }
    func save(to url: URL) async throws { try await chat.save(to: url) }
    func restore(from url: URL) async throws -> RestoredSession { try await chat.restore(from: url) }

    private func answers(_ events: AsyncThrowingStream<RouteEvent, Error>) -> AsyncThrowingStream<Answered, Error> {
        relay(events) { event in
            switch event {
            case .text(let text): return .text(text)
            case .restart: return .restart
            case .done(let reply):
                if let metrics = reply.metrics { return .done(AnswerStats(metrics, onDevice: !reply.answeredByCloud)) }
                return .done(AnswerStats(ttftMs: 0, tokensPerSecond: 0, promptTokensReused: 0, promptTokensEvaluated: 0,
                                         onDevice: !reply.answeredByCloud, stopReason: "stop"))
            default: return nil
            }
        }
    }
}

/// `events` mapped by `map` (nil: skipped); cancelling the consumer cancels the source.
private func relay<Event: Sendable>(
    _ events: AsyncThrowingStream<Event, Error>, _ map: @escaping @Sendable (Event) -> Answered?
) -> AsyncThrowingStream<Answered, Error> {
    AsyncThrowingStream(bufferingPolicy: .unbounded) { continuation in
        let task = Task {
            do {
                for try await event in events {
                    if let answered = map(event) { continuation.yield(answered) }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
    }
}

extension AnswerStats {
    /// The figures shown under an answer.
    init(_ metrics: Metrics, onDevice: Bool) {
        self.init(ttftMs: metrics.ttftMs, tokensPerSecond: metrics.decodeTokensPerS,
                  promptTokensReused: metrics.promptTokensReused, promptTokensEvaluated: metrics.promptTokensEvaluated,
                  onDevice: onDevice, stopReason: "\(metrics.stopReason)")
    }
}

/// What "redaction on" removes before a message leaves the phone: e-mail
/// addresses and phone numbers. A sample's rule; an app adds what its users type.
public func redactPersonalData(_ content: String) -> String {
    var text = content
    for (pattern, label) in [(#"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"#, "[email]"), (#"\+?\d[\d ()-]{7,}\d"#, "[phone]")] {
        text = text.replacingOccurrences(of: pattern, with: label, options: .regularExpression)
    }
    return text
}
