//! How a conversation behaves: its system prompt, sampling and context.

use crate::convert::{count, saturating_i32};

/// How the next token is chosen. `temperature = 0` is greedy (reproducible).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SamplingConfig {
    /// Softmax temperature, >= 0; 0 is greedy.
    #[uniffi(default = 0.8)]
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 disables.
    #[uniffi(default = 40)]
    pub top_k: i32,
    /// Nucleus sampling, in (0, 1].
    #[uniffi(default = 0.95)]
    pub top_p: f32,
    /// Minimum probability relative to the best token, in [0, 1].
    #[uniffi(default = 0.05)]
    pub min_p: f32,
    /// Repeat penalty, > 0; 1 disables.
    #[uniffi(default = 1.0)]
    pub repeat_penalty: f32,
    /// Seed for reproducible sampling, in [0, 4294967295]; none picks one at random.
    #[uniffi(default = None)]
    pub seed: Option<i64>,
    /// Most tokens per answer, >= 1.
    #[uniffi(default = 512)]
    pub max_tokens: i32,
    /// Stop sequences (never included in the answer).
    #[uniffi(default = [])]
    pub stop: Vec<String>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        pocketlm::SamplingParams::default().into()
    }
}

impl From<pocketlm::SamplingParams> for SamplingConfig {
    fn from(p: pocketlm::SamplingParams) -> Self {
        SamplingConfig {
            temperature: p.temperature,
            top_k: saturating_i32(p.top_k),
            top_p: p.top_p,
            min_p: p.min_p,
            repeat_penalty: p.repeat_penalty,
            seed: p.seed.map(i64::from),
            max_tokens: saturating_i32(p.max_tokens),
            stop: p.stop,
        }
    }
}

impl TryFrom<SamplingConfig> for pocketlm::SamplingParams {
    type Error = pocketlm::Error;

    fn try_from(c: SamplingConfig) -> Result<Self, pocketlm::Error> {
        let bad = |name: &'static str, value: String, expected: &'static str| pocketlm::Error::InvalidSampling { name, value, expected };
        let seed = match c.seed {
            Some(s) => Some(u32::try_from(s).map_err(|_| bad("seed", s.to_string(), "must be in [0, 4294967295]"))?),
            None => None,
        };
        let top_k = u32::try_from(c.top_k).map_err(|_| bad("top_k", c.top_k.to_string(), "must be >= 0 (0 disables)"))?;
        let max_tokens = count("max_tokens", c.max_tokens).map_err(|_| bad("max_tokens", c.max_tokens.to_string(), "must be >= 1"))?;
        Ok(pocketlm::SamplingParams {
            temperature: c.temperature,
            top_k,
            top_p: c.top_p,
            min_p: c.min_p,
            repeat_penalty: c.repeat_penalty,
            seed,
            max_tokens,
            stop: c.stop,
            ..pocketlm::SamplingParams::default()
        })
    }
}

/// How a conversation behaves.
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct ConversationConfig {
    /// Optional system prompt.
    #[uniffi(default = None)]
    pub system_prompt: Option<String>,
    /// Sampling for every answer.
    #[uniffi(default)]
    pub sampling: SamplingConfig,
    /// Drop the oldest turns instead of failing when the context is full.
    #[uniffi(default = false)]
    pub drop_oldest_on_overflow: bool,
    /// Override the model's context length for this conversation.
    #[uniffi(default = None)]
    pub context_length: Option<i32>,
}
