import Foundation
import PocketLMFFI

/// A type the model can generate: `Decodable`, with the JSON Schema of its
/// JSON form. The schema is enforced while decoding, so the answer always decodes
/// (shaped so a later adapter to Apple's Foundation Models `@Generable` is thin).
public protocol Generable: Decodable, Sendable {
    /// The JSON Schema (as JSON text) of this type's JSON form.
    static var jsonSchema: String { get }
}

extension RequestOptions {
    /// No constraint and no tools.
    public static let plain = RequestOptions(constraint: nil, tools: [], toolChoice: .auto)

    /// Answers constrained to `type`'s JSON Schema.
    public static func generating<T: Generable>(_ type: T.Type) -> RequestOptions {
        RequestOptions(constraint: .jsonSchema(schemaJson: T.jsonSchema), tools: [], toolChoice: .auto)
    }
}

extension Reply {
    /// The typed value of a finished structured answer.
    public func decoded<T: Decodable>(as type: T.Type = T.self) throws -> T {
        guard case .json(let json) = structured else {
            throw LanguageModelError.invalidConstraint(detail: "no JSON value", message: "this answer has no JSON value (it was not constrained to JSON)")
        }
        return try JSONDecoder().decode(T.self, from: Data(json.utf8))
    }
}

/// A tool the model may call: its arguments decode into a ``Generable`` type
/// (whose schema constrains the call), and `call` returns the result the model
/// reads (usually JSON). An error thrown by `call` goes back to the model as a
/// failed result, so it can retry or explain.
public struct Tool: Sendable {
    /// The tool's name (letters, digits, `_`, `-`, `.`).
    public let name: String
    /// What it does (the model reads this).
    public let description: String
    let parametersSchema: String
    let run: @Sendable (String) async throws -> String

    /// A tool whose arguments are `Arguments`.
    public init<Arguments: Generable>(
        name: String,
        description: String,
        arguments: Arguments.Type,
        call: @escaping @Sendable (Arguments) async throws -> String
    ) {
        self.name = name
        self.description = description
        self.parametersSchema = Arguments.jsonSchema
        self.run = { json in try await call(try JSONDecoder().decode(Arguments.self, from: Data(json.utf8))) }
    }

    var spec: ToolSpec { ToolSpec(name: name, description: description, parametersJson: parametersSchema) }
}

private let repeatedCall = "error: this call was already made with the same arguments; its result is above. Answer the user now."

extension Conversation {
    /// Answers `prompt` with a value of type `T`, enforced while decoding by
    /// `T.jsonSchema`. A value cut short by the token limit throws
    /// ``LanguageModelError/structuredOutputIncomplete(partialText:stopReason:message:)``.
    public func respond<T: Generable>(to prompt: String, generating type: T.Type = T.self) async throws -> T {
        try await ask(prompt, options: .generating(T.self)).decoded(as: T.self)
    }

    /// Streams the answer to `prompt` as a `T`: `.snapshot`s of the JSON written
    /// so far, then `.done` (decode it with ``Reply/decoded(as:)``).
    public func streamResponse<T: Generable>(to prompt: String, generating type: T.Type = T.self) -> AsyncThrowingStream<ChatEvent, Error> {
        send(prompt, options: .generating(T.self))
    }

    /// Answers `prompt`, running `tools` for every call the model makes and
    /// sending the results back, until it answers in text. `toolChoice` applies
    /// to the first round; after `maxRounds` rounds of calls it throws
    /// ``LanguageModelError/toolRoundsExceeded(rounds:message:)`` (the history
    /// keeps the completed rounds). `onEvent` sees every event.
    public func respond(
        to prompt: String,
        tools: [Tool],
        toolChoice: ToolChoice = .auto,
        maxRounds: Int = 4,
        onEvent: (ChatEvent) -> Void = { _ in }
    ) async throws -> Reply {
        var options = RequestOptions(constraint: nil, tools: tools.map(\.spec), toolChoice: toolChoice)
        var reply = try await Self.reply(of: send(prompt, options: options), onEvent: onEvent)
        var rounds = 0
        var answered: [String] = []
        while !reply.toolCalls.isEmpty {
            if rounds == maxRounds {
                throw LanguageModelError.toolRoundsExceeded(rounds: Int32(rounds), message: "the model was still calling tools after \(rounds) rounds")
            }
            rounds += 1
            // A round that only repeats answered calls is not run again: the model must answer in text.
            let keys = reply.toolCalls.map { "\($0.name)\u{0}\($0.argumentsJson)" }
            let repeated = keys.allSatisfy(answered.contains)
            answered += keys
            var results: [ToolResult] = []
            for call in reply.toolCalls {
                if repeated {
                    results.append(ToolResult(callId: call.id, name: call.name, content: repeatedCall, isError: true))
                    continue
                }
                do {
                    guard let tool = tools.first(where: { $0.name == call.name }) else { throw LanguageModelError.toolCallInvalid(name: call.name, detail: "no such tool", message: "no tool named \(call.name)") }
                    let content = try await tool.run(call.argumentsJson)
                    results.append(ToolResult(callId: call.id, name: call.name, content: content, isError: false))
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    results.append(ToolResult(callId: call.id, name: call.name, content: "error: \(error)", isError: true))
                }
            }
            options.toolChoice = repeated ? .none : .auto
            reply = try await Self.reply(of: sendToolResults(results, options: options), onEvent: onEvent)
        }
        return reply
    }
}
