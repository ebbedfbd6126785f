//! Memory planning from the GGUF header alone: predict what a configuration
//! will cost before loading it, and choose one that fits a budget.
//!
//! Components of the predicted peak resident memory:
//! - **weights**: every tensor's bytes. llama.cpp's CPU backend re-lays out
//!   some tensor types for speed (Q4_0, Q4_K, IQ4_NL) into a second buffer; when
//!   the file is memory-mapped the original pages stay resident too, so
//!   [`WeightLoading::Auto`] reads such models into memory instead (one copy);
//! - **KV cache**: exact, as llama.cpp sizes it: context padded to 256 cells,
//!   K and V per layer, sliding-window layers (Gemma 3) holding only
//!   `window + batch` cells unless the full SWA cache is requested;
//! - **compute**: the activations a full prompt batch touches;
//! - **overhead**: runtime, tokenizer tables and small buffers.
//!
//! The compute and overhead terms are calibrated on Qwen2.5 0.5B and Gemma 3
//! 270M on x86-64 (see docs/memory.md); `pocketlm bench` prints predicted
//! next to measured peak RSS so the model can be checked on any device.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gguf::{GgufFile, GgufValue};
use crate::lora::AdapterShape;

/// Element type of the KV cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvType {
    /// 16-bit floats (llama.cpp's default, most accurate).
    #[default]
    F16,
    /// 8-bit blocks: about half of f16, near-lossless.
    Q8_0,
    /// 4-bit blocks: about a quarter of f16, some quality loss.
    Q4_0,
}

impl KvType {
    /// Bytes per cached element.
    pub fn bytes_per_element(self) -> f64 {
        match self {
            KvType::F16 => 2.0,
            KvType::Q8_0 => 34.0 / 32.0,
            KvType::Q4_0 => 18.0 / 32.0,
        }
    }

    /// The stable name (`f16`, `q8_0`, `q4_0`).
    pub fn as_str(self) -> &'static str {
        match self {
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
            KvType::Q4_0 => "q4_0",
        }
    }
}

impl std::str::FromStr for KvType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f16" => Ok(KvType::F16),
            "q8_0" => Ok(KvType::Q8_0),
            "q4_0" => Ok(KvType::Q4_0),
            other => Err(Error::InvalidOption { name: "kv_type", value: other.to_string(), expected: "one of f16, q8_0, q4_0".into() }),
        }
    }
}

/// How the weights become resident in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightLoading {
    /// `Read` when the CPU backend would repack tensors (a mapped file would
    /// then stay resident beside the repacked copy), otherwise `Mmap`.
    #[default]
    Auto,
    /// Map the file: the fastest load, and pages the OS can drop under pressure.
    Mmap,
    /// Read the file into memory: one copy of every weight, even when repacked.
    Read,
}

impl WeightLoading {
    /// The concrete mode (`Mmap` or `Read`) for `gguf` on the CPU backend.
    pub fn resolve(self, gguf: &GgufFile) -> WeightLoading {
        match self {
            WeightLoading::Auto if repacked_bytes(gguf) > 0 => WeightLoading::Read,
            WeightLoading::Auto => WeightLoading::Mmap,
            concrete => concrete,
        }
    }

    /// The stable name (`auto`, `mmap`, `read`).
    pub fn as_str(self) -> &'static str {
        match self {
            WeightLoading::Auto => "auto",
            WeightLoading::Mmap => "mmap",
            WeightLoading::Read => "read",
        }
    }
}

impl std::str::FromStr for WeightLoading {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(WeightLoading::Auto),
            "mmap" => Ok(WeightLoading::Mmap),
            "read" => Ok(WeightLoading::Read),
            other => Err(Error::InvalidOption { name: "weights", value: other.to_string(), expected: "one of auto, mmap, read".into() }),
        }
    }
}

/// One configuration to cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// Context length in tokens.
    pub context_length: u32,
    /// KV cache element type.
    pub kv_type: KvType,
    /// Prompt batch size (tokens evaluated per step).
    pub batch_size: u32,
    /// Keep the full context in sliding-window layers too (more memory, longer KV reuse).
    pub full_swa_cache: bool,
    /// How the weights are loaded (`Auto` is resolved against the model).
    pub weights: WeightLoading,
}

/// Predicted peak resident memory of one configuration, by component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryEstimate {
    /// The configuration.
    pub request: PlanRequest,
    /// Weights, including a mapped copy of repacked tensors when memory-mapped.
    pub weights_bytes: u64,
    /// KV cache.
    pub kv_bytes: u64,
    /// Activations of a full prompt batch.
    pub compute_bytes: u64,
    /// Runtime, tokenizer and small buffers.
    pub overhead_bytes: u64,
    /// LoRA adapters: their tensors and the activations they add to a batch
    /// (0 without adapters; see [`crate::lora::adapter_bytes`]).
    #[serde(default)]
    pub adapter_bytes: u64,
    /// A vision projector: its tensors and one image's encoding (0 without
    /// one; see [`crate::vision::projector_bytes`]).
    #[serde(default)]
    pub projector_bytes: u64,
    /// The sum: predicted peak resident memory.
    pub predicted_peak_bytes: u64,
}

/// A configuration chosen for a budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryPlan {
    /// Whether it fits (always true when returned by [`fit_budget`]).
    pub fits: bool,
    /// The budget in bytes.
    pub budget_bytes: u64,
    /// Context length chosen.
    pub ctx: u32,
    /// KV cache type chosen.
    pub kv_type: KvType,
    /// Batch size chosen.
    pub batch_size: u32,
    /// How to load the weights (`mmap` or `read`; never `auto`).
    pub weights: WeightLoading,
    /// Predicted peak resident memory.
    pub predicted_peak_bytes: u64,
    /// The cost breakdown.
    pub estimate: MemoryEstimate,
}

/// Default budget: 4 GiB, the promise on the box.
pub const DEFAULT_BUDGET_BYTES: u64 = 4 << 30;
/// Fraction of the budget kept free as a safety margin.
pub const SAFETY_MARGIN: f64 = 0.05;
/// Smallest context the planner will choose.
pub const MIN_CONTEXT: u32 = 512;

/// Shapes the planner needs, read from the GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
struct Shapes {
    n_layer: u64,
    n_embd: u64,
    n_head: u64,
    n_ff: u64,
    n_vocab: u64,
    /// KV heads per layer.
    n_head_kv: Vec<u64>,
    head_dim_k: u64,
    head_dim_v: u64,
    /// Sliding window (0 = none) and which layers use it.
    n_swa: u64,
    swa_layers: Vec<bool>,
    n_ctx_train: u64,
}

/// Largest values the planner accepts from a file's metadata: llama.cpp's own
/// `LLAMA_MAX_LAYERS`, and shapes far beyond any released model. Anything
/// larger is corruption (or an attack), never a model to size.
pub mod limits {
    /// Transformer layers (llama.cpp's `LLAMA_MAX_LAYERS`).
    pub const MAX_LAYERS: u64 = 512;
    /// Embedding (hidden) width.
    pub const MAX_EMBEDDING: u64 = 1 << 17;
    /// Attention heads (query or key/value) per layer.
    pub const MAX_HEADS: u64 = 1 << 12;
    /// Key or value width of one head.
    pub const MAX_HEAD_DIM: u64 = 1 << 14;
    /// Feed-forward width.
    pub const MAX_FEED_FORWARD: u64 = 1 << 22;
    /// Vocabulary entries.
    pub const MAX_VOCAB: u64 = 1 << 23;
    /// Sliding-window length and trained context length.
    pub const MAX_CONTEXT: u64 = 1 << 32;
    /// Largest predicted peak the planner reports (1 PiB); more means the
    /// header is nonsense.
    pub const MAX_PEAK_BYTES: u64 = 1 << 50;
}

/// A model's shapes as its Hugging Face `config.json` declares them (names
/// in brackets): what the planner needs to cost a model before its file
/// exists, as catalog entries carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelShape {
    /// llama.cpp's architecture name (`llama`, `gemma3`, `qwen2`, `qwen3`, `phi3`).
    pub architecture: String,
    /// Transformer layers (`num_hidden_layers`).
    pub layers: u64,
    /// Hidden width (`hidden_size`).
    pub embedding: u64,
    /// Query heads (`num_attention_heads`).
    pub heads: u64,
    /// Key/value heads (`num_key_value_heads`).
    pub kv_heads: u64,
    /// Width of one head (`head_dim`, else `hidden_size / num_attention_heads`).
    pub head_dim: u64,
    /// Feed-forward width (`intermediate_size`).
    pub feed_forward: u64,
    /// Rows of the embedding matrix (`vocab_size`).
    pub vocab: u64,
    /// Trained context length (`max_position_embeddings`).
    pub context_length: u64,
    /// Sliding-window length (`sliding_window`, Gemma 3); 0 for none.
    #[serde(default)]
    pub sliding_window: u64,
    /// The file has no separate output matrix: it reuses the embedding matrix
    /// (`tie_word_embeddings`; false when the GGUF carries `output.weight`
    /// anyway, as Qwen's own Qwen2.5 files do).
    pub tied_embeddings: bool,
}

impl ModelShape {
    /// The shapes of the model in `gguf` (its first layer's KV heads when they vary).
    pub fn from_gguf(gguf: &GgufFile) -> Result<ModelShape> {
        let s = shapes(gguf)?;
        Ok(ModelShape {
            architecture: gguf.architecture().unwrap_or_default().to_string(),
            layers: s.n_layer,
            embedding: s.n_embd,
            heads: s.n_head,
            kv_heads: s.n_head_kv.first().copied().unwrap_or(s.n_head),
            head_dim: s.head_dim_k,
            feed_forward: s.n_ff,
            vocab: s.n_vocab,
            context_length: s.n_ctx_train,
            sliding_window: s.n_swa,
            tied_embeddings: !gguf.tensors.iter().any(|t| t.name == "output.weight"),
        })
    }

    /// Checks every value against the planner's [`limits`], as a header's
    /// would be: a catalog entry is input too.
    pub fn validate(&self) -> Result<()> {
        self.shapes().map(|_| ())
    }

    fn shapes(&self) -> Result<Shapes> {
        use limits::*;
        let name = &self.architecture;
        let bad = |field: &str, value: u64, min: u64, max: u64| {
            corrupt(format!("shape {field} = {value} of a {name:?} model is outside {min}..={max}"))
        };
        let check = |field: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(value)
            } else {
                Err(bad(field, value, min, max))
            }
        };
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(corrupt(format!("shape architecture {name:?} is not an architecture name")));
        }
        let n_layer = check("layers", self.layers, 1, MAX_LAYERS)?;
        let n_head = check("heads", self.heads, 1, MAX_HEADS)?;
        let n_swa = check("sliding_window", self.sliding_window, 0, MAX_CONTEXT)?;
        Ok(Shapes {
            n_layer,
            n_embd: check("embedding", self.embedding, 1, MAX_EMBEDDING)?,
            n_head,
            n_ff: check("feed_forward", self.feed_forward, 1, MAX_FEED_FORWARD)?,
            n_vocab: check("vocab", self.vocab, 1, MAX_VOCAB)?,
            n_head_kv: vec![check("kv_heads", self.kv_heads, 1, n_head)?; n_layer as usize],
            head_dim_k: check("head_dim", self.head_dim, 1, MAX_HEAD_DIM)?,
            head_dim_v: self.head_dim,
            n_swa,
            swa_layers: swa_layers(name, n_layer, n_swa),
            n_ctx_train: check("context_length", self.context_length, 1, MAX_CONTEXT)?,
        })
    }
}

fn corrupt(detail: String) -> Error {
    Error::ModelCorrupt { path: Default::default(), detail }
}

fn shapes(gguf: &GgufFile) -> Result<Shapes> {
    use limits::*;
    let arch = gguf.architecture().unwrap_or_default().to_string();
    // A present value must be an integer within (1..=max); a missing optional
    // one takes its default.
    let bounded = |suffix: &str, value: Option<u64>, min: u64, max: u64| -> Result<u64> {
        match value {
            Some(v) if (min..=max).contains(&v) => Ok(v),
            Some(v) => Err(corrupt(format!("metadata {arch}.{suffix} = {v} is outside {min}..={max}; the file is corrupt"))),
            None => Err(corrupt(format!("metadata {arch}.{suffix} is missing; the planner cannot size this model"))),
        }
    };
    let optional = |suffix: &str, min: u64, max: u64, default: u64| -> Result<u64> {
        match gguf.get(&format!("{arch}.{suffix}")) {
            None => Ok(default),
            Some(v) => bounded(suffix, Some(v.as_u64().unwrap_or(u64::MAX)), min, max),
        }
    };
    let n_layer = bounded("block_count", gguf.arch_u64("block_count"), 1, MAX_LAYERS)?;
    let n_embd = bounded("embedding_length", gguf.arch_u64("embedding_length"), 1, MAX_EMBEDDING)?;
    let n_head = bounded("attention.head_count", gguf.arch_u64("attention.head_count").map(|h| h.max(1)), 1, MAX_HEADS)?;
    let n_ff = optional("feed_forward_length", 0, MAX_FEED_FORWARD, 4 * n_embd)?;
    let head_kv_key = format!("{arch}.attention.head_count_kv");
    let head_kv = |v: &GgufValue| -> Result<u64> {
        match v.as_u64() {
            Some(h) if h <= MAX_HEADS => Ok(h),
            _ => Err(corrupt(format!("metadata {head_kv_key} holds {v:?}, not a head count up to {MAX_HEADS}"))),
        }
    };
    let n_head_kv = match gguf.get(&head_kv_key) {
        Some(GgufValue::Array { values, .. }) if values.len() as u64 == n_layer => {
            values.iter().map(head_kv).collect::<Result<Vec<_>>>()?
        }
        Some(GgufValue::Array { len, .. }) => {
            return Err(corrupt(format!("metadata {head_kv_key} has {len} entries for {n_layer} layers")))
        }
        Some(v) => vec![head_kv(v)?; n_layer as usize],
        None => vec![n_head; n_layer as usize],
    };
    let head_dim_k = optional("attention.key_length", 1, MAX_HEAD_DIM, (n_embd / n_head).max(1))?;
    let head_dim_v = optional("attention.value_length", 1, MAX_HEAD_DIM, head_dim_k)?;
    let n_swa = optional("attention.sliding_window", 0, MAX_CONTEXT, 0)?;
    let swa_layers = swa_layers(&arch, n_layer, n_swa);
    let n_vocab = match gguf.get("tokenizer.ggml.tokens") {
        Some(GgufValue::Array { len, .. }) => bounded("(tokenizer.ggml.tokens)", Some(*len), 1, MAX_VOCAB)?,
        _ => optional("vocab_size", 1, MAX_VOCAB, 32_000)?,
    };
    Ok(Shapes {
        n_layer,
        n_embd,
        n_head,
        n_ff,
        n_vocab,
        n_head_kv,
        head_dim_k,
        head_dim_v,
        n_swa,
        swa_layers,
        n_ctx_train: optional("context_length", 0, MAX_CONTEXT, 0)?,
    })
}

/// Which layers use the sliding window, in llama.cpp's layouts: Gemma 2
/// alternates, Gemma 3 uses the window on 5 of every 6 layers.
fn swa_layers(arch: &str, n_layer: u64, n_swa: u64) -> Vec<bool> {
    let period = match arch {
        "gemma2" => 2,
        "gemma3" => 6,
        _ => 0,
    };
    (0..n_layer).map(|il| n_swa > 0 && period > 0 && il % period < period - 1).collect()
}

fn pad256(n: u64) -> u64 {
    n.div_ceil(256) * 256
}

/// Tensor types the CPU backend repacks into a second, anonymous copy.
fn is_repacked(type_name: &str) -> bool {
    matches!(type_name, "Q4_0" | "Q4_K" | "IQ4_NL")
}

/// Bytes of the tensors the CPU backend repacks.
fn repacked_bytes(gguf: &GgufFile) -> u64 {
    gguf.tensors.iter().filter(|t| is_repacked(t.ggml_type.name)).fold(0u64, |sum, t| sum.saturating_add(t.size_bytes))
}

/// Predicts the peak resident memory of `request` for the model in `gguf`.
pub fn estimate(gguf: &GgufFile, request: PlanRequest) -> Result<MemoryEstimate> {
    estimate_with_adapters(gguf, request, &[])
}

/// [`estimate`] with LoRA adapters loaded (each checked against `gguf` by
/// [`crate::lora::check_adapter`]).
pub fn estimate_with_adapters(gguf: &GgufFile, request: PlanRequest, adapters: &[AdapterShape]) -> Result<MemoryEstimate> {
    let request = PlanRequest { weights: request.weights.resolve(gguf), ..request };
    add_adapters(estimate_with(&shapes(gguf)?, weights_bytes(gguf, request.weights), request)?, gguf, adapters)
}

/// `e` plus what `adapters` add at its batch size.
fn add_adapters(mut e: MemoryEstimate, gguf: &GgufFile, adapters: &[AdapterShape]) -> Result<MemoryEstimate> {
    let overflow = || corrupt("the adapters imply an impossible memory size; an adapter file is corrupt".into());
    let batch = e.request.batch_size.min(e.request.context_length);
    e.adapter_bytes =
        adapters.iter().try_fold(0u64, |sum, a| sum.checked_add(crate::lora::adapter_bytes(a, gguf, batch))).ok_or_else(overflow)?;
    e.predicted_peak_bytes =
        e.predicted_peak_bytes.checked_add(e.adapter_bytes).filter(|&p| p <= limits::MAX_PEAK_BYTES).ok_or_else(overflow)?;
    Ok(e)
}

/// Weights as resident in memory: every tensor once, plus the mapped pages
/// of repacked tensors when the file is memory-mapped (`loading` already resolved).
fn weights_bytes(gguf: &GgufFile, loading: WeightLoading) -> u64 {
    match loading {
        WeightLoading::Mmap => gguf.tensor_bytes().saturating_add(repacked_bytes(gguf)),
        _ => gguf.tensor_bytes(),
    }
}

fn estimate_with(s: &Shapes, weights_bytes: u64, request: PlanRequest) -> Result<MemoryEstimate> {
    // Every value is bounded by `shapes`, and every product is checked: a
    // header that still overflows is refused, never wrapped into a plan that "fits".
    let overflow = || corrupt("the model's shapes imply an impossible memory size; the file is corrupt".into());
    let mul = |a: u64, b: u64| a.checked_mul(b).ok_or_else(overflow);
    let add = |a: u64, b: u64| a.checked_add(b).ok_or_else(overflow);

    let cells = pad256(u64::from(request.context_length));
    let ubatch = u64::from(request.batch_size.min(request.context_length).max(1));
    let swa_cells = if request.full_swa_cache { cells } else { cells.min(pad256(s.n_swa + ubatch)) };
    let mut kv_elems = 0u64;
    for (il, &heads) in s.n_head_kv.iter().enumerate() {
        let per_cell = mul(heads, s.head_dim_k + s.head_dim_v)?;
        kv_elems = add(kv_elems, mul(per_cell, if s.swa_layers[il] { swa_cells } else { cells })?)?;
    }
    let kv_bytes = (kv_elems as f64 * request.kv_type.bytes_per_element()).ceil() as u64;

    // Calibrated: a full batch touches about 2 FFN-sized and 12 attention-
    // sized f32 rows per token, plus one row of logits.
    let attn_width = s.n_embd.max(mul(s.n_head, s.head_dim_k)?);
    let row = add(mul(2, s.n_ff)?, mul(12, attn_width)?)?;
    let compute_bytes = add(mul(mul(ubatch, 4)?, row)?, mul(s.n_vocab, 8)?)?;
    let overhead_bytes = add(56 << 20, mul(s.n_vocab, 32)?)?;
    let predicted_peak_bytes = add(add(weights_bytes, kv_bytes)?, add(compute_bytes, overhead_bytes)?)?;
    if predicted_peak_bytes > limits::MAX_PEAK_BYTES {
        return Err(overflow());
    }
    Ok(MemoryEstimate {
        request,
        weights_bytes,
        kv_bytes,
        compute_bytes,
        overhead_bytes,
        adapter_bytes: 0,
        projector_bytes: 0,
        predicted_peak_bytes,
    })
}

/// Predicts the peak resident memory of an embedder (see `pocketlm::Embedder`)
/// on the model in `gguf` with batches of `batch_tokens` (its `max_tokens`):
/// the weights, a KV cache of `batch_tokens` cells unless the architecture
/// keeps none (BERT-family encoders), the
/// activations of a full batch, and llama.cpp's output buffer, which with
/// embeddings on holds a row of logits and a row of embedding for every
/// token of the batch.
pub fn estimate_embedding(gguf: &GgufFile, batch_tokens: u32, weights: WeightLoading) -> Result<MemoryEstimate> {
    let s = shapes(gguf)?;
    let weights = weights.resolve(gguf);
    let request = PlanRequest {
        context_length: batch_tokens.max(1),
        kv_type: KvType::F16,
        batch_size: batch_tokens.max(1),
        full_swa_cache: false,
        weights,
    };
    let mut e = estimate_with(&s, weights_bytes(gguf, weights), request)?;
    let overflow = || corrupt("the model's shapes imply an impossible memory size; the file is corrupt".into());
    if crate::arch::keeps_no_kv_cache(gguf.architecture().unwrap_or_default()) {
        e.kv_bytes = 0;
    }
    let outputs = (s.n_vocab + s.n_embd).checked_mul(u64::from(request.batch_size) * 4).ok_or_else(overflow)?;
    e.compute_bytes = e.compute_bytes.checked_add(outputs).ok_or_else(overflow)?;
    e.predicted_peak_bytes = [e.weights_bytes, e.kv_bytes, e.compute_bytes, e.overhead_bytes]
        .iter()
        .try_fold(0u64, |sum, &b| sum.checked_add(b))
        .filter(|&peak| peak <= limits::MAX_PEAK_BYTES)
        .ok_or_else(overflow)?;
    Ok(e)
}

/// The predicted peak `budget_bytes` may hold after the safety margin.
fn usable(budget_bytes: u64) -> u64 {
    (budget_bytes as f64 * (1.0 - SAFETY_MARGIN)) as u64
}

impl MemoryPlan {
    fn new(budget_bytes: u64, estimate: MemoryEstimate) -> MemoryPlan {
        let r = estimate.request;
        MemoryPlan {
            fits: estimate.predicted_peak_bytes <= usable(budget_bytes),
            budget_bytes,
            ctx: r.context_length,
            kv_type: r.kv_type,
            batch_size: r.batch_size,
            weights: r.weights,
            predicted_peak_bytes: estimate.predicted_peak_bytes,
            estimate,
        }
    }
}

/// Costs one configuration against a budget; `fits` says whether its
/// predicted peak stays within the budget minus the safety margin.
pub fn plan_at(gguf: &GgufFile, budget_bytes: u64, request: PlanRequest) -> Result<MemoryPlan> {
    plan_at_with_adapters(gguf, budget_bytes, request, &[])
}

/// [`plan_at`] with LoRA adapters loaded.
pub fn plan_at_with_adapters(gguf: &GgufFile, budget_bytes: u64, request: PlanRequest, adapters: &[AdapterShape]) -> Result<MemoryPlan> {
    Ok(MemoryPlan::new(budget_bytes, estimate_with_adapters(gguf, request, adapters)?))
}

/// Plans with a vision projector loaded too: `plan_for` is called with the
/// budget less `projector_bytes` (so the context chosen leaves room for
/// it), and its plan is returned against the whole budget with the
/// projector counted. An [`Error::InsufficientMemory`] names the whole need.
pub fn with_projector(budget_bytes: u64, projector_bytes: u64, plan_for: impl FnOnce(u64) -> Result<MemoryPlan>) -> Result<MemoryPlan> {
    let short = |needed: u64| Error::InsufficientMemory { needed_bytes: needed.saturating_add(projector_bytes), budget_bytes };
    if projector_bytes >= budget_bytes {
        return Err(short(0));
    }
    let plan = match plan_for(budget_bytes - projector_bytes) {
        Err(Error::InsufficientMemory { needed_bytes, .. }) => return Err(short(needed_bytes)),
        other => other?,
    };
    let mut estimate = plan.estimate;
    estimate.projector_bytes = projector_bytes;
    estimate.predicted_peak_bytes = estimate.predicted_peak_bytes.saturating_add(projector_bytes);
    Ok(MemoryPlan::new(budget_bytes, estimate))
}

/// The cheapest configuration [`fit_budget`] considers: a 512-token context
/// (or `max_context` if smaller), batch 128, and `kv_type` (default q4_0).
pub fn smallest_request(max_context: Option<u32>, kv_type: Option<KvType>) -> PlanRequest {
    PlanRequest {
        context_length: max_context.map_or(MIN_CONTEXT, |c| c.min(MIN_CONTEXT)),
        kv_type: kv_type.unwrap_or(KvType::Q4_0),
        batch_size: 128,
        full_swa_cache: false,
        weights: WeightLoading::Auto,
    }
}

/// Chooses the largest context (then, if needed, a quantised KV cache and a
/// smaller batch) whose predicted peak fits `budget_bytes` minus a safety
/// margin. `max_context` caps the context (default: the trained length).
/// Weights are loaded the [`WeightLoading::Auto`] way.
/// Fails with [`Error::InsufficientMemory`] saying what is needed.
pub fn fit_budget(gguf: &GgufFile, budget_bytes: u64, max_context: Option<u32>, kv_type: Option<KvType>) -> Result<MemoryPlan> {
    fit_budget_with_adapters(gguf, budget_bytes, max_context, kv_type, &[])
}

/// [`fit_budget`] with LoRA adapters loaded: their memory comes out of the
/// budget before the context is chosen.
pub fn fit_budget_with_adapters(
    gguf: &GgufFile,
    budget_bytes: u64,
    max_context: Option<u32>,
    kv_type: Option<KvType>,
    adapters: &[AdapterShape],
) -> Result<MemoryPlan> {
    let s = shapes(gguf)?;
    let loading = WeightLoading::Auto.resolve(gguf);
    let weights = weights_bytes(gguf, loading);
    let usable = usable(budget_bytes);
    let trained = if s.n_ctx_train > 0 { s.n_ctx_train.min(u64::from(u32::MAX)) as u32 } else { 4096 };
    let max_ctx = max_context.unwrap_or(trained).min(trained).max(MIN_CONTEXT.min(trained));
    let kv_types: &[KvType] = match &kv_type {
        Some(t) => std::slice::from_ref(t),
        None => &[KvType::F16, KvType::Q8_0, KvType::Q4_0],
    };
    for &kv in kv_types {
        for batch in [512u32, 256, 128] {
            let at = |ctx: u32| {
                let request = PlanRequest { context_length: ctx, kv_type: kv, batch_size: batch, full_swa_cache: false, weights: loading };
                add_adapters(estimate_with(&s, weights, request)?, gguf, adapters)
            };
            if at(MIN_CONTEXT.min(max_ctx))?.predicted_peak_bytes > usable {
                continue;
            }
            // Memory grows with the context: binary-search the largest that fits (multiples of 256).
            let (mut lo, mut hi) = (MIN_CONTEXT.min(max_ctx), max_ctx);
            while lo < hi {
                // In u64: near u32::MAX the next multiple of 256 does not fit a u32.
                let mid = (u64::from(lo) + u64::from(hi - lo).div_ceil(2)).next_multiple_of(256).min(u64::from(hi)) as u32;
                if mid <= lo {
                    break;
                }
                if at(mid)?.predicted_peak_bytes <= usable {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            return Ok(MemoryPlan::new(budget_bytes, at(lo)?));
        }
    }
    let smallest = PlanRequest { weights: loading, ..smallest_request(Some(max_ctx), kv_types.last().copied()) };
    let smallest = add_adapters(estimate_with(&s, weights, smallest)?, gguf, adapters)?;
    // The smallest budget whose usable part holds the smallest configuration.
    let mut needed_bytes = (smallest.predicted_peak_bytes as f64 / (1.0 - SAFETY_MARGIN)).ceil() as u64;
    // Float rounding can leave it a few bytes short (the peak is at most 1 PiB).
    while self::usable(needed_bytes) < smallest.predicted_peak_bytes {
        needed_bytes = needed_bytes.saturating_add(1);
    }
    Err(Error::InsufficientMemory { needed_bytes, budget_bytes })
}

/// Costs a model known only by its `shape` (a catalog entry, before any
/// download) holding `weights_bytes` of weights read into memory, at
/// `context_length` tokens: the first configuration that fits `budget_bytes`
/// (KV cache f16, q8_0 then q4_0; batch 512, 256 then 128), else the cheapest
/// one, with `fits` false. Fails only when even the cheapest is beyond the
/// planner's limits (an impossible shape or size).
pub fn plan_shape(shape: &ModelShape, weights_bytes: u64, budget_bytes: u64, context_length: u32) -> Result<MemoryPlan> {
    let s = shape.shapes()?;
    let mut cheapest = None;
    for kv_type in [KvType::F16, KvType::Q8_0, KvType::Q4_0] {
        for batch_size in [512u32, 256, 128] {
            let request = PlanRequest { context_length, kv_type, batch_size, full_swa_cache: false, weights: WeightLoading::Read };
            // A configuration beyond the planner's limits does not fit; a cheaper one may.
            let plan = match estimate_with(&s, weights_bytes, request) {
                Ok(e) => MemoryPlan::new(budget_bytes, e),
                Err(e) => {
                    cheapest = Some(Err(e));
                    continue;
                }
            };
            if plan.fits {
                return Ok(plan);
            }
            cheapest = Some(Ok(plan));
        }
    }
    cheapest.expect("at least one configuration is costed")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::gguf::{GgmlType, TensorInfo};

    fn header(context_length: u64) -> GgufFile {
        let mut metadata = BTreeMap::new();
        metadata.insert("general.architecture".to_string(), GgufValue::String("llama".into()));
        for (key, value) in [("block_count", 1), ("embedding_length", 64), ("attention.head_count", 1), ("context_length", context_length)]
        {
            metadata.insert(format!("llama.{key}"), GgufValue::UInt(value));
        }
        let tensor = TensorInfo { name: "t".into(), dims: vec![64], ggml_type: GgmlType::from_id(0).unwrap(), offset: 0, size_bytes: 256 };
        GgufFile { version: 3, metadata, value_types: BTreeMap::new(), tensors: vec![tensor], data_offset: 0, file_size: 1 << 20 }
    }

    /// Found by the `plan` fuzz target: a trained context near u32::MAX made
    /// the context search overflow while rounding to a multiple of 256.
    #[test]
    fn a_context_near_u32_max_is_searched_without_overflow() {
        let plan = fit_budget(&header(u64::from(u32::MAX)), u64::MAX / 4, None, None).unwrap();
        assert!(plan.fits && plan.ctx >= MIN_CONTEXT, "{plan:?}");
        let plan = fit_budget(&header(u64::from(u32::MAX) - 3), 8 << 30, Some(u32::MAX), Some(KvType::Q4_0)).unwrap();
        assert!(plan.fits, "{plan:?}");
    }
}
