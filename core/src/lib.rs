//! PocketLM core: run a quantised GGUF language model on the device.
//!
//! ```no_run
//! use pocketlm::{Conversation, ConversationOptions, Model, ModelOptions, SendOptions};
//!
//! let model = Model::load("qwen2.5-0.5b.gguf", &ModelOptions::default())?;
//! let mut chat = Conversation::new(&model, ConversationOptions::default())?;
//! let reply = chat.send("What is the capital of France?", &SendOptions::default(), &mut |delta| {
//!     print!("{delta}");
//! })?;
//! println!("\n{} tokens at {:.1} tok/s", reply.metrics.generated_tokens, reply.metrics.decode_tokens_per_s);
//! # Ok::<(), pocketlm::Error>(())
//! ```
//!
//! The layers, each allowed to call only those below it (see
//! `docs/architecture.md`):
//!
//! - the pure layer, the `pocketlm-base` crate (`core/base`): the GGUF
//!   reader, the memory planner, chat templates, text streaming, confidence
//!   math, sampling options, the error type; no llama.cpp, no `unsafe`;
//! - `engine`: every llama.cpp call and every `unsafe` block: [`Model`],
//!   contexts and the KV cache, LoRA adapters ([`LoraAdapter`]), the sampler chain, backends and the GPU
//!   probe, the CPU guard, the log bridge;
//! - `chat`: [`Conversation`]: history, overflow, cancellation, metrics;
//! - `embed`: [`Embedder`]: texts to vectors, for retrieval with [`VectorIndex`];
//! - `cloud` (cargo feature `cloud`): [`CloudClient`] and [`RoutedChat`];
//! - `bench` (cargo feature `bench`): [`bench()`], for the CLI.
#![deny(unsafe_code)]

// The pure layer, re-exported so `pocketlm::gguf`, `pocketlm::plan` and
// `crate::error` keep their paths.
use pocketlm_base::{arch, cancel, confidence, constraint, error, partial, sampling, stream, template, tool};
pub use pocketlm_base::{catalog, gguf, image, lora, plan, probe, session_file, vector_index, vision};

#[allow(unsafe_code)] // the one layer that may: see engine/mod.rs
mod engine;

mod chat;
mod embed;

#[cfg(feature = "bench")]
mod bench;
#[cfg(feature = "cloud")]
mod cloud;
#[cfg(feature = "download")]
mod download;
#[cfg(any(feature = "cloud", feature = "download"))]
mod net;

#[cfg(feature = "bench")]
pub use bench::{
    bench, bench_restore, bench_turns, BenchOptions, BenchReport, BenchRun, RestoreBenchOptions, RestoreBenchReport, TurnBenchOptions,
    TurnBenchReport, TurnTiming,
};
pub use cancel::CancelToken;
pub use catalog::{Catalog, CatalogEntry, CatalogFile, RecommendRequest, Recommendation};
pub use chat::{
    read_session_summary, ChatEvent, Conversation, ConversationOptions, Metrics, OverflowPolicy, PartialAnswer, Reply, RestoredSession,
    SavedSession, SendOptions, SessionSummary, StopReason, DEFAULT_CONTEXT_LENGTH, DEFAULT_MAX_TOOL_ROUNDS,
};
#[cfg(feature = "cloud")]
pub use cloud::{
    AnsweredBy, CloudBudget, CloudClient, CloudConfig, CloudEstimate, CloudReply, CloudRequest, CloudTokenizer, CloudUsage, Cost,
    CostTotals, Pricing, Redactor, RouteEvent, RouteInfo, RouteOptions, RoutePolicy, RouteReason, RoutedChat, RoutedReply, RouterConfig,
};
pub use confidence::{Confidence, ConfidenceOptions, ContentSignals};
pub use constraint::{Constraint, Structured};
#[cfg(feature = "download")]
pub use download::{
    DownloadControl, DownloadOptions, DownloadProgress, DownloadRequest, DownloadState, Downloader, InstalledModel, ModelStore,
};
pub use embed::{EmbedOptions, Embedder, Embeddings, DEFAULT_EMBED_TOKENS};
pub use engine::{
    choose_backend, compiled_gpu_backends, default_threads, describe, inspect_adapter, inspect_file, inspect_projector, live_model_count,
    peak_rss_bytes, set_llama_log_level, AdapterInfo, BackendInfo, BackendRequest, CpuInfo, LoraAdapter, Model, ModelInfo, ModelOptions,
    Pooling, Projector, ProjectorInfo, ARM_VARIANT_BASELINE, ARM_VARIANT_DOTPROD, FORCE_PROBE_FAILURE_ENV, MAX_ADAPTER_FILE_BYTES,
    MAX_PROJECTOR_FILE_BYTES,
};
pub use error::{CloudErrorKind, DownloadErrorKind, Error, Result, SessionErrorKind};
pub use image::{Image, ImageFormat};
/// Snapshots of JSON still being written (what [`ChatEvent::Snapshot`] carries).
pub use partial::snapshot as json_snapshot;
pub use plan::{KvType, MemoryEstimate, MemoryPlan, ModelShape, PlanRequest, WeightLoading};
pub use probe::{AnswerFeatures, AnswerForm, Probe, ProbeSetup};
pub use sampling::SamplingParams;
pub use stream::{Step, TextStream};
pub use template::{render_plain, ChatTemplate, Message, Role};
pub use tool::{validate as tool_validate, Tool, ToolCall, ToolChoice, ToolFormat, ToolResult};
pub use vector_index::{SearchHit, VectorIndex};
