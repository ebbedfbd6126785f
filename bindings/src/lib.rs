//! uniffi bindings for PocketLM: small wrappers that convert types and
//! delegate to the `pocketlm` core. Kotlin and Swift are generated from this
//! crate in library mode (`uniffi-bindgen generate --library`); the idiomatic
//! Kotlin (`Flow`, `suspend`) and Swift (`AsyncThrowingStream`, `async`) APIs
//! are thin hand-written layers over the generated code.
//!
//! One module per feature, its records beside its objects:
//!
//! - [`model`]: loading (`PocketModel`), model configuration and description, memory planning;
//! - [`chat`]: conversations (`PocketConversation`), sampling, messages, replies and metrics;
//! - [`adapter`]: LoRA adapters (`PocketAdapter`) set on conversations with a scale;
//! - [`vision`]: vision projectors (`PocketProjector`) that let conversations take images;
//! - [`routing`]: hybrid routing to a cloud model (cargo feature `cloud`, on by default);
//! - [`embed`]: embeddings (`PocketEmbedder`) and the vector index (`PocketVectorIndex`);
//! - [`catalog`]: the model catalog and which models fit a device (`PocketCatalog`);
//! - [`download`]: resumable, verified model downloads (cargo feature `download`, on by default);
//! - [`logging`]: one logging initialisation for the SDK and llama.cpp;
//! - [`error`]: the fielded error crossing the FFI.
//!
//! Shared machinery: `task` (a request on its own threads, and its handle),
//! `live` (what reads return while a request runs), `convert` (signed
//! integers at the boundary).

pub mod adapter;
pub mod catalog;
pub mod chat;
mod convert;
#[cfg(feature = "download")]
pub mod download;
pub mod embed;
pub mod error;
mod live;
pub mod logging;
pub mod model;
#[cfg(feature = "cloud")]
pub mod routing;
mod task;
pub mod vision;

pub use adapter::{plan_memory_with_adapters, AdapterInfo, AdapterSetting, PocketAdapter};
pub use catalog::{CatalogEntry, CatalogFile, ModelShape, PocketCatalog, Recommendation};
pub use chat::{
    read_session_summary, ChatMessage, ConversationConfig, Metrics, PocketConversation, Reply, ReplyListener, RestoredSession, Role,
    SamplingConfig, SavedSession, SessionSummary, StopReason,
};
#[cfg(feature = "download")]
pub use download::{
    DownloadHandle, DownloadListener, DownloadOptions, DownloadProgress, DownloadRequest, DownloadState, InstalledModel, ModelDownloader,
};
pub use embed::{EmbedConfig, EmbedPooling, PocketEmbedder, PocketVectorIndex, SearchHit};
pub use error::{CloudErrorKind, DownloadErrorKind, FfiError, SessionErrorKind};
pub use logging::{init_logging, LogLevel, LogSink};
pub use model::{
    BackendInfo, BackendRequest, CancelSignal, LoadProgressListener, MemoryPlan, ModelConfig, ModelInfo, PocketModel, WeightLoading,
};
#[cfg(feature = "cloud")]
pub use routing::{
    CloudEndpoint, Cost, Redactor, RouteListener, RoutePolicy, RouteReason, RouteRequest, RoutedConversation, RoutedReply, RouterConfig,
};
pub use task::GenerationHandle;

uniffi::setup_scaffolding!();
