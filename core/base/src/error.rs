//! The one error type of the core. Every failure a caller can cause or meet is a
//! variant here, with a message that says what went wrong and what to do.

use std::path::PathBuf;

use crate::gguf::GgufError;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in PocketLM's core.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The model file does not exist.
    #[error("model file not found: {path} (check the path, or run scripts/fetch-test-models.sh for the test models)")]
    ModelNotFound {
        /// The path that was given.
        path: PathBuf,
    },
    /// The model file exists but cannot be read.
    #[error("cannot read model file {path}: {reason} (check its permissions)")]
    ModelUnreadable {
        /// The path that was given.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not a GGUF model (wrong magic or unsupported version).
    #[error("{path} is not a usable GGUF model: {detail} (PocketLM loads llama.cpp GGUF files, v2 or v3)")]
    NotGguf {
        /// The path that was given.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The file is a GGUF file cut short (an incomplete download or copy).
    #[error("model file {path} is truncated: {detail} (download or copy it again)")]
    ModelTruncated {
        /// The path that was given.
        path: PathBuf,
        /// Where it ends and what was missing.
        detail: String,
    },
    /// The GGUF structure is corrupt.
    #[error("model file {path} is corrupt: {detail} (download it again)")]
    ModelCorrupt {
        /// The path that was given.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The model's architecture is not one this build of llama.cpp runs.
    #[error("model architecture '{architecture}' in {path} is not supported by this PocketLM build (supported include llama, qwen2, qwen3, gemma3, phi3)")]
    UnsupportedArchitecture {
        /// The path that was given.
        path: PathBuf,
        /// The `general.architecture` value (or `(missing)`).
        architecture: String,
    },
    /// The model loads, but its architecture cannot chat (an embedding,
    /// encoder-decoder, speech, diffusion or draft model).
    #[error("{path} is a '{architecture}' model and cannot chat: {reason} (use an instruction-tuned decoder such as Llama 3.2, Qwen 2.5/3, Gemma 3 or Phi)")]
    NotAChatModel {
        /// The path it was loaded from.
        path: PathBuf,
        /// The `general.architecture` value.
        architecture: String,
        /// What kind of model it is instead.
        reason: String,
    },
    /// llama.cpp rejected the model after validation (e.g. missing tensors).
    #[error("llama.cpp could not load {path}; the file passed PocketLM's checks, so it may be an unsupported variant (set the llama.cpp log level to warn to see why)")]
    ModelLoadFailed {
        /// The path that was given.
        path: PathBuf,
    },
    /// llama.cpp could not create an inference context (usually out of memory).
    #[error("could not create an inference context with {context_length} tokens: {reason} (try a smaller context length)")]
    ContextCreationFailed {
        /// The requested context length.
        context_length: u32,
        /// What failed.
        reason: String,
    },
    /// A sampling parameter is out of range.
    #[error("invalid sampling option {name} = {value}: {expected}")]
    InvalidSampling {
        /// The parameter name, e.g. `top_p`.
        name: &'static str,
        /// The rejected value, as text.
        value: String,
        /// The accepted range.
        expected: &'static str,
    },
    /// A model or conversation option is out of range.
    #[error("invalid option {name} = {value}: {expected}")]
    InvalidOption {
        /// The option name, e.g. `context_length`.
        name: &'static str,
        /// The rejected value, as text.
        value: String,
        /// The accepted range.
        expected: String,
    },
    /// The prompt does not fit in the context window.
    #[error("the prompt needs {prompt_tokens} tokens but the context holds {context_length} (shorten it, raise the context length, or use the drop-oldest overflow policy)")]
    ContextOverflow {
        /// Tokens the rendered prompt needs (plus one for the answer).
        prompt_tokens: usize,
        /// The context window size.
        context_length: u32,
    },
    /// No configuration of this model fits the memory budget.
    #[error("the model needs about {} MiB even with a 512-token context, a q4_0 KV cache and small batches, but the budget is {} MiB (use a smaller model or quantisation, or raise the budget)", needed_bytes >> 20, budget_bytes >> 20)]
    InsufficientMemory {
        /// Smallest budget that would fit.
        needed_bytes: u64,
        /// The budget given.
        budget_bytes: u64,
    },
    /// The chat template could not be rendered.
    #[error("chat template error: {0}")]
    Template(String),
    /// llama.cpp failed while evaluating tokens.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The answer failed after some of it was already shown: `partial_text`
    /// is exactly what the caller received, `cause` why it stopped. The
    /// history keeps it unless the request discards interrupted answers.
    #[error("the answer failed after {} characters were shown: {cause}", partial_text.chars().count())]
    AnswerFailed {
        /// The text already delivered to the caller.
        partial_text: String,
        /// What went wrong.
        cause: Box<Error>,
    },
    /// Downloading a model failed.
    #[error("model download failed ({}): {detail} ({})", kind.as_str(), kind.hint())]
    Download {
        /// What kind of failure.
        kind: DownloadErrorKind,
        /// What happened, from the server, the network or the disk.
        detail: String,
    },
    /// This library's CPU kernels use instructions the CPU lacks (running them
    /// would crash the process with an illegal instruction).
    #[error("this CPU lacks {} needed by this build's kernels ({kernels}); load the armv8-a build of PocketLM on this device (the Android SDK picks it automatically)", missing.join(", "))]
    UnsupportedCpu {
        /// The missing extensions, e.g. `dotprod`.
        missing: Vec<String>,
        /// Every extension the kernels were compiled for.
        kernels: String,
    },
    /// The cloud endpoint failed or refused (only with cloud routing configured).
    #[error("cloud request failed ({}): {detail} ({})", kind.as_str(), kind.hint())]
    Cloud {
        /// What kind of failure.
        kind: CloudErrorKind,
        /// What happened, from the server or the network.
        detail: String,
    },
    /// An output constraint (schema, grammar, choice) cannot be enforced.
    #[error("the output constraint cannot be enforced: {detail} (fix the schema or grammar; PocketLM never answers unconstrained when asked for structure)")]
    InvalidConstraint {
        /// What is wrong, naming the keyword or rule when there is one.
        detail: String,
    },
    /// A constrained answer stopped before its value was complete (e.g. the
    /// token limit inside a JSON object): `partial_text` is what was generated.
    #[error("the structured answer stopped ({stop_reason}) before it was complete, after {} characters (raise max_tokens or ask for less)", partial_text.chars().count())]
    StructuredOutputIncomplete {
        /// The text generated (and shown) so far.
        partial_text: String,
        /// Why generation stopped, e.g. `max_tokens`.
        stop_reason: String,
    },
    /// The model (or the cloud) produced a tool call that cannot be run: an
    /// unknown tool, or arguments that are not what the tool declares.
    #[error("the model's call to tool {name:?} is invalid: {detail} (the history is unchanged; retry, or declare the tool's parameters more plainly)")]
    ToolCallInvalid {
        /// The tool the model named (empty if it named none).
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// Automatic tool use went past its round limit: the model kept calling
    /// tools. The history keeps every completed round.
    #[error("the model was still calling tools after {rounds} rounds (raise max_tool_rounds, or answer without tools)")]
    ToolRoundsExceeded {
        /// The limit that was reached.
        rounds: u32,
    },
    /// A router probe file cannot be used: unreadable, damaged, from another
    /// PocketLM layout, or trained for another model.
    #[error("router probe {path} {detail}")]
    RouterProbe {
        /// The probe file.
        path: String,
        /// What is wrong and what to do (e.g. train one for this model with `pocketlm train-router`).
        detail: String,
    },
    /// The model cannot produce embeddings (or not with the pooling asked for).
    #[error("{path} cannot embed: {reason} (load an embedding model such as all-MiniLM-L6-v2 with Model::load_for_embeddings)")]
    CannotEmbed {
        /// The model file.
        path: String,
        /// Why, and what to pass instead.
        reason: String,
    },
    /// A text given to the embedder has more tokens than it takes.
    #[error(
        "text {index} has {tokens} tokens but the embedder takes at most {limit} (split it into smaller chunks, or turn on truncation)"
    )]
    EmbeddingInputTooLong {
        /// Position of the text in the call.
        index: usize,
        /// Its length in tokens, special tokens included.
        tokens: usize,
        /// The embedder's `max_tokens`.
        limit: usize,
    },
    /// A vector index cannot be used: a vector of the wrong width or with no
    /// direction, or an index file that is damaged or from another layout.
    #[error("vector index: {detail}")]
    VectorIndex {
        /// What is wrong and what to do.
        detail: String,
    },
    /// A LoRA adapter cannot be used with this model: not an adapter, made
    /// for another base model (architecture, tensor shapes), malformed in a
    /// way llama.cpp would not survive, or given a scale that is not a number.
    #[error("adapter {path}: {reason}")]
    AdapterMismatch {
        /// The adapter file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A vision projector (mmproj file) cannot be used with this model: not
    /// a projector, a layout PocketLM does not run (only Gemma 3's), made for
    /// another model, or malformed in a way llama.cpp would not survive.
    #[error("vision projector {path}: {reason}")]
    ProjectorMismatch {
        /// The projector file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// An image given to a conversation cannot be used: not JPEG or PNG,
    /// corrupt, or larger than accepted.
    #[error("image {index}: {reason}")]
    InvalidImage {
        /// Position of the image in the call.
        index: usize,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Images were sent where they cannot be seen: the conversation has no
    /// vision projector, or its batch cannot hold one image's tokens.
    #[error("images cannot be used here: {reason}")]
    ImagesUnsupported {
        /// Why, and what to do.
        reason: String,
    },
    /// Loading was cancelled through its `CancelToken` (nothing stays loaded).
    #[error("loading {path} was cancelled")]
    LoadCancelled {
        /// The path that was given.
        path: PathBuf,
    },
    /// A saved conversation could not be saved or restored.
    #[error("session file ({}): {detail} ({})", kind.as_str(), kind.hint())]
    Session {
        /// What kind of failure.
        kind: SessionErrorKind,
        /// What was found.
        detail: String,
    },
}

/// The kinds of session-file failure, each with its own remedy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionErrorKind {
    /// There is no file at that path.
    NotFound,
    /// The file is not a PocketLM session file.
    NotASession,
    /// The file was written by a newer or older, incompatible PocketLM.
    UnsupportedVersion,
    /// The file's header (and so its transcript) is damaged or cut short.
    Corrupt,
    /// The transcript is intact, but the saved KV-cache state is damaged or cut short.
    StateCorrupt,
    /// The state belongs to another model file.
    ModelMismatch,
    /// The state was saved with another chat template.
    TemplateMismatch,
    /// The state was saved under other context settings (length, KV type, SWA cache).
    SettingsMismatch,
    /// The state was saved by another llama.cpp build, whose layout may differ.
    EngineMismatch,
    /// llama.cpp refused the state, or it does not fit this conversation's context.
    StateRejected,
    /// The transcript is too large for a session file.
    TooLarge,
    /// Reading or writing the file failed (permissions, space).
    Storage,
}

impl SessionErrorKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionErrorKind::NotFound => "not_found",
            SessionErrorKind::NotASession => "not_a_session",
            SessionErrorKind::UnsupportedVersion => "unsupported_version",
            SessionErrorKind::Corrupt => "corrupt",
            SessionErrorKind::StateCorrupt => "state_corrupt",
            SessionErrorKind::ModelMismatch => "model_mismatch",
            SessionErrorKind::TemplateMismatch => "template_mismatch",
            SessionErrorKind::SettingsMismatch => "settings_mismatch",
            SessionErrorKind::EngineMismatch => "engine_mismatch",
            SessionErrorKind::StateRejected => "state_rejected",
            SessionErrorKind::TooLarge => "too_large",
            SessionErrorKind::Storage => "storage",
        }
    }

    /// What to do about it.
    pub fn hint(self) -> &'static str {
        if self.transcript_usable() {
            return "restore the transcript alone; the next answer re-reads it";
        }
        match self {
            SessionErrorKind::NotFound => "check the path; start a new conversation if there is none",
            SessionErrorKind::NotASession => "pass a file written by PocketLM's session saving",
            SessionErrorKind::UnsupportedVersion => "this PocketLM cannot read it; start a new conversation",
            SessionErrorKind::Corrupt => "the file is damaged and holds nothing usable; delete it",
            SessionErrorKind::TooLarge => "start a new conversation, or cut the history",
            _ => "check free space and permissions of the directory",
        }
    }

    /// Whether the file's transcript can still be restored (to be re-evaluated)
    /// although the saved state cannot be used.
    pub fn transcript_usable(self) -> bool {
        matches!(
            self,
            SessionErrorKind::StateCorrupt
                | SessionErrorKind::ModelMismatch
                | SessionErrorKind::TemplateMismatch
                | SessionErrorKind::SettingsMismatch
                | SessionErrorKind::EngineMismatch
                | SessionErrorKind::StateRejected
        )
    }
}

/// The kinds of download failure, each with its own remedy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadErrorKind {
    /// The request is invalid (URL, file name, hash) before anything is sent.
    InvalidRequest,
    /// The server could not be reached (refused, DNS, TLS), still after the retries.
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
    /// Writing or renaming the file failed (the disk filled, permissions).
    Storage,
    /// The caller cancelled; the part is kept for a resume.
    Cancelled,
}

impl DownloadErrorKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DownloadErrorKind::InvalidRequest => "invalid_request",
            DownloadErrorKind::Unreachable => "unreachable",
            DownloadErrorKind::Timeout => "timeout",
            DownloadErrorKind::Unauthorized => "unauthorized",
            DownloadErrorKind::NotFound => "not_found",
            DownloadErrorKind::RateLimited => "rate_limited",
            DownloadErrorKind::Server => "server",
            DownloadErrorKind::Http => "http",
            DownloadErrorKind::Interrupted => "interrupted",
            DownloadErrorKind::HashMismatch => "hash_mismatch",
            DownloadErrorKind::InsufficientStorage => "insufficient_storage",
            DownloadErrorKind::Storage => "storage",
            DownloadErrorKind::Cancelled => "cancelled",
        }
    }

    /// What the user can do about it.
    pub fn hint(self) -> &'static str {
        match self {
            DownloadErrorKind::InvalidRequest => "fix the URL, file name or SHA-256",
            DownloadErrorKind::Unreachable => "check the network and the URL; the download resumes where it stopped",
            DownloadErrorKind::Timeout => "the server or network is slow; try again, the download resumes",
            DownloadErrorKind::Unauthorized => "this model needs an access token (accept its licence on the host, then pass the token)",
            DownloadErrorKind::NotFound => "check the URL and the revision",
            DownloadErrorKind::RateLimited => "wait and try again",
            DownloadErrorKind::Server => "the host is failing; try later, the download resumes",
            DownloadErrorKind::Http => "the host answered in a way the downloader cannot use; check the URL",
            DownloadErrorKind::Interrupted => "the connection kept dropping; try again, the download resumes",
            DownloadErrorKind::HashMismatch => "the file is not the expected one; check the URL and the SHA-256 (the bad file was deleted)",
            DownloadErrorKind::InsufficientStorage => "free some space, then try again",
            DownloadErrorKind::Storage => "check free space and permissions of the models directory",
            DownloadErrorKind::Cancelled => "cancelled; starting it again resumes",
        }
    }

    /// Whether trying again (after a pause) may help.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            DownloadErrorKind::Unreachable
                | DownloadErrorKind::Timeout
                | DownloadErrorKind::RateLimited
                | DownloadErrorKind::Server
                | DownloadErrorKind::Interrupted
        )
    }
}

/// The kinds of cloud failure, each with its own remedy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// The request would pass the app's cloud budget (per request or in total).
    BudgetExceeded,
    /// The caller cancelled the request.
    Cancelled,
}

impl CloudErrorKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudErrorKind::NotConfigured => "not_configured",
            CloudErrorKind::Unreachable => "unreachable",
            CloudErrorKind::Timeout => "timeout",
            CloudErrorKind::Unauthorized => "unauthorized",
            CloudErrorKind::RateLimited => "rate_limited",
            CloudErrorKind::Server => "server",
            CloudErrorKind::BadRequest => "bad_request",
            CloudErrorKind::MalformedStream => "malformed_stream",
            CloudErrorKind::Interrupted => "interrupted",
            CloudErrorKind::CircuitOpen => "circuit_open",
            CloudErrorKind::BudgetExceeded => "budget_exceeded",
            CloudErrorKind::Cancelled => "cancelled",
        }
    }

    /// What the user can do about it.
    pub fn hint(self) -> &'static str {
        match self {
            CloudErrorKind::NotConfigured => "configure a cloud endpoint and allow cloud use, or route locally",
            CloudErrorKind::Unreachable => "check the URL and the network",
            CloudErrorKind::Timeout => "the endpoint is slow or down; raise the timeouts or try later",
            CloudErrorKind::Unauthorized => "check the API key",
            CloudErrorKind::RateLimited => "slow down or raise the plan's rate limit",
            CloudErrorKind::Server => "the provider is failing; try later",
            CloudErrorKind::BadRequest => "check the model name and request options",
            CloudErrorKind::MalformedStream => "the endpoint is not OpenAI-compatible",
            CloudErrorKind::Interrupted => "the connection dropped mid-answer; the partial answer was not kept",
            CloudErrorKind::CircuitOpen => "the endpoint failed repeatedly; it will be tried again after the cool-down",
            CloudErrorKind::BudgetExceeded => "raise the budget, shorten the request or lower max_tokens, or answer on the device",
            CloudErrorKind::Cancelled => "cancelled by the caller",
        }
    }

    /// Whether trying again (after a pause) may help.
    pub fn is_transient(self) -> bool {
        matches!(self, CloudErrorKind::Unreachable | CloudErrorKind::Timeout | CloudErrorKind::RateLimited | CloudErrorKind::Server)
    }
}

impl Error {
    /// Maps a GGUF validation error for `path` to the public error.
    pub fn from_gguf(path: PathBuf, e: GgufError) -> Error {
        match e {
            GgufError::BadMagic { .. } | GgufError::UnsupportedVersion(_) => Error::NotGguf { path, detail: e.to_string() },
            GgufError::Truncated(detail) => Error::ModelTruncated { path, detail },
            GgufError::Malformed(detail) => Error::ModelCorrupt { path, detail },
        }
    }

    /// Maps an I/O error opening `path` to the public error.
    pub fn from_io(path: PathBuf, e: &std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::ModelNotFound { path }
        } else {
            Error::ModelUnreadable { path, reason: e.to_string() }
        }
    }
}
