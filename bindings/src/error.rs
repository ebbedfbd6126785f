//! The error crossing the FFI, with the core error's fields, so Kotlin and
//! Swift can branch on them without parsing English.
//!
//! It is the internal half of a split (as in application-services): the
//! Kotlin and Swift wrappers turn it into their public error
//! (`LanguageModelException` subclasses, `LanguageModelError` cases in
//! lowerCamelCase). Every variant carries `description`, the core's message,
//! which says what went wrong and what to do.

use pocketlm::Error as CoreError;

use crate::convert::{saturating_i32, saturating_i64};

/// The kinds of cloud failure, each with its own remedy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CloudErrorKind {
    /// No cloud endpoint is configured, or this request does not allow the cloud.
    NotConfigured,
    /// The endpoint could not be reached (refused, DNS, TLS, reset before a response).
    Unreachable,
    /// No response, or no data for longer than the read timeout.
    Timeout,
    /// The API key was missing or rejected (HTTP 401/403).
    Unauthorized,
    /// Too many requests (HTTP 429), still limited after the retries.
    RateLimited,
    /// The server failed (HTTP 5xx), still failing after the retries.
    Server,
    /// The server rejected the request as invalid (other HTTP 4xx).
    BadRequest,
    /// The response was not a valid OpenAI-style event stream.
    MalformedStream,
    /// The stream stopped before the answer was complete.
    Interrupted,
    /// Recent requests kept failing, so the client is not trying for a while.
    CircuitOpen,
    /// The request would pass the app's cloud budget.
    BudgetExceeded,
    /// The caller cancelled the request.
    Cancelled,
}

/// The kinds of session-file failure (see the core's `SessionErrorKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SessionErrorKind {
    /// There is no file at that path.
    NotFound,
    /// The file is not a PocketLM session file.
    NotASession,
    /// Written by an incompatible PocketLM.
    UnsupportedVersion,
    /// The header (and so the transcript) is damaged or cut short.
    Corrupt,
    /// The transcript is intact, the saved KV state is damaged or cut short.
    StateCorrupt,
    /// Saved with another model file.
    ModelMismatch,
    /// Saved with another chat template.
    TemplateMismatch,
    /// Saved under other context settings.
    SettingsMismatch,
    /// Saved by another llama.cpp build.
    EngineMismatch,
    /// llama.cpp refused the saved state.
    StateRejected,
    /// The transcript is too large for a session file.
    TooLarge,
    /// Reading or writing the file failed.
    Storage,
}

impl From<pocketlm::SessionErrorKind> for SessionErrorKind {
    fn from(k: pocketlm::SessionErrorKind) -> Self {
        use pocketlm::SessionErrorKind as K;
        match k {
            K::NotFound => SessionErrorKind::NotFound,
            K::NotASession => SessionErrorKind::NotASession,
            K::UnsupportedVersion => SessionErrorKind::UnsupportedVersion,
            K::Corrupt => SessionErrorKind::Corrupt,
            K::StateCorrupt => SessionErrorKind::StateCorrupt,
            K::ModelMismatch => SessionErrorKind::ModelMismatch,
            K::TemplateMismatch => SessionErrorKind::TemplateMismatch,
            K::SettingsMismatch => SessionErrorKind::SettingsMismatch,
            K::EngineMismatch => SessionErrorKind::EngineMismatch,
            K::StateRejected => SessionErrorKind::StateRejected,
            K::TooLarge => SessionErrorKind::TooLarge,
            K::Storage => SessionErrorKind::Storage,
        }
    }
}

/// The kinds of download failure (see the core's `DownloadErrorKind` for remedies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DownloadErrorKind {
    /// The request is invalid (URL, file name, hash) before anything is sent.
    InvalidRequest,
    /// The server could not be reached, still after the retries.
    Unreachable,
    /// No data for longer than the read timeout, still after the retries.
    Timeout,
    /// The server wants a token, or refused the one given (HTTP 401/403).
    Unauthorized,
    /// No such file on the server (HTTP 404/410).
    NotFound,
    /// Too many requests (HTTP 429), still limited after the retries.
    RateLimited,
    /// The server failed (HTTP 5xx), still failing after the retries.
    Server,
    /// Another HTTP answer the downloader cannot use.
    Http,
    /// The connection kept dropping mid-file; the part is kept for a resume.
    Interrupted,
    /// The file's SHA-256 is not the expected one; nothing was installed.
    HashMismatch,
    /// Not enough free space for the rest of the file.
    InsufficientStorage,
    /// Writing or renaming the file failed.
    Storage,
    /// The caller cancelled; the part is kept for a resume.
    Cancelled,
}

impl From<pocketlm::DownloadErrorKind> for DownloadErrorKind {
    fn from(k: pocketlm::DownloadErrorKind) -> Self {
        use pocketlm::DownloadErrorKind as K;
        match k {
            K::InvalidRequest => DownloadErrorKind::InvalidRequest,
            K::Unreachable => DownloadErrorKind::Unreachable,
            K::Timeout => DownloadErrorKind::Timeout,
            K::Unauthorized => DownloadErrorKind::Unauthorized,
            K::NotFound => DownloadErrorKind::NotFound,
            K::RateLimited => DownloadErrorKind::RateLimited,
            K::Server => DownloadErrorKind::Server,
            K::Http => DownloadErrorKind::Http,
            K::Interrupted => DownloadErrorKind::Interrupted,
            K::HashMismatch => DownloadErrorKind::HashMismatch,
            K::InsufficientStorage => DownloadErrorKind::InsufficientStorage,
            K::Storage => DownloadErrorKind::Storage,
            K::Cancelled => DownloadErrorKind::Cancelled,
        }
    }
}

impl From<pocketlm::CloudErrorKind> for CloudErrorKind {
    fn from(k: pocketlm::CloudErrorKind) -> Self {
        use pocketlm::CloudErrorKind as K;
        match k {
            K::NotConfigured => CloudErrorKind::NotConfigured,
            K::Unreachable => CloudErrorKind::Unreachable,
            K::Timeout => CloudErrorKind::Timeout,
            K::Unauthorized => CloudErrorKind::Unauthorized,
            K::RateLimited => CloudErrorKind::RateLimited,
            K::Server => CloudErrorKind::Server,
            K::BadRequest => CloudErrorKind::BadRequest,
            K::MalformedStream => CloudErrorKind::MalformedStream,
            K::Interrupted => CloudErrorKind::Interrupted,
            K::CircuitOpen => CloudErrorKind::CircuitOpen,
            K::BudgetExceeded => CloudErrorKind::BudgetExceeded,
            K::Cancelled => CloudErrorKind::Cancelled,
        }
    }
}

/// Everything that can go wrong in PocketLM, with its fields. Kotlin sees
/// `FfiException` subclasses and Swift `FfiError` cases; the SDK wrappers
/// rethrow them as their public error types.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum FfiError {
    /// The model file does not exist.
    #[error("{description}")]
    ModelNotFound { path: String, description: String },
    /// The model file exists but cannot be read.
    #[error("{description}")]
    ModelUnreadable { path: String, reason: String, description: String },
    /// The file is not a GGUF model.
    #[error("{description}")]
    NotGguf { path: String, detail: String, description: String },
    /// The model file is cut short (an incomplete download or copy).
    #[error("{description}")]
    ModelTruncated { path: String, detail: String, description: String },
    /// The model file is corrupt.
    #[error("{description}")]
    ModelCorrupt { path: String, detail: String, description: String },
    /// The model's architecture is not supported.
    #[error("{description}")]
    UnsupportedArchitecture { path: String, architecture: String, description: String },
    /// The model loads but cannot chat (embedding, speech, diffusion, draft model).
    #[error("{description}")]
    NotAChatModel { path: String, architecture: String, reason: String, description: String },
    /// llama.cpp rejected a file that passed validation.
    #[error("{description}")]
    ModelLoadFailed { path: String, description: String },
    /// No inference context could be created (usually memory).
    #[error("{description}")]
    ContextCreationFailed { context_length: i32, reason: String, description: String },
    /// A sampling value is out of range.
    #[error("{description}")]
    InvalidSampling { name: String, value: String, expected: String, description: String },
    /// A model or conversation option is out of range.
    #[error("{description}")]
    InvalidOption { name: String, value: String, expected: String, description: String },
    /// The prompt does not fit in the context window.
    #[error("{description}")]
    ContextOverflow { prompt_tokens: i64, context_length: i32, description: String },
    /// No configuration fits the memory budget.
    #[error("{description}")]
    InsufficientMemory { needed_bytes: i64, budget_bytes: i64, description: String },
    /// The chat template failed.
    #[error("{description}")]
    Template { detail: String, description: String },
    /// Evaluation failed inside llama.cpp.
    #[error("{description}")]
    Inference { detail: String, description: String },
    /// The answer failed after `partial_text` was shown; `failure` says why.
    /// The history keeps the shown part unless the request discards it.
    #[error("{description}")]
    AnswerFailed { partial_text: String, failure: String, description: String },
    /// A model download failed; `transient` when trying again may help (it resumes).
    #[error("{description}")]
    Download { kind: DownloadErrorKind, transient: bool, detail: String, description: String },
    /// The cloud endpoint failed or refused (only with cloud routing configured).
    #[error("{description}")]
    Cloud { kind: CloudErrorKind, transient: bool, detail: String, description: String },
    /// A saved conversation could not be saved or restored; `transcript_usable`
    /// when `restoreTranscript` still brings its messages back.
    #[error("{description}")]
    Session { kind: SessionErrorKind, transcript_usable: bool, detail: String, description: String },
    /// This library's CPU kernels need instructions the CPU lacks.
    #[error("{description}")]
    UnsupportedCpu { missing: Vec<String>, kernels: String, description: String },
    /// An output constraint (schema, grammar, choice) cannot be enforced; `detail` names what.
    #[error("{description}")]
    InvalidConstraint { detail: String, description: String },
    /// A structured answer stopped (`stop_reason`) before its value was complete.
    #[error("{description}")]
    StructuredOutputIncomplete { partial_text: String, stop_reason: String, description: String },
    /// The model's tool call names an unknown tool or has invalid arguments.
    #[error("{description}")]
    ToolCallInvalid { name: String, detail: String, description: String },
    /// Automatic tool use went past its round limit.
    #[error("{description}")]
    ToolRoundsExceeded { rounds: i32, description: String },
    /// A router probe file is unreadable, damaged, or trained for another model.
    #[error("{description}")]
    RouterProbe { path: String, detail: String, description: String },
    /// Loading was cancelled (Kotlin and Swift turn it into their own cancellation).
    #[error("{description}")]
    LoadCancelled { path: String, description: String },
    /// The model cannot embed (or not with the pooling asked for); `reason` says why.
    #[error("{description}")]
    CannotEmbed { path: String, reason: String, description: String },
    /// Text `index` has more tokens than the embedder takes (`limit`).
    #[error("{description}")]
    EmbeddingInputTooLong { index: i32, tokens: i32, limit: i32, description: String },
    /// A vector index cannot be used: a vector of the wrong width, or a damaged file.
    #[error("{description}")]
    VectorIndex { detail: String, description: String },
    /// A LoRA adapter does not fit this model, is malformed, or got a scale that is not a number.
    #[error("{description}")]
    AdapterMismatch { path: String, reason: String, description: String },
    /// A vision projector is not the Gemma 3 layout, does not fit this model, or is malformed.
    #[error("{description}")]
    ProjectorMismatch { path: String, reason: String, description: String },
    /// Image `index` of a message is not JPEG or PNG, is corrupt, or is too large.
    #[error("{description}")]
    InvalidImage { index: i32, reason: String, description: String },
    /// Images were sent to a conversation without a vision projector (or one
    /// whose batch cannot hold an image), or a conversation holding images was saved.
    #[error("{description}")]
    ImagesUnsupported { reason: String, description: String },
}

impl From<CoreError> for FfiError {
    fn from(e: CoreError) -> Self {
        let description = e.to_string();
        let path = |p: &std::path::Path| p.display().to_string();
        match e {
            CoreError::ModelNotFound { path: p } => FfiError::ModelNotFound { path: path(&p), description },
            CoreError::ModelUnreadable { path: p, reason } => FfiError::ModelUnreadable { path: path(&p), reason, description },
            CoreError::NotGguf { path: p, detail } => FfiError::NotGguf { path: path(&p), detail, description },
            CoreError::ModelTruncated { path: p, detail } => FfiError::ModelTruncated { path: path(&p), detail, description },
            CoreError::ModelCorrupt { path: p, detail } => FfiError::ModelCorrupt { path: path(&p), detail, description },
            CoreError::UnsupportedArchitecture { path: p, architecture } => {
                FfiError::UnsupportedArchitecture { path: path(&p), architecture, description }
            }
            CoreError::NotAChatModel { path: p, architecture, reason } => {
                FfiError::NotAChatModel { path: path(&p), architecture, reason, description }
            }
            CoreError::ModelLoadFailed { path: p } => FfiError::ModelLoadFailed { path: path(&p), description },
            CoreError::ContextCreationFailed { context_length, reason } => {
                FfiError::ContextCreationFailed { context_length: saturating_i32(context_length), reason, description }
            }
            CoreError::InvalidSampling { name, value, expected } => {
                FfiError::InvalidSampling { name: name.into(), value, expected: expected.into(), description }
            }
            CoreError::InvalidOption { name, value, expected } => {
                FfiError::InvalidOption { name: name.into(), value, expected, description }
            }
            CoreError::ContextOverflow { prompt_tokens, context_length } => FfiError::ContextOverflow {
                prompt_tokens: saturating_i64(prompt_tokens as u64),
                context_length: saturating_i32(context_length),
                description,
            },
            CoreError::InsufficientMemory { needed_bytes, budget_bytes } => FfiError::InsufficientMemory {
                needed_bytes: saturating_i64(needed_bytes),
                budget_bytes: saturating_i64(budget_bytes),
                description,
            },
            CoreError::Template(detail) => FfiError::Template { detail, description },
            CoreError::Inference(detail) => FfiError::Inference { detail, description },
            CoreError::AnswerFailed { partial_text, cause } => {
                FfiError::AnswerFailed { partial_text, failure: cause.to_string(), description }
            }
            CoreError::Download { kind, detail } => {
                FfiError::Download { kind: kind.into(), transient: kind.is_transient(), detail, description }
            }
            CoreError::Cloud { kind, detail } => FfiError::Cloud { kind: kind.into(), transient: kind.is_transient(), detail, description },
            CoreError::UnsupportedCpu { missing, kernels } => FfiError::UnsupportedCpu { missing, kernels, description },
            CoreError::InvalidConstraint { detail } => FfiError::InvalidConstraint { detail, description },
            CoreError::StructuredOutputIncomplete { partial_text, stop_reason } => {
                FfiError::StructuredOutputIncomplete { partial_text, stop_reason, description }
            }
            CoreError::ToolCallInvalid { name, detail } => FfiError::ToolCallInvalid { name, detail, description },
            CoreError::ToolRoundsExceeded { rounds } => FfiError::ToolRoundsExceeded { rounds: saturating_i32(rounds), description },
            CoreError::LoadCancelled { path: p } => FfiError::LoadCancelled { path: path(&p), description },
            CoreError::RouterProbe { path, detail } => FfiError::RouterProbe { path, detail, description },
            CoreError::CannotEmbed { path, reason } => FfiError::CannotEmbed { path, reason, description },
            CoreError::EmbeddingInputTooLong { index, tokens, limit } => FfiError::EmbeddingInputTooLong {
                index: i32::try_from(index).unwrap_or(i32::MAX),
                tokens: i32::try_from(tokens).unwrap_or(i32::MAX),
                limit: i32::try_from(limit).unwrap_or(i32::MAX),
                description,
            },
            CoreError::VectorIndex { detail } => FfiError::VectorIndex { detail, description },
            CoreError::AdapterMismatch { path: p, reason } => FfiError::AdapterMismatch { path: path(&p), reason, description },
            CoreError::ProjectorMismatch { path: p, reason } => FfiError::ProjectorMismatch { path: path(&p), reason, description },
            CoreError::InvalidImage { index, reason } => {
                FfiError::InvalidImage { index: i32::try_from(index).unwrap_or(i32::MAX), reason, description }
            }
            CoreError::ImagesUnsupported { reason } => FfiError::ImagesUnsupported { reason, description },
            CoreError::Session { kind, detail } => {
                FfiError::Session { kind: kind.into(), transcript_usable: kind.transcript_usable(), detail, description }
            }
        }
    }
}
