//! The engine layer: every llama.cpp call and every `unsafe` block of the SDK
//! lives here, and nowhere else (`scripts/check-layering.sh` fails the tests
//! otherwise).
//!
//! - [`model`]: validating and loading a GGUF model, tokenizing, rendering prompts;
//! - [`session`]: one context and its KV cache (prefix reuse, abortable prefill);
//! - [`adapter`]: LoRA adapters loaded onto a model (checked first, set per session);
//! - [`vision`]: vision projectors (mmproj) beside a model, and images into a context;
//! - [`embedding`]: a context with embeddings on (pooled vectors, batches of texts);
//! - [`sampler`]: the llama.cpp sampler chain for [`crate::SamplingParams`];
//! - [`constraint`]: constrained decoding (llguidance, llama.cpp GBNF) and choice scoring;
//! - [`backend`], [`selftest`], [`cpp_guard`]: choosing CPU or GPU, the GPU
//!   kernel self-test, and keeping C++ exceptions out of Rust;
//! - [`cpu`]: the CPU guard (kernels the CPU cannot run are refused, not executed);
//! - [`logging`]: llama.cpp's log lines into the `log` facade;
//! - [`threads`], [`rss`]: platform facts (performance cores, peak memory).

pub(crate) mod adapter;
pub(crate) mod backend;
pub(crate) mod constraint;
pub(crate) mod cpp_guard;
pub(crate) mod cpu;
pub(crate) mod embedding;
pub(crate) mod logging;
pub(crate) mod model;
pub(crate) mod rss;
pub(crate) mod sampler;
pub(crate) mod selftest;
pub(crate) mod session;
pub(crate) mod threads;
pub(crate) mod vision;

pub use adapter::{inspect_adapter, AdapterInfo, LoraAdapter, MAX_ADAPTER_FILE_BYTES};
pub use backend::{choose_backend, compiled_gpu_backends, BackendInfo, BackendRequest, FORCE_PROBE_FAILURE_ENV};
pub(crate) use constraint::{call_sampler, sampler as constraint_sampler};
pub use cpu::{CpuInfo, ARM_VARIANT_BASELINE, ARM_VARIANT_DOTPROD};
pub(crate) use embedding::EmbedContext;
pub use embedding::Pooling;
pub use logging::set_llama_log_level;
pub(crate) use model::PromptSegment;
pub use model::{describe, inspect_file, live_model_count, Model, ModelInfo, ModelOptions};
pub use rss::peak_rss_bytes;
pub(crate) use sampler::Sampler;
pub(crate) use session::{Prefill, PromptPart, Session, SessionParams, STATE_LAYOUT};
pub use threads::default_threads;
pub use vision::{inspect_projector, Projector, ProjectorInfo, MAX_PROJECTOR_FILE_BYTES};

/// A compiled output constraint (schema, grammar or tool-call grammar),
/// ready to go first in a [`Sampler`]; the layers above only pass it on.
pub(crate) type ConstraintSampler = llama_cpp_2::sampling::LlamaSampler;

/// A token id as llama.cpp hands it out; the layers above only pass it back.
pub(crate) type Token = llama_cpp_2::token::LlamaToken;
