//! How sure the model is of its answer, from token-level signals gathered
//! while decoding: the log-probability of each chosen token and the entropy
//! of the distribution it was chosen from (both under the model's raw
//! distribution, before temperature or truncation).
//!
//! The score an app thresholds is a geometric-mean token probability in
//! (0, 1]: over the first tokens of the answer (where a short answer, such as
//! a multiple-choice letter, is decided), then over every rolling window of
//! later tokens. It drops as soon as the model starts guessing, so a router
//! can escalate without waiting for the local answer to finish.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// When to call an answer unconfident.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfidenceOptions {
    /// Escalate when the score falls below this, in [0, 1]; 0 never escalates.
    pub threshold: f32,
    /// Tokens in the first window (decided as soon as they are generated).
    pub first_tokens: u32,
    /// Tokens in each later rolling window.
    pub window: u32,
}

impl Default for ConfidenceOptions {
    fn default() -> Self {
        ConfidenceOptions { threshold: 0.0, first_tokens: 4, window: 16 }
    }
}

impl ConfidenceOptions {
    /// Checks the values and returns a typed error for the first bad one.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(Error::InvalidOption {
                name: "confidence_threshold",
                value: self.threshold.to_string(),
                expected: "a probability between 0 and 1 (e.g. 0.5)".into(),
            });
        }
        if self.first_tokens == 0 || self.window == 0 {
            return Err(Error::InvalidOption {
                name: "confidence_window",
                value: format!("first_tokens {}, window {}", self.first_tokens, self.window),
                expected: "both at least 1 token".into(),
            });
        }
        Ok(())
    }
}

/// The signals of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Confidence {
    /// The score: the lowest geometric-mean token probability over the first
    /// window and every later rolling window, in (0, 1].
    pub score: f32,
    /// Geometric-mean probability of the first tokens.
    pub first_tokens_score: f32,
    /// Mean log-probability of the chosen tokens.
    pub mean_logprob: f32,
    /// Lowest log-probability of a chosen token.
    pub min_logprob: f32,
    /// Mean entropy of the distributions tokens were chosen from, in nats.
    pub mean_entropy: f32,
    /// Tokens scored.
    pub tokens: u32,
}

/// Accumulates the signals token by token.
#[derive(Debug, Clone)]
pub struct ConfidenceTracker {
    options: ConfidenceOptions,
    logprobs: Vec<f32>,
    entropy_sum: f64,
    score: f32,
    first: Option<f32>,
}

impl ConfidenceTracker {
    /// A tracker with these thresholds and windows.
    pub fn new(options: ConfidenceOptions) -> Self {
        ConfidenceTracker { options, logprobs: Vec::new(), entropy_sum: 0.0, score: 1.0, first: None }
    }

    /// Records the token chosen from `logits`; returns true when the answer
    /// has just become unconfident (score below the threshold).
    pub fn push(&mut self, logits: &[f32], token: usize) -> bool {
        let (logprob, entropy) = logprob_and_entropy(logits, token);
        self.logprobs.push(logprob);
        self.entropy_sum += f64::from(entropy);
        let n = self.logprobs.len();
        let first = self.options.first_tokens as usize;
        let window = self.options.window as usize;
        let geo_mean = |s: &[f32]| (s.iter().map(|&l| f64::from(l)).sum::<f64>() / s.len() as f64).exp() as f32;
        if n == first {
            let s = geo_mean(&self.logprobs);
            self.first = Some(s);
            self.score = self.score.min(s);
        } else if n > first && n >= window {
            self.score = self.score.min(geo_mean(&self.logprobs[n - window..]));
        }
        self.score < self.options.threshold
    }

    /// The signals so far (an answer shorter than the first window is scored over what it has).
    pub fn finish(&self) -> Option<Confidence> {
        if self.logprobs.is_empty() {
            return None;
        }
        let n = self.logprobs.len() as f64;
        let mean = self.logprobs.iter().map(|&l| f64::from(l)).sum::<f64>() / n;
        let first = self.first.unwrap_or(mean.exp() as f32);
        Some(Confidence {
            score: self.score.min(first),
            first_tokens_score: first,
            mean_logprob: mean as f32,
            min_logprob: self.logprobs.iter().copied().fold(f32::INFINITY, f32::min),
            mean_entropy: (self.entropy_sum / n) as f32,
            tokens: self.logprobs.len() as u32,
        })
    }
}

/// log p(token) and the entropy (nats) of softmax(logits), in one pass.
pub fn logprob_and_entropy(logits: &[f32], token: usize) -> (f32, f32) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut sum, mut weighted) = (0f64, 0f64);
    for &l in logits {
        let e = f64::from(l - max).exp();
        sum += e;
        weighted += e * f64::from(l - max);
    }
    let log_z = sum.ln();
    let logprob = f64::from(logits.get(token).copied().unwrap_or(f32::NEG_INFINITY) - max) - log_z;
    let entropy = log_z - weighted / sum;
    (logprob as f32, entropy as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_logits_have_maximal_entropy() {
        let (lp, h) = logprob_and_entropy(&[0.0; 4], 2);
        assert!((lp - 0.25f32.ln()).abs() < 1e-6);
        assert!((h - 4f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn a_certain_token_scores_one() {
        let mut t = ConfidenceTracker::new(ConfidenceOptions { threshold: 0.5, first_tokens: 2, window: 3 });
        let sure = [100.0, 0.0, 0.0];
        assert!(!t.push(&sure, 0));
        assert!(!t.push(&sure, 0));
        let c = t.finish().unwrap();
        assert!(c.score > 0.99 && c.mean_entropy < 1e-3);
    }

    #[test]
    fn guessing_drops_below_the_threshold_within_the_first_window() {
        let mut t = ConfidenceTracker::new(ConfidenceOptions { threshold: 0.5, first_tokens: 2, window: 4 });
        assert!(!t.push(&[0.0, 0.0, 0.0, 0.0], 1), "undecided until the first window is full");
        assert!(t.push(&[0.0, 0.0, 0.0, 0.0], 1), "p = 0.25 < 0.5");
        assert!((t.finish().unwrap().first_tokens_score - 0.25).abs() < 1e-6);
    }

    #[test]
    fn thresholds_outside_zero_one_are_rejected() {
        let bad = ConfidenceOptions { threshold: 1.5, ..Default::default() };
        assert!(matches!(bad.validate(), Err(Error::InvalidOption { name: "confidence_threshold", .. })));
    }
}
