//! Embeddings for on-device retrieval: texts in, one vector each out.
//!
//! ```no_run
//! use pocketlm::{EmbedOptions, Embedder, Model, ModelOptions, VectorIndex};
//!
//! let model = Model::load_for_embeddings("all-minilm-l6-v2-f16.gguf", &ModelOptions::default())?;
//! let mut embedder = Embedder::new(&model, EmbedOptions::default())?;
//! let mut index = VectorIndex::new(embedder.dimensions())?;
//! let chunks = ["Paris is the capital of France.", "Photosynthesis makes sugar from light."];
//! for (i, v) in embedder.embed(&chunks)?.vectors.iter().enumerate() {
//!     index.add(&i.to_string(), chunks[i], v)?;
//! }
//! let query = embedder.embed(&["Which city is France's capital?"])?.vectors.remove(0);
//! println!("{}", index.search(&query, 1)?[0].text);
//! # Ok::<(), pocketlm::Error>(())
//! ```
//!
//! An embedding model (BERT family: all-MiniLM, bge, e5, nomic-embed, …)
//! declares its pooling in its GGUF and is loaded with
//! [`Model::load_for_embeddings`]. A chat model declares none; it embeds
//! only when asked, with [`EmbedOptions::pooling`] set.

use crate::arch::{kind, ArchKind};
use crate::engine::{EmbedContext, Model, Pooling};
use crate::error::{Error, Result};

/// Longest text the embedder takes by default, in tokens (also capped by
/// the model's trained context).
pub const DEFAULT_EMBED_TOKENS: u32 = 512;

/// How an [`Embedder`] turns texts into vectors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EmbedOptions {
    /// How the token states of a text become one vector. `None` uses the
    /// pooling the model declares (every embedding model's GGUF does); a
    /// chat model declares none, so pass `Mean` or `Last` to embed with one.
    pub pooling: Option<Pooling>,
    /// Scale every vector to length 1, so cosine similarity is a dot
    /// product (sentence-transformers models are used this way).
    pub normalize: bool,
    /// Longest text, in tokens with the model's special tokens; `None`:
    /// the model's trained context, at most [`DEFAULT_EMBED_TOKENS`]. It
    /// also sizes the batch, so it sets the embedder's memory.
    pub max_tokens: Option<u32>,
    /// Cut a longer text to `max_tokens` instead of failing with
    /// [`Error::EmbeddingInputTooLong`] (what sentence-transformers does silently).
    pub truncate: bool,
    /// Inference threads; `None` uses [`crate::default_threads`].
    pub threads: Option<u32>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions { pooling: None, normalize: true, max_tokens: None, truncate: false, threads: None }
    }
}

/// The vectors of one [`Embedder::embed`] call.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// One vector per text, in the order given.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens evaluated, special tokens included (what an API bills).
    pub tokens: usize,
    /// Indices of the texts that were cut to `max_tokens` (only with `truncate`).
    pub truncated: Vec<usize>,
}

/// Computes embeddings with one model. Each embedder has its own llama.cpp
/// context; several can share one [`Model`].
pub struct Embedder {
    ctx: EmbedContext,
    pooling: Pooling,
    normalize: bool,
    truncate: bool,
    max_tokens: usize,
}

/// The pooling to use on `model`, or why it cannot embed with the one asked for.
fn pooling_for(model: &Model, asked: Option<Pooling>) -> Result<Pooling> {
    let info = model.info();
    let cannot = |reason: String| Error::CannotEmbed { path: model.path().display().to_string(), reason };
    match kind(&info.architecture) {
        ArchKind::Encoder | ArchKind::Decoder => {}
        other => {
            return Err(cannot(other.why_not_chat().unwrap_or("it has no text encoder").to_string()));
        }
    }
    let declared = model.gguf().arch_u64("pooling_type");
    match (asked, declared) {
        (Some(p), _) => Ok(p),
        (None, Some(value)) => Pooling::from_gguf(value).ok_or_else(|| {
            cannot(match value {
                4 => "it is a reranker (rank pooling): it scores query-document pairs, it does not embed texts".into(),
                0 => "it declares no pooling (per-token states only); pass a pooling (mean, cls or last)".into(),
                v => format!("it declares pooling type {v}, which this build does not know"),
            })
        }),
        (None, None) => Err(cannot("it is a chat model and declares no pooling; pass a pooling (mean or last) to embed with it".into())),
    }
}

impl Embedder {
    /// An embedder on `model`: checks that the model can embed with the
    /// pooling asked for (else [`Error::CannotEmbed`]) and creates its context.
    pub fn new(model: &Model, options: EmbedOptions) -> Result<Embedder> {
        let pooling = pooling_for(model, options.pooling)?;
        let trained = model.info().context_length_trained;
        let cap = if trained > 0 { trained.min(u64::from(u32::MAX)) as u32 } else { DEFAULT_EMBED_TOKENS };
        let max_tokens = options.max_tokens.unwrap_or(DEFAULT_EMBED_TOKENS.min(cap));
        if max_tokens < 2 || max_tokens > cap {
            return Err(Error::InvalidOption {
                name: "max_tokens",
                value: max_tokens.to_string(),
                expected: format!("must be between 2 and {cap}, the length this model was trained with"),
            });
        }
        let threads = options.threads.unwrap_or_else(crate::default_threads);
        if threads == 0 || threads > 256 {
            return Err(Error::InvalidOption { name: "threads", value: threads.to_string(), expected: "must be between 1 and 256".into() });
        }
        let ctx = EmbedContext::new(model, pooling, max_tokens, threads)?;
        Ok(Embedder { ctx, pooling, normalize: options.normalize, truncate: options.truncate, max_tokens: max_tokens as usize })
    }

    /// The width of the vectors (the model's embedding size).
    pub fn dimensions(&self) -> usize {
        self.ctx.width()
    }

    /// The pooling in use (asked for, or declared by the model).
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// The longest text it takes, in tokens.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Embeds `texts`, several to a batch where the model allows it. A text
    /// longer than `max_tokens` fails the whole call with
    /// [`Error::EmbeddingInputTooLong`] (naming it) unless `truncate` is on.
    pub fn embed<S: AsRef<str>>(&mut self, texts: &[S]) -> Result<Embeddings> {
        let mut truncated = Vec::new();
        let mut inputs = Vec::with_capacity(texts.len());
        for (index, text) in texts.iter().enumerate() {
            let mut tokens = self.ctx.tokenize(text.as_ref());
            if tokens.is_empty() {
                return Err(Error::InvalidOption {
                    name: "texts",
                    value: format!("text {index} (empty)"),
                    expected: "every text must have at least one token for this model".into(),
                });
            }
            if tokens.len() > self.max_tokens {
                if !self.truncate {
                    return Err(Error::EmbeddingInputTooLong { index, tokens: tokens.len(), limit: self.max_tokens });
                }
                self.ctx.truncate(&mut tokens, self.max_tokens);
                truncated.push(index);
            }
            inputs.push(tokens);
        }
        let mut vectors = Vec::with_capacity(inputs.len());
        for batch in batches(&inputs, self.max_tokens, self.ctx.sequences()) {
            vectors.extend(self.ctx.embed(batch)?);
        }
        if self.normalize {
            vectors.iter_mut().for_each(|v| normalize(v));
        }
        Ok(Embeddings { vectors, tokens: inputs.iter().map(Vec::len).sum(), truncated })
    }
}

/// Consecutive runs of at most `sequences` texts that fill a batch of
/// `batch_tokens` without going over.
fn batches<T>(texts: &[Vec<T>], batch_tokens: usize, sequences: usize) -> Vec<&[Vec<T>]> {
    let mut runs = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, text) in texts.iter().enumerate() {
        let full = used + text.len() > batch_tokens || i - start == sequences;
        if full && i > start {
            runs.push(&texts[start..i]);
            (start, used) = (i, 0);
        }
        used += text.len();
    }
    if start < texts.len() {
        runs.push(&texts[start..]);
    }
    runs
}

/// Scales `v` to length 1 (a zero vector stays zero).
fn normalize(v: &mut [f32]) {
    let norm = crate::vector_index::l2_norm(v);
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x = (f64::from(*x) / norm) as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fill_up_to_the_token_budget() {
        let texts: Vec<Vec<u8>> = [3, 4, 2, 6, 1].iter().map(|&n| vec![0; n]).collect();
        let lens = |runs: Vec<&[Vec<u8>]>| runs.iter().map(|r| r.len()).collect::<Vec<_>>();
        assert_eq!(lens(batches(&texts, 8, 64)), [2, 2, 1]);
        assert_eq!(lens(batches(&texts, 8, 1)), [1, 1, 1, 1, 1]);
        assert_eq!(lens(batches(&texts, 100, 64)), [5]);
        let many: Vec<Vec<u8>> = vec![vec![0]; 130];
        assert_eq!(lens(batches(&many, 1000, 64)), [64, 64, 2]);
        assert!(batches::<u8>(&[], 8, 64).is_empty());
    }

    #[test]
    fn normalize_gives_unit_length() {
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut zero = vec![0.0; 3];
        normalize(&mut zero);
        assert_eq!(zero, [0.0; 3]);
    }
}
