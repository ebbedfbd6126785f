//! The llama.cpp sampler chain built from [`SamplingParams`].

use llama_cpp_2::sampling::LlamaSampler;

use super::model::Model;
use super::Token;
use crate::sampling::{random_seed, SamplingParams};

/// A sampler chain for one answer (penalties, top-k, top-p, min-p,
/// temperature, draw), bound to a model's vocabulary size.
pub(crate) struct Sampler(LlamaSampler);

impl Sampler {
    /// Builds the chain with `constraint` (see [`super::constraint::sampler`])
    /// first, so every later step only sees tokens the constraint allows.
    pub(crate) fn constrained(params: &SamplingParams, model: &Model, constraint: Option<LlamaSampler>) -> Sampler {
        let n_vocab = model.inner.llama.n_vocab();
        let mut chain: Vec<LlamaSampler> = constraint.into_iter().collect();
        if params.repeat_penalty != 1.0 {
            chain.push(LlamaSampler::penalties(n_vocab, params.repeat_last_n as i32, params.repeat_penalty, 0.0, 0.0));
        }
        if params.temperature == 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            if params.top_k > 0 {
                chain.push(LlamaSampler::top_k(params.top_k as i32));
            }
            chain.push(LlamaSampler::top_p(params.top_p, 1));
            chain.push(LlamaSampler::min_p(params.min_p, 1));
            chain.push(LlamaSampler::temp(params.temperature));
            chain.push(LlamaSampler::dist(params.seed.unwrap_or_else(random_seed)));
        }
        Sampler(LlamaSampler::chain_simple(chain))
    }

    /// Moves the chain (and its constraint) past `tokens` the model already
    /// wrote, as if they had been sampled.
    pub(crate) fn accept(&mut self, tokens: &[Token]) {
        for &token in tokens {
            self.0.accept(token);
        }
    }

    /// Draws the next token from `ctx`'s logits at `index`.
    pub(crate) fn sample(&mut self, ctx: &llama_cpp_2::context::LlamaContext<'_>, index: i32) -> Token {
        self.0.sample(ctx, index)
    }
}
