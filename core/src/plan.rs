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
            other => Err(Error::InvalidOption {
                name: "kv_type",
                value: other.to_string(),
                expected: "one of f16, q8_0, q4_0".into(),
            }),
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
            other => Err(Error::InvalidOption {
                name: "weights",
                value: other.to_string(),
                expected: "one of auto, mmap, read".into(),
            }),
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

fn shapes(gguf: &GgufFile) -> Result<Shapes> {
    let arch = gguf.architecture().unwrap_or_default().to_string();
    let need = |suffix: &str| {
        gguf.arch_u64(suffix).ok_or_else(|| Error::ModelCorrupt {
            path: Default::default(),
            detail: format!("metadata {arch}.{suffix} is missing; the planner cannot size this model"),
        })
    };
    let n_layer = need("block_count")?;
    let n_embd = need("embedding_length")?;
    let n_head = need("attention.head_count")?.max(1);
    let n_ff = gguf.arch_u64("feed_forward_length").unwrap_or(4 * n_embd);
    let n_head_kv = match gguf.get(&format!("{arch}.attention.head_count_kv")) {
        Some(GgufValue::Array { values, .. }) if values.len() as u64 == n_layer => {
            values.iter().map(|v| v.as_u64().unwrap_or(n_head)).collect()
        }
        Some(v) => vec![v.as_u64().unwrap_or(n_head); n_layer as usize],
        None => vec![n_head; n_layer as usize],
    };
    let head_dim_k = gguf.arch_u64("attention.key_length").unwrap_or(n_embd / n_head);
    let head_dim_v = gguf.arch_u64("attention.value_length").unwrap_or(head_dim_k);
    let n_swa = gguf.arch_u64("attention.sliding_window").unwrap_or(0);
    // llama.cpp's sliding-window layouts: Gemma 2 alternates, Gemma 3 uses the
    // window on 5 of every 6 layers.
    let period = match arch.as_str() {
        "gemma2" => 2,
        "gemma3" => 6,
        _ => 0,
    };
    let swa_layers = (0..n_layer).map(|il| n_swa > 0 && period > 0 && il % period < period - 1).collect();
    let n_vocab = match gguf.get("tokenizer.ggml.tokens") {
        Some(GgufValue::Array { len, .. }) => *len,
        _ => gguf.arch_u64("vocab_size").unwrap_or(32_000),
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
        n_ctx_train: gguf.arch_u64("context_length").unwrap_or(0),
    })
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
    gguf.tensors.iter().filter(|t| is_repacked(t.ggml_type.name)).map(|t| t.size_bytes).sum()
}

/// Predicts the peak resident memory of `request` for the model in `gguf`.
pub fn estimate(gguf: &GgufFile, request: PlanRequest) -> Result<MemoryEstimate> {
    let request = PlanRequest { weights: request.weights.resolve(gguf), ..request };
    Ok(estimate_with(&shapes(gguf)?, weights_bytes(gguf, request.weights), request))
}

/// Weights as resident in memory: every tensor once, plus the mapped pages
/// of repacked tensors when the file is memory-mapped (`loading` already resolved).
fn weights_bytes(gguf: &GgufFile, loading: WeightLoading) -> u64 {
    match loading {
        WeightLoading::Mmap => gguf.tensor_bytes() + repacked_bytes(gguf),
        _ => gguf.tensor_bytes(),
    }
}

fn estimate_with(s: &Shapes, weights_bytes: u64, request: PlanRequest) -> MemoryEstimate {

    let cells = pad256(u64::from(request.context_length));
    let ubatch = u64::from(request.batch_size.min(request.context_length).max(1));
    let swa_cells = if request.full_swa_cache { cells } else { cells.min(pad256(s.n_swa + ubatch)) };
    let per_cell_elems = |il: usize| s.n_head_kv[il] * (s.head_dim_k + s.head_dim_v);
    let kv_elems: u64 = (0..s.n_layer as usize)
        .map(|il| per_cell_elems(il) * if s.swa_layers[il] { swa_cells } else { cells })
        .sum();
    let kv_bytes = (kv_elems as f64 * request.kv_type.bytes_per_element()).ceil() as u64;

    // Calibrated: a full batch touches about 2 FFN-sized and 12 attention-
    // sized f32 rows per token, plus one row of logits.
    let attn_width = s.n_embd.max(s.n_head * s.head_dim_k);
    let compute_bytes = ubatch * 4 * (2 * s.n_ff + 12 * attn_width) + s.n_vocab * 4 * 2;
    let overhead_bytes = (56 << 20) + s.n_vocab * 32;
    MemoryEstimate {
        request,
        weights_bytes,
        kv_bytes,
        compute_bytes,
        overhead_bytes,
        predicted_peak_bytes: weights_bytes + kv_bytes + compute_bytes + overhead_bytes,
    }
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
    Ok(MemoryPlan::new(budget_bytes, estimate(gguf, request)?))
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
                estimate_with(&s, weights, request)
            };
            if at(MIN_CONTEXT.min(max_ctx)).predicted_peak_bytes > usable {
                continue;
            }
            // Memory grows with the context: binary-search the largest that fits (multiples of 256).
            let (mut lo, mut hi) = (MIN_CONTEXT.min(max_ctx), max_ctx);
            while lo < hi {
                let mid = (lo + (hi - lo).div_ceil(2)).next_multiple_of(256).min(hi);
                if mid <= lo {
                    break;
                }
                if at(mid).predicted_peak_bytes <= usable {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            return Ok(MemoryPlan::new(budget_bytes, at(lo)));
        }
    }
    let smallest = PlanRequest { weights: loading, ..smallest_request(Some(max_ctx), kv_types.last().copied()) };
    let smallest = estimate_with(&s, weights, smallest);
    // The smallest budget whose usable part holds the smallest configuration.
    let mut needed_bytes = (smallest.predicted_peak_bytes as f64 / (1.0 - SAFETY_MARGIN)).ceil() as u64;
    while self::usable(needed_bytes) < smallest.predicted_peak_bytes {
        needed_bytes += 1;
    }
    Err(Error::InsufficientMemory { needed_bytes, budget_bytes })
}
