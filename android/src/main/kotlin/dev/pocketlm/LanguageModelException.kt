package dev.pocketlm

import dev.pocketlm.ffi.CloudErrorKind
import dev.pocketlm.ffi.DownloadErrorKind
import dev.pocketlm.ffi.FfiException
import dev.pocketlm.ffi.SessionErrorKind

/**
 * Everything that can go wrong in PocketLM. Each subclass carries the fields an
 * app can branch on; [message] says what went wrong and what to do.
 *
 * ```
 * try { LanguageModel.load(path) }
 * catch (e: LanguageModelException.ModelTruncated) { redownload(e.path) }
 * catch (e: LanguageModelException.InsufficientMemory) { offerSmallerModel(e.neededBytes) }
 * ```
 */
sealed class LanguageModelException(message: String) : Exception(message) {
    /** The model file at [path] does not exist. */
    class ModelNotFound(val path: String, message: String) : LanguageModelException(message)

    /** The model file at [path] exists but cannot be read, for [reason]. */
    class ModelUnreadable(val path: String, val reason: String, message: String) : LanguageModelException(message)

    /** The file at [path] is not a GGUF model ([detail] says what it is). */
    class NotGguf(val path: String, val detail: String, message: String) : LanguageModelException(message)

    /** The model file at [path] is cut short: an incomplete download or copy. */
    class ModelTruncated(val path: String, val detail: String, message: String) : LanguageModelException(message)

    /** The model file at [path] is corrupt. */
    class ModelCorrupt(val path: String, val detail: String, message: String) : LanguageModelException(message)

    /** The model's [architecture] is not supported by this build. */
    class UnsupportedArchitecture(val path: String, val architecture: String, message: String) : LanguageModelException(message)

    /** The model loads but cannot chat ([reason]: an embedding, speech, diffusion or draft model). */
    class NotAChatModel(val path: String, val architecture: String, val reason: String, message: String) :
        LanguageModelException(message)

    /** llama.cpp rejected a file that passed validation. */
    class ModelLoadFailed(val path: String, message: String) : LanguageModelException(message)

    /** No inference context of [contextLength] tokens could be created (usually memory). */
    class ContextCreationFailed(val contextLength: Int, val reason: String, message: String) : LanguageModelException(message)

    /** The sampling option [name] = [value] is out of range; [expected] says what is accepted. */
    class InvalidSampling(val name: String, val value: String, val expected: String, message: String) :
        LanguageModelException(message)

    /** The option [name] = [value] is out of range; [expected] says what is accepted. */
    class InvalidOption(val name: String, val value: String, val expected: String, message: String) :
        LanguageModelException(message)

    /** The prompt needs [promptTokens] tokens but the context holds [contextLength]. */
    class ContextOverflow(val promptTokens: Long, val contextLength: Int, message: String) : LanguageModelException(message)

    /** The model needs at least [neededBytes] but the budget is [budgetBytes]. */
    class InsufficientMemory(val neededBytes: Long, val budgetBytes: Long, message: String) : LanguageModelException(message)

    /** The chat template failed. */
    class Template(val detail: String, message: String) : LanguageModelException(message)

    /** Evaluation failed inside llama.cpp. */
    class Inference(val detail: String, message: String) : LanguageModelException(message)

    /**
     * The answer failed after [partialText] was shown, because of [failure]. The history
     * keeps the shown part.
     */
    class AnswerFailed(val partialText: String, val failure: String, message: String) : LanguageModelException(message)

    /** A model download failed; [transient] failures may succeed when retried (the download resumes). */
    class Download(val kind: DownloadErrorKind, val transient: Boolean, val detail: String, message: String) :
        LanguageModelException(message)

    /** The cloud endpoint failed or refused; [transient] failures may succeed when retried later. */
    class Cloud(val kind: CloudErrorKind, val transient: Boolean, val detail: String, message: String) :
        LanguageModelException(message)

    /** This library's CPU kernels need the [missing] instructions, which this CPU lacks. */
    class UnsupportedCpu(val missing: List<String>, val kernels: String, message: String) : LanguageModelException(message)

    /** The output constraint (schema, grammar, choice) cannot be enforced; [detail] names what. */
    class InvalidConstraint(val detail: String, message: String) : LanguageModelException(message)

    /** A structured answer stopped ([stopReason]) before its value was complete; [partialText] is what was generated. */
    class StructuredOutputIncomplete(val partialText: String, val stopReason: String, message: String) : LanguageModelException(message)

    /** The model called a tool that is not declared ([name]) or with invalid arguments; [detail] says what. */
    class ToolCallInvalid(val name: String, val detail: String, message: String) : LanguageModelException(message)

    /** Automatic tool use was still calling tools after [rounds] rounds. */
    class ToolRoundsExceeded(val rounds: Int, message: String) : LanguageModelException(message)

    /** The router probe at [path] is unreadable, damaged, or was trained for another model; [detail] says which. */
    class RouterProbe(val path: String, val detail: String, message: String) : LanguageModelException(message)

    /** The model at [path] cannot embed (or not with the pooling asked for); [reason] says why and what to pass. */
    class CannotEmbed(val path: String, val reason: String, message: String) : LanguageModelException(message)

    /** Text [index] has [tokens] tokens, more than the embedder's [limit]: split it, or turn on truncation. */
    class EmbeddingInputTooLong(val index: Int, val tokens: Int, val limit: Int, message: String) : LanguageModelException(message)

    /** A vector index cannot be used (a vector of the wrong width, or a damaged file); [detail] says which. */
    class VectorIndex(val detail: String, message: String) : LanguageModelException(message)

    /**
     * The LoRA adapter at [path] does not fit this model (made for another architecture or
     * shapes), is malformed, or was loaded onto another model; [reason] says which and what to do.
     */
    class AdapterMismatch(val path: String, val reason: String, message: String) : LanguageModelException(message)

    /**
     * The vision projector at [path] is not the Gemma 3 layout, does not fit this model, is
     * malformed, or was loaded for another model; [reason] says which and what to do.
     */
    class ProjectorMismatch(val path: String, val reason: String, message: String) : LanguageModelException(message)

    /** Image [index] of a message is not JPEG or PNG, is corrupt, or is too large; [reason] says which. */
    class InvalidImage(val index: Int, val reason: String, message: String) : LanguageModelException(message)

    /**
     * Images cannot be used here: the conversation has no projector (or a batch too small for
     * one image), or a conversation holding images was saved; [reason] says what to do.
     */
    class ImagesUnsupported(val reason: String, message: String) : LanguageModelException(message)

    /** Loading [path] was cancelled (`LanguageModel.load` turns it into a `CancellationException`). */
    class LoadCancelled(val path: String, message: String) : LanguageModelException(message)

    /**
     * A saved conversation could not be saved or restored ([kind] says why). When
     * [transcriptUsable], `Conversation.restoreTranscript` still brings its messages back.
     */
    class Session(val kind: SessionErrorKind, val transcriptUsable: Boolean, val detail: String, message: String) :
        LanguageModelException(message)
}

/** The public exception for an error that crossed the FFI. */
internal fun FfiException.toPublic(): LanguageModelException = when (this) {
    is FfiException.ModelNotFound -> LanguageModelException.ModelNotFound(path, description)
    is FfiException.ModelUnreadable -> LanguageModelException.ModelUnreadable(path, reason, description)
    is FfiException.NotGguf -> LanguageModelException.NotGguf(path, detail, description)
    is FfiException.ModelTruncated -> LanguageModelException.ModelTruncated(path, detail, description)
    is FfiException.ModelCorrupt -> LanguageModelException.ModelCorrupt(path, detail, description)
    is FfiException.UnsupportedArchitecture -> LanguageModelException.UnsupportedArchitecture(path, architecture, description)
    is FfiException.NotAChatModel -> LanguageModelException.NotAChatModel(path, architecture, reason, description)
    is FfiException.ModelLoadFailed -> LanguageModelException.ModelLoadFailed(path, description)
    is FfiException.ContextCreationFailed -> LanguageModelException.ContextCreationFailed(contextLength, reason, description)
    is FfiException.InvalidSampling -> LanguageModelException.InvalidSampling(name, value, expected, description)
    is FfiException.InvalidOption -> LanguageModelException.InvalidOption(name, value, expected, description)
    is FfiException.ContextOverflow -> LanguageModelException.ContextOverflow(promptTokens, contextLength, description)
    is FfiException.InsufficientMemory -> LanguageModelException.InsufficientMemory(neededBytes, budgetBytes, description)
    is FfiException.Template -> LanguageModelException.Template(detail, description)
    is FfiException.Inference -> LanguageModelException.Inference(detail, description)
    is FfiException.AnswerFailed -> LanguageModelException.AnswerFailed(partialText, failure, description)
    is FfiException.Download -> LanguageModelException.Download(kind, transient, detail, description)
    is FfiException.Cloud -> LanguageModelException.Cloud(kind, transient, detail, description)
    is FfiException.UnsupportedCpu -> LanguageModelException.UnsupportedCpu(missing, kernels, description)
    is FfiException.InvalidConstraint -> LanguageModelException.InvalidConstraint(detail, description)
    is FfiException.StructuredOutputIncomplete -> LanguageModelException.StructuredOutputIncomplete(partialText, stopReason, description)
    is FfiException.ToolCallInvalid -> LanguageModelException.ToolCallInvalid(name, detail, description)
    is FfiException.ToolRoundsExceeded -> LanguageModelException.ToolRoundsExceeded(rounds, description)
    is FfiException.LoadCancelled -> LanguageModelException.LoadCancelled(path, description)
    is FfiException.RouterProbe -> LanguageModelException.RouterProbe(path, detail, description)
    is FfiException.Session -> LanguageModelException.Session(kind, transcriptUsable, detail, description)
    is FfiException.CannotEmbed -> LanguageModelException.CannotEmbed(path, reason, description)
    is FfiException.EmbeddingInputTooLong -> LanguageModelException.EmbeddingInputTooLong(index, tokens, limit, description)
    is FfiException.VectorIndex -> LanguageModelException.VectorIndex(detail, description)
    is FfiException.AdapterMismatch -> LanguageModelException.AdapterMismatch(path, reason, description)
    is FfiException.ProjectorMismatch -> LanguageModelException.ProjectorMismatch(path, reason, description)
    is FfiException.InvalidImage -> LanguageModelException.InvalidImage(index, reason, description)
    is FfiException.ImagesUnsupported -> LanguageModelException.ImagesUnsupported(reason, description)
}.also { it.initCause(this) }

/** Runs an FFI call, rethrowing its error as the public [LanguageModelException]. */
internal inline fun <T> ffiCall(block: () -> T): T =
    try {
        block()
    } catch (e: FfiException) {
        throw e.toPublic()
    }
