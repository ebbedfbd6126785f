//! The one public error type: every core error maps to one variant, carrying
//! the core's message, which says what went wrong and what to do.

use pocketlm::Error as CoreError;

/// Everything that can go wrong in PocketLM. Kotlin sees `PocketLmException`
/// subclasses, Swift sees `PocketLmError` cases; `message` is readable text.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum PocketLmError {
    /// The model file does not exist.
    #[error("{0}")]
    ModelNotFound(String),
    /// The model file exists but cannot be read.
    #[error("{0}")]
    ModelUnreadable(String),
    /// The file is not a GGUF model.
    #[error("{0}")]
    NotGguf(String),
    /// The model file is cut short.
    #[error("{0}")]
    ModelTruncated(String),
    /// The model file is corrupt.
    #[error("{0}")]
    ModelCorrupt(String),
    /// The model's architecture is not supported.
    #[error("{0}")]
    UnsupportedArchitecture(String),
    /// The model loads but cannot chat (embedding, speech, diffusion, draft model).
    #[error("{0}")]
    NotAChatModel(String),
    /// llama.cpp rejected a file that passed validation.
    #[error("{0}")]
    ModelLoadFailed(String),
    /// No inference context could be created (usually memory).
    #[error("{0}")]
    ContextCreationFailed(String),
    /// A sampling value is out of range.
    #[error("{0}")]
    InvalidSampling(String),
    /// A model or conversation option is out of range.
    #[error("{0}")]
    InvalidOption(String),
    /// The prompt does not fit in the context window.
    #[error("{0}")]
    ContextOverflow(String),
    /// No configuration fits the memory budget.
    #[error("{0}")]
    InsufficientMemory(String),
    /// The chat template failed.
    #[error("{0}")]
    Template(String),
    /// Evaluation failed inside llama.cpp.
    #[error("{0}")]
    Inference(String),
    /// The answer failed after part of it was shown (the message says why;
    /// the history keeps the shown part unless the request discards it).
    #[error("{0}")]
    AnswerFailed(String),
    /// A model download failed.
    #[error("{0}")]
    Download(String),
    /// The cloud endpoint failed or refused (only with cloud routing configured).
    #[error("{0}")]
    Cloud(String),
    /// This library's CPU kernels need instructions the CPU lacks.
    #[error("{0}")]
    UnsupportedCpu(String),
    /// Loading was cancelled (Kotlin and Swift turn it into their own cancellation).
    #[error("{0}")]
    LoadCancelled(String),
}

impl From<CoreError> for PocketLmError {
    fn from(e: CoreError) -> Self {
        let message = e.to_string();
        match e {
            CoreError::ModelNotFound { .. } => PocketLmError::ModelNotFound(message),
            CoreError::ModelUnreadable { .. } => PocketLmError::ModelUnreadable(message),
            CoreError::NotGguf { .. } => PocketLmError::NotGguf(message),
            CoreError::ModelTruncated { .. } => PocketLmError::ModelTruncated(message),
            CoreError::ModelCorrupt { .. } => PocketLmError::ModelCorrupt(message),
            CoreError::UnsupportedArchitecture { .. } => PocketLmError::UnsupportedArchitecture(message),
            CoreError::NotAChatModel { .. } => PocketLmError::NotAChatModel(message),
            CoreError::ModelLoadFailed { .. } => PocketLmError::ModelLoadFailed(message),
            CoreError::ContextCreationFailed { .. } => PocketLmError::ContextCreationFailed(message),
            CoreError::InvalidSampling { .. } => PocketLmError::InvalidSampling(message),
            CoreError::InvalidOption { .. } => PocketLmError::InvalidOption(message),
            CoreError::ContextOverflow { .. } => PocketLmError::ContextOverflow(message),
            CoreError::InsufficientMemory { .. } => PocketLmError::InsufficientMemory(message),
            CoreError::Template(_) => PocketLmError::Template(message),
            CoreError::Inference(_) => PocketLmError::Inference(message),
            CoreError::AnswerFailed { .. } => PocketLmError::AnswerFailed(message),
            CoreError::Download(_) => PocketLmError::Download(message),
            CoreError::Cloud { .. } => PocketLmError::Cloud(message),
            CoreError::UnsupportedCpu { .. } => PocketLmError::UnsupportedCpu(message),
            CoreError::LoadCancelled { .. } => PocketLmError::LoadCancelled(message),
        }
    }
}
