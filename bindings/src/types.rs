//! Plain data crossing the FFI: options, model info, messages, metrics.
//! Each record converts to or from its core counterpart.

/// How to load a model. Context length and threads become the defaults of
/// every conversation on it.
#[derive(Debug, Clone, PartialEq, uniffi::Record, Default)]
pub struct ModelConfig {
    /// Context window in tokens (default 4096, capped by the model's training).
    #[uniffi(default = None)]
    pub context_length: Option<u32>,
    /// Inference threads (default: the device's performance cores).
    #[uniffi(default = None)]
    pub threads: Option<u32>,
    /// Where to run (default, or `null`/`nil`: `Auto`, which is Metal on
    /// Apple devices and the CPU elsewhere). `Gpu` probes the device first
    /// and falls back to the CPU with a reason (see `PocketModel.backend()`).
    #[uniffi(default = None)]
    pub backend: Option<BackendRequest>,
    /// Layers to offload when the GPU is used (default: all).
    #[uniffi(default = None)]
    pub gpu_layers: Option<u32>,
    /// How the weights get into memory (default, or `null`/`nil`: `Auto`, one copy of every weight).
    #[uniffi(default = None)]
    pub weight_loading: Option<WeightLoading>,
    /// A memory budget in bytes (e.g. the device's available memory): the
    /// largest context, and if needed a quantised KV cache, that fits is
    /// chosen before loading; nothing fitting is an `InsufficientMemory` error.
    #[uniffi(default = None)]
    pub memory_budget_bytes: Option<u64>,
}

/// Which compute backend the app asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, uniffi::Enum)]
pub enum BackendRequest {
    /// Metal on Apple devices (CPU on the simulator), the CPU elsewhere.
    #[default]
    Auto,
    /// The CPU only.
    Cpu,
    /// The GPU if it passes the probe (device present, enough memory, a
    /// kernel self-test against the CPU), otherwise the CPU.
    Gpu,
}

impl From<BackendRequest> for pocketlm::BackendRequest {
    fn from(r: BackendRequest) -> Self {
        match r {
            BackendRequest::Auto => pocketlm::BackendRequest::Auto,
            BackendRequest::Cpu => pocketlm::BackendRequest::Cpu,
            BackendRequest::Gpu => pocketlm::BackendRequest::Gpu,
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
    pub gpu_layers: u32,
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
            gpu_layers: b.gpu_layers,
            fallback_reason: b.fallback_reason.clone(),
            probe_max_diff: b.probe_max_diff,
            cpu_kernels: b.cpu.kernels.clone(),
            cpu_features: b.cpu.features.clone(),
        }
    }
}

/// How a model's weights get into memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, uniffi::Enum)]
pub enum WeightLoading {
    /// Read into memory when the CPU backend repacks weights (a mapped file
    /// would then stay resident beside the repacked copy), otherwise map.
    #[default]
    Auto,
    /// Map the file: fastest load; pages the OS can drop under pressure.
    Mmap,
    /// Read the file into memory: one copy of every weight.
    Read,
}

impl From<WeightLoading> for pocketlm::WeightLoading {
    fn from(w: WeightLoading) -> Self {
        match w {
            WeightLoading::Auto => pocketlm::WeightLoading::Auto,
            WeightLoading::Mmap => pocketlm::WeightLoading::Mmap,
            WeightLoading::Read => pocketlm::WeightLoading::Read,
        }
    }
}

/// How the next token is chosen. `temperature = 0` is greedy (reproducible).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SamplingConfig {
    /// Softmax temperature, >= 0; 0 is greedy.
    #[uniffi(default = 0.8)]
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 disables.
    #[uniffi(default = 40)]
    pub top_k: u32,
    /// Nucleus sampling, in (0, 1].
    #[uniffi(default = 0.95)]
    pub top_p: f32,
    /// Minimum probability relative to the best token, in [0, 1].
    #[uniffi(default = 0.05)]
    pub min_p: f32,
    /// Repeat penalty, > 0; 1 disables.
    #[uniffi(default = 1.0)]
    pub repeat_penalty: f32,
    /// Seed for reproducible sampling; none picks one at random.
    #[uniffi(default = None)]
    pub seed: Option<u32>,
    /// Most tokens per answer, >= 1.
    #[uniffi(default = 512)]
    pub max_tokens: u32,
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
            top_k: p.top_k,
            top_p: p.top_p,
            min_p: p.min_p,
            repeat_penalty: p.repeat_penalty,
            seed: p.seed,
            max_tokens: p.max_tokens,
            stop: p.stop,
        }
    }
}

impl From<SamplingConfig> for pocketlm::SamplingParams {
    fn from(c: SamplingConfig) -> Self {
        pocketlm::SamplingParams {
            temperature: c.temperature,
            top_k: c.top_k,
            top_p: c.top_p,
            min_p: c.min_p,
            repeat_penalty: c.repeat_penalty,
            seed: c.seed,
            max_tokens: c.max_tokens,
            stop: c.stop,
            ..pocketlm::SamplingParams::default()
        }
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
    pub context_length: Option<u32>,
}

/// What a model is.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ModelInfo {
    /// `general.name`, if set.
    pub name: Option<String>,
    /// Architecture, e.g. `qwen2`, `gemma3`, `llama`.
    pub architecture: String,
    /// Number of weights.
    pub parameter_count: u64,
    /// Quantisation, e.g. `Q4_K_M`.
    pub quantization: String,
    /// File size in bytes.
    pub file_size_bytes: u64,
    /// Context length the model was trained with.
    pub context_length_trained: u64,
    /// Vocabulary size.
    pub vocab_size: u64,
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
            parameter_count: i.parameter_count,
            quantization: i.quantization.clone(),
            file_size_bytes: i.file_size_bytes,
            context_length_trained: i.context_length_trained,
            vocab_size: i.vocab_size,
            has_chat_template: i.has_chat_template,
            prompt_format: i.prompt_format.clone(),
        }
    }
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    /// System instructions.
    System,
    /// The app's user.
    User,
    /// The model.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

impl From<&pocketlm::Message> for ChatMessage {
    fn from(m: &pocketlm::Message) -> Self {
        let role = match m.role {
            pocketlm::Role::System => Role::System,
            pocketlm::Role::User => Role::User,
            pocketlm::Role::Assistant => Role::Assistant,
        };
        ChatMessage { role, content: m.content.clone() }
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum StopReason {
    /// End-of-generation token.
    Eos,
    /// A stop sequence.
    StopSequence,
    /// The token limit.
    MaxTokens,
    /// Cancelled by the caller.
    Cancelled,
    /// The context window filled up.
    ContextFull,
    /// The confidence score fell below the threshold.
    LowConfidence,
    /// The request's deadline passed.
    Deadline,
}

/// What an answer cost.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Metrics {
    /// Model load time, ms.
    pub load_ms: f64,
    /// Time to first token, ms.
    pub ttft_ms: f64,
    /// Prompt tokens reused from the KV cache.
    pub prompt_tokens_reused: u32,
    /// Prompt tokens evaluated.
    pub prompt_tokens_evaluated: u32,
    /// Tokens generated.
    pub generated_tokens: u32,
    /// Prompt evaluation speed, tokens/s.
    pub prefill_tokens_per_s: f64,
    /// Generation speed, tokens/s.
    pub decode_tokens_per_s: f64,
    /// Peak resident memory of the process, bytes.
    pub peak_rss_bytes: u64,
    /// Why generation stopped.
    pub stop_reason: StopReason,
    /// Wall time of the request, ms.
    pub total_ms: f64,
    /// What ran the model: `cpu`, `vulkan` or `metal`.
    pub backend: String,
    /// The device that ran it.
    pub device: String,
}

impl From<&pocketlm::Metrics> for Metrics {
    fn from(m: &pocketlm::Metrics) -> Self {
        let stop_reason = match m.stop_reason {
            pocketlm::StopReason::Eos => StopReason::Eos,
            pocketlm::StopReason::StopSequence => StopReason::StopSequence,
            pocketlm::StopReason::MaxTokens => StopReason::MaxTokens,
            pocketlm::StopReason::Cancelled => StopReason::Cancelled,
            pocketlm::StopReason::ContextFull => StopReason::ContextFull,
            pocketlm::StopReason::LowConfidence => StopReason::LowConfidence,
            pocketlm::StopReason::Deadline => StopReason::Deadline,
        };
        Metrics {
            load_ms: m.load_ms,
            ttft_ms: m.ttft_ms,
            prompt_tokens_reused: m.prompt_tokens_reused,
            prompt_tokens_evaluated: m.prompt_tokens_evaluated,
            generated_tokens: m.generated_tokens,
            prefill_tokens_per_s: m.prefill_tokens_per_s,
            decode_tokens_per_s: m.decode_tokens_per_s,
            peak_rss_bytes: m.peak_rss_bytes,
            stop_reason,
            total_ms: m.total_ms,
            backend: m.backend.clone(),
            device: m.device.clone(),
        }
    }
}

/// A finished answer.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Reply {
    /// The answer text.
    pub text: String,
    /// What it cost.
    pub metrics: Metrics,
}

impl From<pocketlm::Reply> for Reply {
    fn from(r: pocketlm::Reply) -> Self {
        Reply { metrics: (&r.metrics).into(), text: r.text }
    }
}

/// What the memory planner chose for a budget.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MemoryPlan {
    /// Context length in tokens.
    pub context_length: u32,
    /// KV cache type: `f16`, `q8_0` or `q4_0`.
    pub kv_type: String,
    /// Prompt batch size.
    pub batch_size: u32,
    /// Predicted peak resident memory in bytes.
    pub predicted_peak_bytes: u64,
    /// The budget it was planned for, in bytes.
    pub budget_bytes: u64,
    /// How the weights are loaded: `mmap` or `read`.
    pub weight_loading: String,
}

impl From<&pocketlm::MemoryPlan> for MemoryPlan {
    fn from(p: &pocketlm::MemoryPlan) -> Self {
        MemoryPlan {
            context_length: p.ctx,
            kv_type: p.kv_type.as_str().to_string(),
            batch_size: p.batch_size,
            predicted_peak_bytes: p.predicted_peak_bytes,
            budget_bytes: p.budget_bytes,
            weight_loading: p.weights.as_str().to_string(),
        }
    }
}
