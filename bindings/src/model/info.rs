//! What a loaded model is, where it runs, and what the memory planner chose.

use crate::convert::{saturating_i32, saturating_i64};

/// What a model is.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ModelInfo {
    /// `general.name`, if set.
    pub name: Option<String>,
    /// Architecture, e.g. `qwen2`, `gemma3`, `llama`.
    pub architecture: String,
    /// Number of weights.
    pub parameter_count: i64,
    /// Quantisation, e.g. `Q4_K_M`.
    pub quantization: String,
    /// File size in bytes.
    pub file_size_bytes: i64,
    /// Context length the model was trained with.
    pub context_length_trained: i64,
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Whether the model has a chat template.
    pub has_chat_template: bool,
    /// `jinja`, `llama.cpp` or `plain`.
    pub prompt_format: String,
}

impl From<&pocketlm::ModelInfo> for ModelInfo {
    fn from(i: &pocketlm::ModelInfo) -> Self {
        ModelInfo {
            name: i.name.clone(),
            architecture: i.architecture.clone(),
            parameter_count: saturating_i64(i.parameter_count),
            quantization: i.quantization.clone(),
            file_size_bytes: saturating_i64(i.file_size_bytes),
            context_length_trained: saturating_i64(i.context_length_trained),
            vocab_size: saturating_i64(i.vocab_size),
            has_chat_template: i.has_chat_template,
            prompt_format: i.prompt_format.clone(),
        }
    }
}

/// Where a model runs, and why.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct BackendInfo {
    /// `cpu`, `vulkan` or `metal`.
    pub backend: String,
    /// The device: the CPU's model name or the GPU's.
    pub device: String,
    /// Layers on the GPU (0 on the CPU).
    pub gpu_layers: i32,
    /// Why a GPU request ended on the CPU, if it did.
    pub fallback_reason: Option<String>,
    /// The GPU self-test's largest relative difference from the CPU, if it ran.
    pub probe_max_diff: Option<f32>,
    /// Extensions the CPU kernels were built for, e.g. `neon`, `dotprod`, `fp16`.
    pub cpu_kernels: Vec<String>,
    /// Extensions this CPU has.
    pub cpu_features: Vec<String>,
}

impl From<&pocketlm::BackendInfo> for BackendInfo {
    fn from(b: &pocketlm::BackendInfo) -> Self {
        BackendInfo {
            backend: b.backend.clone(),
            device: b.device.clone(),
            gpu_layers: saturating_i32(b.gpu_layers),
            fallback_reason: b.fallback_reason.clone(),
            probe_max_diff: b.probe_max_diff,
            cpu_kernels: b.cpu.kernels.clone(),
            cpu_features: b.cpu.features.clone(),
        }
    }
}

/// What the memory planner chose for a budget.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MemoryPlan {
    /// Context length in tokens.
    pub context_length: i32,
    /// KV cache type: `f16`, `q8_0` or `q4_0`.
    pub kv_type: String,
    /// Prompt batch size.
    pub batch_size: i32,
    /// Predicted peak resident memory in bytes.
    pub predicted_peak_bytes: i64,
    /// The budget it was planned for, in bytes.
    pub budget_bytes: i64,
    /// How the weights are loaded: `mmap` or `read`.
    pub weight_loading: String,
}

impl From<&pocketlm::MemoryPlan> for MemoryPlan {
    fn from(p: &pocketlm::MemoryPlan) -> Self {
        MemoryPlan {
            context_length: saturating_i32(p.ctx),
            kv_type: p.kv_type.as_str().to_string(),
            batch_size: saturating_i32(p.batch_size),
            predicted_peak_bytes: saturating_i64(p.predicted_peak_bytes),
            budget_bytes: saturating_i64(p.budget_bytes),
            weight_loading: p.weights.as_str().to_string(),
        }
    }
}
