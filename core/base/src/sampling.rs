//! Sampling options and their validation (the llama.cpp sampler chain that
//! applies them lives in the engine).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the next token is chosen. Defaults follow llama.cpp's.
///
/// `temperature == 0` means greedy decoding (always the most likely token),
/// which makes answers reproducible without a seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// Softmax temperature, `>= 0`; `0` is greedy.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; `0` disables.
    pub top_k: u32,
    /// Nucleus sampling: keep the smallest set with this much probability, in `(0, 1]`.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the best one, in `[0, 1]`.
    pub min_p: f32,
    /// Penalty for repeating recent tokens, `> 0`; `1` disables.
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    pub repeat_last_n: u32,
    /// Random seed; the same seed and prompt give the same answer. `None` picks one at random.
    pub seed: Option<u32>,
    /// Most tokens to generate for one answer, `>= 1`.
    pub max_tokens: u32,
    /// Extra stop sequences; generation ends before any of them and they are never emitted.
    pub stop: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: None,
            max_tokens: 512,
            stop: Vec::new(),
        }
    }
}

impl SamplingParams {
    /// Greedy decoding (temperature 0) with the other defaults.
    pub fn greedy() -> Self {
        SamplingParams { temperature: 0.0, ..Self::default() }
    }

    /// Checks every value and returns a typed error for the first bad one.
    pub fn validate(&self) -> Result<()> {
        fn bad(name: &'static str, value: impl ToString, expected: &'static str) -> Result<()> {
            Err(Error::InvalidSampling { name, value: value.to_string(), expected })
        }
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad("temperature", self.temperature, "must be a finite number >= 0 (0 means greedy)");
        }
        if !self.top_p.is_finite() || self.top_p <= 0.0 || self.top_p > 1.0 {
            return bad("top_p", self.top_p, "must be in (0, 1]");
        }
        if !self.min_p.is_finite() || !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p", self.min_p, "must be in [0, 1]");
        }
        if !self.repeat_penalty.is_finite() || self.repeat_penalty <= 0.0 {
            return bad("repeat_penalty", self.repeat_penalty, "must be a finite number > 0 (1 disables it)");
        }
        if self.top_k > i32::MAX as u32 {
            return bad("top_k", self.top_k, "must be at most 2147483647 (0 disables it)");
        }
        if self.repeat_last_n > i32::MAX as u32 {
            return bad("repeat_last_n", self.repeat_last_n, "must be at most 2147483647");
        }
        if self.max_tokens == 0 {
            return bad("max_tokens", self.max_tokens, "must be at least 1");
        }
        if self.stop.iter().any(String::is_empty) {
            return bad("stop", "\"\"", "stop sequences must not be empty");
        }
        Ok(())
    }
}

/// A seed for when none was given: different on every call.
pub fn random_seed() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}
