//! One llama.cpp context that computes pooled embeddings.
//!
//! Encoder models (BERT family) keep no KV cache, so several texts share one
//! batch as separate sequences and the whole batch goes through in one
//! pass: llama.cpp requires an encoder batch to fit one micro-batch, and
//! aborts the process otherwise, so [`EmbedContext::embed`] checks the sizes
//! first. Decoder models (a chat model asked for embeddings) run one text
//! per batch and have their cache cleared after each.

use std::num::NonZeroU32;

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;

use super::model::Model;
use super::Token;
use crate::arch::ArchKind;
use crate::error::{Error, Result};

/// How the per-token states of a text become one vector (llama.cpp's
/// pooling types that yield an embedding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The mean over every token (sentence-transformers' default).
    Mean,
    /// The first token's state (BERT's `[CLS]`).
    Cls,
    /// The last token's state (decoder embedding models such as Qwen3-Embedding).
    Last,
}

impl Pooling {
    /// The GGUF `{arch}.pooling_type` value, if it names a pooling that embeds.
    pub(crate) fn from_gguf(value: u64) -> Option<Pooling> {
        match value {
            1 => Some(Pooling::Mean),
            2 => Some(Pooling::Cls),
            3 => Some(Pooling::Last),
            _ => None,
        }
    }

    /// The name used in options and output (`mean`, `cls`, `last`).
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Last => "last",
        }
    }

    fn llama(self) -> LlamaPoolingType {
        match self {
            Pooling::Mean => LlamaPoolingType::Mean,
            Pooling::Cls => LlamaPoolingType::Cls,
            Pooling::Last => LlamaPoolingType::Last,
        }
    }
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            "last" => Ok(Pooling::Last),
            other => Err(Error::InvalidOption { name: "pooling", value: other.into(), expected: "one of mean, cls, last".into() }),
        }
    }
}

/// Texts an encoder batch may hold at once.
const MAX_EMBED_SEQUENCES: usize = 64;

/// A context with llama.cpp's embeddings switched on.
pub(crate) struct EmbedContext {
    // Declared before `model` so it is dropped first: it borrows the model.
    ctx: LlamaContext<'static>,
    model: Model,
    /// Whether the model is an encoder (several texts a batch, `encode`).
    encoder: bool,
    /// Texts one batch may hold (each is a sequence of its own).
    sequences: usize,
    /// Tokens one batch (and so one text) may hold.
    batch_tokens: usize,
    width: usize,
}

// SAFETY: as for `Session`: only one thread uses the context at a time,
// which `&mut self` on `embed` guarantees.
unsafe impl Send for EmbedContext {}

impl EmbedContext {
    /// A context for texts of up to `batch_tokens` tokens each.
    pub fn new(model: &Model, pooling: Pooling, batch_tokens: u32, threads: u32) -> Result<EmbedContext> {
        let encoder = crate::arch::kind(&model.info().architecture) == ArchKind::Encoder;
        // llama.cpp reserves an output row per sequence up front and asserts
        // that they fit the batch: never more sequences than batch tokens.
        let sequences = if encoder { MAX_EMBED_SEQUENCES.min(batch_tokens as usize) } else { 1 };
        let params = LlamaContextParams::default()
            .with_embeddings(true)
            .with_pooling_type(pooling.llama())
            .with_n_ctx(NonZeroU32::new(batch_tokens))
            .with_n_batch(batch_tokens)
            .with_n_ubatch(batch_tokens)
            .with_n_seq_max(sequences as u32)
            // One KV cache of `batch_tokens` cells shared by the batch's texts
            // (encoders that keep one, such as t5encoder), not one per sequence.
            .with_kv_unified(true)
            .with_n_threads(threads as i32)
            .with_n_threads_batch(threads as i32);
        // SAFETY: this value holds a clone of `model` (field `model`, declared
        // after `ctx`), so the weights outlive the context.
        let ctx = unsafe { model.new_context(params, batch_tokens)? };
        let width = model.inner.llama.n_embd_out().max(0) as usize;
        Ok(EmbedContext { ctx, model: model.clone(), encoder, sequences, batch_tokens: batch_tokens as usize, width })
    }

    /// The width of the vectors.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The model's tokens for `text` as an embedding input: its own special
    /// tokens added (BERT's `[CLS]` and `[SEP]`), typed control-token
    /// strings kept as plain text.
    pub fn tokenize(&self, text: &str) -> Vec<Token> {
        self.model.inner.llama.vocab().tokenize(text.as_bytes(), true, false)
    }

    /// Texts one batch may hold (1 for decoders: they run one by one).
    pub fn sequences(&self) -> usize {
        self.sequences
    }

    /// Cuts `tokens` to `max` tokens, keeping a closing control token (BERT's
    /// `[SEP]`, an EOS the model adds) at the end where there is one.
    pub fn truncate(&self, tokens: &mut Vec<Token>, max: usize) {
        if tokens.len() <= max || max == 0 {
            return;
        }
        let last = tokens[tokens.len() - 1];
        tokens.truncate(max);
        if self.model.inner.llama.vocab().is_control(last) {
            tokens[max - 1] = last;
        }
    }

    /// The pooled vector of each tokenized text, in order. The caller keeps
    /// every text within the batch size, and for encoders the texts of one
    /// call within one batch together (checked here again: llama.cpp would
    /// abort the process otherwise).
    pub fn embed(&mut self, texts: &[Vec<Token>]) -> Result<Vec<Vec<f32>>> {
        let total: usize = texts.iter().map(Vec::len).sum();
        if total > self.batch_tokens || texts.len() > self.sequences || texts.iter().any(Vec::is_empty) {
            return Err(Error::Inference(format!("{} texts of {total} tokens do not make one embedding batch", texts.len())));
        }
        let mut batch = LlamaBatch::new(total.max(1), 1);
        for (seq, tokens) in texts.iter().enumerate() {
            // Every token an output: pooling reads them all.
            batch.add_sequence(tokens, seq as i32, true).map_err(|e| Error::Inference(e.to_string()))?;
        }
        let result = if self.encoder {
            self.ctx.encode(&mut batch).map_err(|e| e.to_string())
        } else {
            self.ctx.decode(&mut batch).map_err(|e| e.to_string())
        };
        let vectors = result.map_err(|e| Error::Inference(format!("llama.cpp could not embed the batch: {e}"))).and_then(|()| {
            (0..texts.len())
                .map(|seq| {
                    self.ctx
                        .embeddings_seq_ith(seq as i32)
                        .map(<[f32]>::to_vec)
                        .map_err(|e| Error::Inference(format!("llama.cpp returned no embedding for text {seq}: {e}")))
                })
                .collect()
        });
        // Decoders keep what they evaluated in the KV cache: forget it, so
        // every text starts from an empty context.
        self.ctx.clear_kv_cache();
        vectors
    }
}
