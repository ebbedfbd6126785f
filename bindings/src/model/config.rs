//! How to load a model: context, threads, backend, weights, memory budget.

/// How to load a model. Context length and threads become the defaults of
/// every conversation on it.
#[derive(Debug, Clone, PartialEq, uniffi::Record, Default)]
pub struct ModelConfig {
    /// Context window in tokens (default 4096, capped by the model's training).
    #[uniffi(default = None)]
    pub context_length: Option<i32>,
    /// Inference threads (default: the device's performance cores).
    #[uniffi(default = None)]
    pub threads: Option<i32>,
    /// Where to run (default, or `null`/`nil`: `Auto`, which is Metal on
    /// Apple devices and the CPU elsewhere). `Gpu` probes the device first
    /// and falls back to the CPU with a reason (see `PocketModel.backend()`).
    #[uniffi(default = None)]
    pub backend: Option<BackendRequest>,
    /// Layers to offload when the GPU is used (default: all).
    #[uniffi(default = None)]
    pub gpu_layers: Option<i32>,
    /// How the weights get into memory (default, or `null`/`nil`: `Auto`, one copy of every weight).
    #[uniffi(default = None)]
    pub weight_loading: Option<WeightLoading>,
    /// A memory budget in bytes (e.g. the device's available memory): the
    /// largest context, and if needed a quantised KV cache, that fits is
    /// chosen before loading; nothing fitting is an `InsufficientMemory` error.
    #[uniffi(default = None)]
    pub memory_budget_bytes: Option<i64>,
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
