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
//! The pieces, one concern each: [`gguf`] validates files before llama.cpp sees
//! them, [`Model`] loads and describes, [`Conversation`] renders prompts with
//! the model's chat template, reuses the KV cache across turns and streams
//! answers, [`SamplingParams`] chooses tokens, [`bench()`] measures.

// The pure layer (no llama.cpp, no unsafe), re-exported so `pocketlm::gguf`,
// `pocketlm::plan` and `crate::error` keep their paths.
use pocketlm_base::{arch, confidence, error, stream, template};
pub use pocketlm_base::{gguf, plan};

mod backend;
mod bench;
mod cancel;
mod cloud;
mod conversation;
mod cpp_guard;
mod cpu;
mod logging;
mod metrics;
mod model;
mod router;
mod sampling;
mod selftest;
mod session;
mod threads;

pub use backend::{choose_backend, compiled_gpu_backends, BackendInfo, BackendRequest, FORCE_PROBE_FAILURE_ENV};
pub use bench::{bench, bench_turns, BenchOptions, BenchReport, BenchRun, TurnBenchOptions, TurnBenchReport, TurnTiming};
pub use cancel::CancelToken;
pub use cloud::{CloudClient, CloudConfig, CloudReply, CloudUsage};
pub use confidence::{Confidence, ConfidenceOptions};
pub use conversation::{Conversation, ConversationOptions, OverflowPolicy, PartialAnswer, Reply, SendOptions, DEFAULT_CONTEXT_LENGTH};
pub use cpu::{CpuInfo, ARM_VARIANT_BASELINE, ARM_VARIANT_DOTPROD};
pub use error::{CloudErrorKind, Error, Result};
pub use logging::set_llama_log_level;
pub use metrics::{peak_rss_bytes, Metrics, StopReason};
pub use model::{describe, inspect_file, live_model_count, Model, ModelInfo, ModelOptions};
pub use plan::{KvType, MemoryEstimate, MemoryPlan, PlanRequest, WeightLoading};
pub use router::{
    AnsweredBy, Cost, CostTotals, Pricing, Redactor, RouteEvent, RouteInfo, RouteOptions, RoutePolicy, RouteReason, RoutedChat,
    RoutedReply, RouterConfig,
};
pub use sampling::SamplingParams;
pub use stream::{Step, TextStream};
pub use template::{render_plain, ChatTemplate, Message, Role};
pub use threads::default_threads;
