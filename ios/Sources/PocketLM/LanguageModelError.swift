import Foundation
import PocketLMFFI

/// Everything that can go wrong in PocketLM. Each case carries the fields an app
/// can branch on, and `message`, which says what went wrong and what to do.
///
/// ```swift
/// do { model = try await LanguageModel.load(path: path) }
/// catch LanguageModelError.modelTruncated(let path, _, _) { redownload(path) }
/// catch LanguageModelError.insufficientMemory(let needed, _, _) { offerSmallerModel(needed) }
/// ```
public enum LanguageModelError: Error, LocalizedError, CustomStringConvertible, Equatable, Sendable {
    /// The model file does not exist.
    case modelNotFound(path: String, message: String)
    /// The model file exists but cannot be read.
    case modelUnreadable(path: String, reason: String, message: String)
    /// The file is not a GGUF model.
    case notGguf(path: String, detail: String, message: String)
    /// The model file is cut short: an incomplete download or copy.
    case modelTruncated(path: String, detail: String, message: String)
    /// The model file is corrupt.
    case modelCorrupt(path: String, detail: String, message: String)
    /// The model's architecture is not supported by this build.
    case unsupportedArchitecture(path: String, architecture: String, message: String)
    /// The model loads but cannot chat (an embedding, speech, diffusion or draft model).
    case notAChatModel(path: String, architecture: String, reason: String, message: String)
    /// llama.cpp rejected a file that passed validation.
    case modelLoadFailed(path: String, message: String)
    /// No inference context could be created (usually memory).
    case contextCreationFailed(contextLength: Int32, reason: String, message: String)
    /// A sampling value is out of range; `expected` says what is accepted.
    case invalidSampling(name: String, value: String, expected: String, message: String)
    /// A model or conversation option is out of range; `expected` says what is accepted.
    case invalidOption(name: String, value: String, expected: String, message: String)
    /// The prompt does not fit in the context window.
    case contextOverflow(promptTokens: Int64, contextLength: Int32, message: String)
    /// No configuration fits the memory budget: the model needs at least `neededBytes`.
    case insufficientMemory(neededBytes: Int64, budgetBytes: Int64, message: String)
    /// The chat template failed.
    case template(detail: String, message: String)
    /// Evaluation failed inside llama.cpp.
    case inference(detail: String, message: String)
    /// The answer failed after `partialText` was shown, because of `failure`; the history keeps the shown part.
    case answerFailed(partialText: String, failure: String, message: String)
    /// A model download failed; `transient` failures may succeed when retried (the download resumes).
    case download(kind: DownloadErrorKind, transient: Bool, detail: String, message: String)
    /// The cloud endpoint failed or refused; `transient` failures may succeed when retried later.
    case cloud(kind: CloudErrorKind, transient: Bool, detail: String, message: String)
    /// This library's CPU kernels need the `missing` instructions, which this CPU lacks.
    case unsupportedCpu(missing: [String], kernels: String, message: String)
    /// The output constraint (schema, grammar, choice) cannot be enforced; `detail` names what.
    case invalidConstraint(detail: String, message: String)
    /// A structured answer stopped (`stopReason`) before its value was complete.
    case structuredOutputIncomplete(partialText: String, stopReason: String, message: String)
    /// The model called an undeclared tool (`name`) or gave invalid arguments; `detail` says what.
    case toolCallInvalid(name: String, detail: String, message: String)
    /// Automatic tool use was still calling tools after `rounds` rounds.
    case toolRoundsExceeded(rounds: Int32, message: String)
    /// The router probe at `path` is unreadable, damaged, or was trained for another model; `detail` says which.
    case routerProbe(path: String, detail: String, message: String)
    /// The model at `path` cannot embed (or not with the pooling asked for); `reason` says why.
    case cannotEmbed(path: String, reason: String, message: String)
    /// Text `index` has `tokens` tokens, more than the embedder's `limit`: split it, or turn on truncation.
    case embeddingInputTooLong(index: Int32, tokens: Int32, limit: Int32, message: String)
    /// A vector index cannot be used (a vector of the wrong width, or a damaged file).
    case vectorIndex(detail: String, message: String)
    /// The LoRA adapter at `path` does not fit this model (made for another architecture or
    /// shapes), is malformed, or was loaded onto another model; `reason` says which and what to do.
    case adapterMismatch(path: String, reason: String, message: String)
    /// The vision projector at `path` is not the Gemma 3 layout, does not fit this model, is
    /// malformed, or was loaded for another model; `reason` says which and what to do.
    case projectorMismatch(path: String, reason: String, message: String)
    /// Image `index` of a message is not JPEG or PNG, is corrupt, or is too large.
    case invalidImage(index: Int32, reason: String, message: String)
    /// Images cannot be used here: no projector (or a batch too small for one image), or a
    /// conversation holding images was saved; `reason` says what to do.
    case imagesUnsupported(reason: String, message: String)
    /// Loading was cancelled (`LanguageModel.load` throws `CancellationError` instead).
    case loadCancelled(path: String, message: String)
    /// A saved conversation could not be saved or restored; when `transcriptUsable`,
    /// ``Conversation/restoreTranscript(from:)`` still brings its messages back.
    case session(kind: SessionErrorKind, transcriptUsable: Bool, detail: String, message: String)

    /// What went wrong and what to do, in English.
    public var message: String {
        switch self {
        case .modelNotFound(_, let message): return message
        case .modelUnreadable(_, _, let message): return message
        case .notGguf(_, _, let message): return message
        case .modelTruncated(_, _, let message): return message
        case .modelCorrupt(_, _, let message): return message
        case .unsupportedArchitecture(_, _, let message): return message
        case .notAChatModel(_, _, _, let message): return message
        case .modelLoadFailed(_, let message): return message
        case .contextCreationFailed(_, _, let message): return message
        case .invalidSampling(_, _, _, let message): return message
        case .invalidOption(_, _, _, let message): return message
        case .contextOverflow(_, _, let message): return message
        case .insufficientMemory(_, _, let message): return message
        case .template(_, let message): return message
        case .inference(_, let message): return message
        case .answerFailed(_, _, let message): return message
        case .download(_, _, _, let message): return message
        case .cloud(_, _, _, let message): return message
        case .unsupportedCpu(_, _, let message): return message
        case .invalidConstraint(_, let message): return message
        case .structuredOutputIncomplete(_, _, let message): return message
        case .toolCallInvalid(_, _, let message): return message
        case .toolRoundsExceeded(_, let message): return message
        case .loadCancelled(_, let message): return message
        case .routerProbe(_, _, let message): return message
        case .session(_, _, _, let message): return message
        case .cannotEmbed(_, _, let message): return message
        case .embeddingInputTooLong(_, _, _, let message): return message
        case .vectorIndex(_, let message): return message
        case .adapterMismatch(_, _, let message): return message
        case .projectorMismatch(_, _, let message): return message
        case .invalidImage(_, _, let message): return message
        case .imagesUnsupported(_, let message): return message
        }
    }

    /// The message, for `localizedDescription`.
    public var errorDescription: String? { message }

    /// The message.
    public var description: String { message }

    /// The public error for an error that crossed the FFI.
    init(_ error: FfiError) {
        switch error {
        case .ModelNotFound(let path, let description):
            self = .modelNotFound(path: path, message: description)
        case .ModelUnreadable(let path, let reason, let description):
            self = .modelUnreadable(path: path, reason: reason, message: description)
        case .NotGguf(let path, let detail, let description):
            self = .notGguf(path: path, detail: detail, message: description)
        case .ModelTruncated(let path, let detail, let description):
            self = .modelTruncated(path: path, detail: detail, message: description)
        case .ModelCorrupt(let path, let detail, let description):
            self = .modelCorrupt(path: path, detail: detail, message: description)
        case .UnsupportedArchitecture(let path, let architecture, let description):
            self = .unsupportedArchitecture(path: path, architecture: architecture, message: description)
        case .NotAChatModel(let path, let architecture, let reason, let description):
            self = .notAChatModel(path: path, architecture: architecture, reason: reason, message: description)
        case .ModelLoadFailed(let path, let description):
            self = .modelLoadFailed(path: path, message: description)
        case .ContextCreationFailed(let contextLength, let reason, let description):
            self = .contextCreationFailed(contextLength: contextLength, reason: reason, message: description)
        case .InvalidSampling(let name, let value, let expected, let description):
            self = .invalidSampling(name: name, value: value, expected: expected, message: description)
        case .InvalidOption(let name, let value, let expected, let description):
            self = .invalidOption(name: name, value: value, expected: expected, message: description)
        case .ContextOverflow(let promptTokens, let contextLength, let description):
            self = .contextOverflow(promptTokens: promptTokens, contextLength: contextLength, message: description)
        case .InsufficientMemory(let neededBytes, let budgetBytes, let description):
            self = .insufficientMemory(neededBytes: neededBytes, budgetBytes: budgetBytes, message: description)
        case .Template(let detail, let description):
            self = .template(detail: detail, message: description)
        case .Inference(let detail, let description):
            self = .inference(detail: detail, message: description)
        case .AnswerFailed(let partialText, let failure, let description):
            self = .answerFailed(partialText: partialText, failure: failure, message: description)
        case .Download(let kind, let transient, let detail, let description):
            self = .download(kind: kind, transient: transient, detail: detail, message: description)
        case .Cloud(let kind, let transient, let detail, let description):
            self = .cloud(kind: kind, transient: transient, detail: detail, message: description)
        case .UnsupportedCpu(let missing, let kernels, let description):
            self = .unsupportedCpu(missing: missing, kernels: kernels, message: description)
        case .InvalidConstraint(let detail, let description):
            self = .invalidConstraint(detail: detail, message: description)
        case .StructuredOutputIncomplete(let partialText, let stopReason, let description):
            self = .structuredOutputIncomplete(partialText: partialText, stopReason: stopReason, message: description)
        case .ToolCallInvalid(let name, let detail, let description):
            self = .toolCallInvalid(name: name, detail: detail, message: description)
        case .ToolRoundsExceeded(let rounds, let description):
            self = .toolRoundsExceeded(rounds: rounds, message: description)
        case .LoadCancelled(let path, let description):
            self = .loadCancelled(path: path, message: description)
        case .RouterProbe(let path, let detail, let description):
            self = .routerProbe(path: path, detail: detail, message: description)
        case .Session(let kind, let transcriptUsable, let detail, let description):
            self = .session(kind: kind, transcriptUsable: transcriptUsable, detail: detail, message: description)
        case .CannotEmbed(let path, let reason, let description):
            self = .cannotEmbed(path: path, reason: reason, message: description)
        case .EmbeddingInputTooLong(let index, let tokens, let limit, let description):
            self = .embeddingInputTooLong(index: index, tokens: tokens, limit: limit, message: description)
        case .VectorIndex(let detail, let description):
            self = .vectorIndex(detail: detail, message: description)
        case .AdapterMismatch(let path, let reason, let description):
            self = .adapterMismatch(path: path, reason: reason, message: description)
        case .ProjectorMismatch(let path, let reason, let description):
            self = .projectorMismatch(path: path, reason: reason, message: description)
        case .InvalidImage(let index, let reason, let description):
            self = .invalidImage(index: index, reason: reason, message: description)
        case .ImagesUnsupported(let reason, let description):
            self = .imagesUnsupported(reason: reason, message: description)
        }
    }

    /// `error` as the public error when it crossed the FFI, unchanged otherwise.
    static func from(_ error: Error) -> Error {
        if let ffi = error as? FfiError {
            return LanguageModelError(ffi)
        }
        return error
    }
}
