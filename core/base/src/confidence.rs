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
    /// For a choice among options: the probability of the chosen option
    /// (normalised over the options).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_probability: Option<f32>,
    /// For a choice: the chosen option's probability minus the runner-up's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_margin: Option<f32>,
    /// For a choice: the entropy of the options' probabilities, in nats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_entropy: Option<f32>,
    /// For free text: signals over content tokens only (template and
    /// formatting tokens excluded); `None` when no token was content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentSignals>,
    /// The router probe's calibrated probability that the answer is right,
    /// when a probe for this model and kind of answer is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<f32>,
}

/// Token signals over an answer's content tokens: those with a letter or a
/// digit in their text, so whitespace, punctuation, markup and control
/// tokens do not dilute (or inflate) them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentSignals {
    /// 10th percentile of the content tokens' log-probabilities.
    pub logprob_p10: f32,
    /// Median log-probability.
    pub logprob_median: f32,
    /// Lowest log-probability.
    pub min_logprob: f32,
    /// Mean entropy of the distributions they were chosen from, in nats.
    pub mean_entropy: f32,
    /// Mean gap between the top two probabilities.
    pub mean_margin: f32,
    /// Content tokens.
    pub tokens: u32,
}

impl Confidence {
    /// The signals of a choice: `probabilities` over the options, `index` chosen.
    pub fn of_choice(probabilities: &[f64], index: usize) -> Confidence {
        let chosen = probabilities.get(index).copied().unwrap_or(0.0);
        let runner_up = probabilities.iter().enumerate().filter(|&(i, _)| i != index).map(|(_, &p)| p).fold(0.0, f64::max);
        let entropy: f64 = probabilities.iter().filter(|&&p| p > 0.0).map(|&p| -p * p.ln()).sum();
        let logprob = chosen.max(1e-30).ln() as f32;
        Confidence {
            score: chosen as f32,
            first_tokens_score: chosen as f32,
            mean_logprob: logprob,
            min_logprob: logprob,
            mean_entropy: entropy as f32,
            tokens: 1,
            answer_probability: Some(chosen as f32),
            answer_margin: Some((chosen - runner_up) as f32),
            answer_entropy: Some(entropy as f32),
            content: None,
            probe: None,
        }
    }
}

/// Whether a token's text carries content (a letter or a digit).
pub fn is_content(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// Accumulates the signals token by token.
#[derive(Debug, Clone)]
pub struct ConfidenceTracker {
    options: ConfidenceOptions,
    logprobs: Vec<f32>,
    entropy_sum: f64,
    score: f32,
    first: Option<f32>,
    /// (log-probability, entropy, top-2 margin) of each content token.
    content: Vec<(f32, f32, f32)>,
}

impl ConfidenceTracker {
    /// A tracker with these thresholds and windows.
    pub fn new(options: ConfidenceOptions) -> Self {
        ConfidenceTracker { options, logprobs: Vec::new(), entropy_sum: 0.0, score: 1.0, first: None, content: Vec::new() }
    }

    /// Records the token chosen from `logits` (`content`: whether its text
    /// is content, see [`is_content`]); returns true when the answer has just
    /// become unconfident (score below the threshold).
    pub fn push(&mut self, logits: &[f32], token: usize, content: bool) -> bool {
        let (logprob, entropy) = logprob_and_entropy(logits, token);
        if content {
            self.content.push((logprob, entropy, top2_margin(logits)));
        }
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
            answer_probability: None,
            answer_margin: None,
            answer_entropy: None,
            content: self.content_signals(),
            probe: None,
        })
    }

    fn content_signals(&self) -> Option<ContentSignals> {
        if self.content.is_empty() {
            return None;
        }
        let mut lp: Vec<f32> = self.content.iter().map(|c| c.0).collect();
        lp.sort_by(f32::total_cmp);
        let at = |q: f32| lp[((lp.len() - 1) as f32 * q).round() as usize];
        let n = self.content.len() as f32;
        Some(ContentSignals {
            logprob_p10: at(0.1),
            logprob_median: at(0.5),
            min_logprob: lp[0],
            mean_entropy: self.content.iter().map(|c| c.1).sum::<f32>() / n,
            mean_margin: self.content.iter().map(|c| c.2).sum::<f32>() / n,
            tokens: self.content.len() as u32,
        })
    }
}

/// The gap between the two largest probabilities of softmax(logits).
pub fn top2_margin(logits: &[f32]) -> f32 {
    let (mut first, mut second) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &l in logits {
        if l > first {
            second = first;
            first = l;
        } else if l > second {
            second = l;
        }
    }
    if !second.is_finite() {
        return 1.0;
    }
    let z: f64 = logits.iter().map(|&l| f64::from(l - first).exp()).sum();
    ((1.0 - f64::from(second - first).exp()) / z) as f32
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
        assert!(!t.push(&sure, 0, true));
        assert!(!t.push(&sure, 0, true));
        let c = t.finish().unwrap();
        assert!(c.score > 0.99 && c.mean_entropy < 1e-3);
    }

    #[test]
    fn guessing_drops_below_the_threshold_within_the_first_window() {
        let mut t = ConfidenceTracker::new(ConfidenceOptions { threshold: 0.5, first_tokens: 2, window: 4 });
        assert!(!t.push(&[0.0, 0.0, 0.0, 0.0], 1, true), "undecided until the first window is full");
        assert!(t.push(&[0.0, 0.0, 0.0, 0.0], 1, true), "p = 0.25 < 0.5");
        assert!((t.finish().unwrap().first_tokens_score - 0.25).abs() < 1e-6);
    }

    #[test]
    fn content_signals_skip_formatting_tokens() {
        let mut t = ConfidenceTracker::new(ConfidenceOptions::default());
        t.push(&[0.0, 0.0, 0.0, 0.0], 0, false); // e.g. "**": a guess, but not content
        t.push(&[10.0, 0.0, 0.0, 0.0], 0, true);
        let c = t.finish().unwrap().content.unwrap();
        assert_eq!(c.tokens, 1);
        assert!(c.min_logprob > -0.01 && c.mean_margin > 0.99, "{c:?}");
        assert!(is_content(" Paris") && is_content("42") && !is_content("**\n") && !is_content(" ."));
        let choice = Confidence::of_choice(&[0.7, 0.2, 0.1], 0);
        assert_eq!(choice.answer_probability, Some(0.7));
        assert!((choice.answer_margin.unwrap() - 0.5).abs() < 1e-6);
    }

    #[test]
    fn thresholds_outside_zero_one_are_rejected() {
        let bad = ConfidenceOptions { threshold: 1.5, ..Default::default() };
        assert!(matches!(bad.validate(), Err(Error::InvalidOption { name: "confidence_threshold", .. })));
    }
}
