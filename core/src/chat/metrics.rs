//! What each answer cost: tokens, timings, memory and why it stopped.

use serde::{Deserialize, Serialize};

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    Eos,
    /// A stop sequence appeared in the output (it is not included in the text).
    StopSequence,
    /// The `max_tokens` limit was reached.
    MaxTokens,
    /// The caller cancelled.
    Cancelled,
    /// The context window filled up before the answer ended.
    ContextFull,
    /// The confidence score fell below the threshold (see [`crate::ConfidenceOptions`]).
    LowConfidence,
    /// The request's deadline passed before the answer ended.
    Deadline,
}

impl StopReason {
    /// The stable lower-case name used in JSON (`eos`, `stop_sequence`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Eos => "eos",
            StopReason::StopSequence => "stop_sequence",
            StopReason::MaxTokens => "max_tokens",
            StopReason::Cancelled => "cancelled",
            StopReason::ContextFull => "context_full",
            StopReason::LowConfidence => "low_confidence",
            StopReason::Deadline => "deadline",
        }
    }
}

/// Measurements for one answer. Field names are a stable JSON contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Time the model took to load, in milliseconds.
    pub load_ms: f64,
    /// Time from the request to the first generated token, in milliseconds.
    pub ttft_ms: f64,
    /// Prompt tokens served from the KV cache (not evaluated again).
    pub prompt_tokens_reused: u32,
    /// Prompt tokens evaluated for this answer.
    pub prompt_tokens_evaluated: u32,
    /// Tokens generated (including a final end-of-generation token).
    pub generated_tokens: u32,
    /// Prompt evaluation speed, tokens per second.
    pub prefill_tokens_per_s: f64,
    /// Generation speed after the first token, tokens per second.
    pub decode_tokens_per_s: f64,
    /// The process's peak resident memory so far, in bytes.
    pub peak_rss_bytes: u64,
    /// Why generation stopped.
    pub stop_reason: StopReason,
    /// Wall time of the whole request, in milliseconds.
    pub total_ms: f64,
    /// What ran the model: `cpu`, `vulkan` or `metal` (see [`crate::BackendInfo`]).
    pub backend: String,
    /// The device that ran it.
    pub device: String,
    /// Time spent preparing output constraints (compiling a schema, grammar
    /// or tool-call grammar; the first one also indexes the vocabulary), in milliseconds.
    #[serde(default)]
    pub constraint_ms: f64,
    /// Token-level confidence signals, when requested in [`crate::SendOptions`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<crate::Confidence>,
}
