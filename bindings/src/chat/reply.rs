//! What an answer returns: its text and what it cost.

use super::structured::{StructuredValue, ToolCall};
use crate::convert::{saturating_i32, saturating_i64};

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum StopReason {
    /// End-of-generation token.
    Eos,
    /// A stop sequence.
    StopSequence,
    /// The token limit.
    MaxTokens,
    /// Cancelled by the caller.
    Cancelled,
    /// The context window filled up.
    ContextFull,
    /// The confidence score fell below the threshold.
    LowConfidence,
    /// The request's deadline passed.
    Deadline,
}

/// What an answer cost.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Metrics {
    /// Model load time, ms.
    pub load_ms: f64,
    /// Time to first token, ms.
    pub ttft_ms: f64,
    /// Prompt tokens reused from the KV cache.
    pub prompt_tokens_reused: i32,
    /// Prompt tokens evaluated.
    pub prompt_tokens_evaluated: i32,
    /// Tokens generated.
    pub generated_tokens: i32,
    /// Prompt evaluation speed, tokens/s.
    pub prefill_tokens_per_s: f64,
    /// Generation speed, tokens/s.
    pub decode_tokens_per_s: f64,
    /// Peak resident memory of the process, bytes.
    pub peak_rss_bytes: i64,
    /// Why generation stopped.
    pub stop_reason: StopReason,
    /// Wall time of the request, ms.
    pub total_ms: f64,
    /// What ran the model: `cpu`, `vulkan` or `metal`.
    pub backend: String,
    /// The device that ran it.
    pub device: String,
}

impl From<&pocketlm::Metrics> for Metrics {
    fn from(m: &pocketlm::Metrics) -> Self {
        let stop_reason = match m.stop_reason {
            pocketlm::StopReason::Eos => StopReason::Eos,
            pocketlm::StopReason::StopSequence => StopReason::StopSequence,
            pocketlm::StopReason::MaxTokens => StopReason::MaxTokens,
            pocketlm::StopReason::Cancelled => StopReason::Cancelled,
            pocketlm::StopReason::ContextFull => StopReason::ContextFull,
            pocketlm::StopReason::LowConfidence => StopReason::LowConfidence,
            pocketlm::StopReason::Deadline => StopReason::Deadline,
        };
        Metrics {
            load_ms: m.load_ms,
            ttft_ms: m.ttft_ms,
            prompt_tokens_reused: saturating_i32(m.prompt_tokens_reused),
            prompt_tokens_evaluated: saturating_i32(m.prompt_tokens_evaluated),
            generated_tokens: saturating_i32(m.generated_tokens),
            prefill_tokens_per_s: m.prefill_tokens_per_s,
            decode_tokens_per_s: m.decode_tokens_per_s,
            peak_rss_bytes: saturating_i64(m.peak_rss_bytes),
            stop_reason,
            total_ms: m.total_ms,
            backend: m.backend.clone(),
            device: m.device.clone(),
        }
    }
}

/// A finished answer.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Reply {
    /// The answer text.
    pub text: String,
    /// What it cost.
    pub metrics: Metrics,
    /// The parsed JSON value or the chosen option, for a constrained answer.
    pub structured: Option<StructuredValue>,
    /// The tools the model called; answer them with `send_tool_results`.
    pub tool_calls: Vec<ToolCall>,
}

impl From<pocketlm::Reply> for Reply {
    fn from(r: pocketlm::Reply) -> Self {
        Reply {
            metrics: (&r.metrics).into(),
            structured: r.structured.map(Into::into),
            tool_calls: r.tool_calls.iter().map(Into::into).collect(),
            text: r.text,
        }
    }
}
