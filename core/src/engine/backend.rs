//! Choosing the compute backend at run time, safely.
//!
//! GPU drivers on phones are the top source of crashes and wrong output, so
//! the CPU is the default everywhere except Apple devices (Metal). When the
//! app asks for the GPU, the device is probed first: it must exist, have room
//! for the weights, and pass a kernel self-test against the CPU
//! ([`super::selftest`]). Any failure, and any failure to load the model on
//! the device, falls back to the CPU with the reason logged and reported in
//! [`BackendInfo`].

use llama_cpp_2::{list_llama_ggml_backend_devices, LlamaBackendDevice, LlamaBackendDeviceType};
use serde::{Deserialize, Serialize};

use super::cpu::CpuInfo;

/// Set to `fail` to make every GPU probe fail, to rehearse the CPU fallback
/// (QA builds, tests). Read at each probe.
pub const FORCE_PROBE_FAILURE_ENV: &str = "POCKETLM_GPU_PROBE";

/// Which backend the app asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendRequest {
    /// The platform's safe default: Metal on Apple devices (CPU on the iOS
    /// simulator), the CPU everywhere else.
    #[default]
    Auto,
    /// The CPU only.
    Cpu,
    /// The GPU if it passes the probe, otherwise the CPU (with the reason).
    Gpu,
}

impl BackendRequest {
    /// The stable lower-case name: `auto`, `cpu`, `gpu`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendRequest::Auto => "auto",
            BackendRequest::Cpu => "cpu",
            BackendRequest::Gpu => "gpu",
        }
    }

    /// Whether this request means the GPU on this platform.
    pub fn wants_gpu(self) -> bool {
        match self {
            BackendRequest::Gpu => true,
            BackendRequest::Cpu => false,
            BackendRequest::Auto => {
                cfg!(all(target_vendor = "apple", not(target_abi = "sim"), not(all(target_os = "ios", target_arch = "x86_64"))))
            }
        }
    }
}

impl std::str::FromStr for BackendRequest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(BackendRequest::Auto),
            "cpu" => Ok(BackendRequest::Cpu),
            "gpu" => Ok(BackendRequest::Gpu),
            other => Err(format!("unknown backend '{other}' (expected auto, cpu or gpu)")),
        }
    }
}

/// The backend a model runs on, and why. Field names are a stable JSON contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// What the app asked for.
    pub requested: BackendRequest,
    /// What runs the model: `cpu`, `vulkan` or `metal`.
    pub backend: String,
    /// The device, e.g. the CPU's model name or the GPU driver's device name.
    pub device: String,
    /// Layers offloaded to the GPU (0 on the CPU).
    pub gpu_layers: u32,
    /// Why a GPU request ended on the CPU, if it did.
    pub fallback_reason: Option<String>,
    /// The GPU self-test's largest relative difference from the CPU, if it ran.
    pub probe_max_diff: Option<f32>,
    /// How long the GPU probe took, in milliseconds (0 when none ran).
    pub probe_ms: f64,
    /// The CPU's features and the ones the kernels were built for.
    pub cpu: CpuInfo,
}

/// What [`choose`] decided, before the model is loaded.
pub(crate) struct Choice {
    /// The GPU device index to load onto, or `None` for the CPU.
    pub(crate) gpu: Option<usize>,
    /// What to report (updated if loading onto the GPU then fails).
    pub(crate) info: BackendInfo,
}

/// The devices ggml registered, GPUs first in ggml's order.
fn gpu_devices() -> Vec<LlamaBackendDevice> {
    list_llama_ggml_backend_devices()
        .into_iter()
        .filter(|d| matches!(d.device_type, LlamaBackendDeviceType::Gpu | LlamaBackendDeviceType::IntegratedGpu))
        .collect()
}

/// The CPU device's description (ggml reads the CPU's model name).
fn cpu_device_name() -> String {
    list_llama_ggml_backend_devices()
        .into_iter()
        .find(|d| d.device_type == LlamaBackendDeviceType::Cpu)
        .map_or_else(|| "CPU".to_string(), |d| d.description)
}

/// ggml's GPU backend registries, by registry name, and the name PocketLM
/// reports for each (ggml registers Metal as `MTL`).
const GPU_REGISTRIES: [(&str, &str); 8] = [
    ("Vulkan", "vulkan"),
    ("MTL", "metal"),
    ("CUDA", "cuda"),
    ("ROCm", "rocm"),
    ("SYCL", "sycl"),
    ("OpenCL", "opencl"),
    ("MUSA", "musa"),
    ("CANN", "cann"),
];

/// The name PocketLM reports for a ggml backend registry: `vulkan`, `metal`,
/// `cpu`, ... (lower case).
fn backend_name(registry: &str) -> String {
    GPU_REGISTRIES
        .iter()
        .find(|(reg, _)| reg.eq_ignore_ascii_case(registry))
        .map_or_else(|| registry.to_lowercase(), |(_, name)| (*name).to_string())
}

/// The GPU backends registered in this build's ggml (e.g. `vulkan`, `metal`),
/// whether or not a device is present. Read from ggml's registry rather than
/// cargo features: ggml enables Metal on Apple platforms by default. CPU-side
/// registries (BLAS, RPC) are not GPU backends and are left out.
pub fn compiled_gpu_backends() -> Vec<String> {
    if super::model::backend().is_err() {
        return Vec::new();
    }
    // SAFETY: the registry is initialised and indices stay below its count.
    (0..unsafe { llama_cpp_sys_2::ggml_backend_reg_count() })
        .filter_map(|i| unsafe {
            let name = llama_cpp_sys_2::ggml_backend_reg_name(llama_cpp_sys_2::ggml_backend_reg_get(i));
            (!name.is_null()).then(|| std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned())
        })
        .filter(|name| GPU_REGISTRIES.iter().any(|(reg, _)| reg.eq_ignore_ascii_case(name)))
        .map(|name| backend_name(&name))
        .collect()
}

/// Where [`Model::load`](super::model::Model::load) would run this model with these options,
/// without loading it: the same probe, the same fallback reasons. (A load
/// that then fails on the GPU also falls back; [`Model::backend`](super::model::Model::backend)
/// reports what actually ran.)
pub fn choose_backend(gguf: &crate::gguf::GgufFile, options: &super::model::ModelOptions) -> crate::error::Result<BackendInfo> {
    super::model::backend()?;
    Ok(choose(options.backend, options.gpu_layers, gguf).info)
}

/// Decides where the model in `gguf` runs. Never fails: every problem with
/// the GPU becomes a CPU choice with a reason. `gpu_layers: Some(0)` means the CPU.
pub(crate) fn choose(request: BackendRequest, gpu_layers: Option<u32>, gguf: &crate::gguf::GgufFile) -> Choice {
    // llama.cpp offloads the transformer blocks plus the output layer.
    let offloadable = gguf.arch_u64("block_count").map_or(u32::MAX, |n| n.saturating_add(1).min(u64::from(u32::MAX)) as u32);
    let weight_bytes = gguf.tensor_bytes();
    let cpu_choice = |info: BackendInfo| Choice { gpu: None, info };
    if !request.wants_gpu() || gpu_layers == Some(0) {
        return cpu_choice(BackendInfo::on_cpu(request));
    }
    let started = std::time::Instant::now();
    let ms = || started.elapsed().as_secs_f64() * 1000.0;
    let layers = gpu_layers.unwrap_or(u32::MAX).min(offloadable);
    // Device memory for the offloaded share of the weights.
    let offloaded_bytes = if offloadable == u32::MAX { weight_bytes } else { weight_bytes / u64::from(offloadable) * u64::from(layers) };
    match probe(offloaded_bytes) {
        Err(reason) => cpu_choice(BackendInfo { probe_ms: ms(), ..BackendInfo::on_cpu(request) }.fall_back_to_cpu(reason)),
        Ok((dev, diff)) => {
            log::info!("GPU {} ({}) passed the probe: max difference {:.4} %", dev.description, dev.backend, diff * 100.0);
            Choice {
                gpu: Some(dev.index),
                info: BackendInfo {
                    requested: request,
                    backend: backend_name(&dev.backend),
                    device: dev.description,
                    gpu_layers: layers,
                    fallback_reason: None,
                    probe_max_diff: Some(diff),
                    probe_ms: ms(),
                    cpu: CpuInfo::detect(),
                },
            }
        }
    }
}

impl BackendInfo {
    /// The CPU, as asked for (or as the platform default): no probe, no reason.
    fn on_cpu(requested: BackendRequest) -> BackendInfo {
        BackendInfo {
            requested,
            backend: "cpu".into(),
            device: cpu_device_name(),
            gpu_layers: 0,
            fallback_reason: None,
            probe_max_diff: None,
            probe_ms: 0.0,
            cpu: CpuInfo::detect(),
        }
    }

    /// The same choice moved to the CPU because of `reason`, which is logged
    /// at warn level and reported; the probe's figures are kept.
    pub(crate) fn fall_back_to_cpu(self, reason: String) -> BackendInfo {
        log::warn!("GPU not used, running on the CPU: {reason}");
        BackendInfo { backend: "cpu".into(), device: cpu_device_name(), gpu_layers: 0, fallback_reason: Some(reason), ..self }
    }
}

/// Probes the first GPU: present, room for the offloaded weights, kernels
/// agree with the CPU.
fn probe(weight_bytes: u64) -> Result<(LlamaBackendDevice, f32), String> {
    if std::env::var(FORCE_PROBE_FAILURE_ENV).is_ok_and(|v| v == "fail") {
        return Err(format!("the GPU probe was forced to fail ({FORCE_PROBE_FAILURE_ENV}=fail)"));
    }
    let Some(dev) = gpu_devices().into_iter().next() else {
        let compiled = compiled_gpu_backends();
        return Err(if compiled.is_empty() {
            "no GPU backend is available (none is compiled in: build with the vulkan or metal feature; or its driver failed to start)"
                .into()
        } else {
            format!("no usable {} device was found (no driver, or only a CPU-type device)", compiled.join("/"))
        });
    };
    // Room for the offloaded weights plus a tenth for the KV cache and activations.
    let needed = weight_bytes + weight_bytes / 10;
    if dev.memory_free > 0 && (dev.memory_free as u64) < needed {
        return Err(format!("{} has {} MiB free, the model needs about {} MiB", dev.description, dev.memory_free >> 20, needed >> 20));
    }
    // SAFETY: the index comes from ggml's own device list.
    let handle = unsafe { llama_cpp_sys_2::ggml_backend_dev_get(dev.index) };
    let diff = super::selftest::compare_with_cpu(handle).map_err(|e| format!("{} failed the kernel self-test: {e}", dev.description))?;
    Ok((dev, diff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_print() {
        for r in [BackendRequest::Auto, BackendRequest::Cpu, BackendRequest::Gpu] {
            assert_eq!(r.as_str().parse::<BackendRequest>().unwrap(), r);
        }
        assert!("cuda".parse::<BackendRequest>().unwrap_err().contains("auto, cpu or gpu"));
    }

    #[test]
    fn auto_means_the_cpu_off_apple() {
        assert_eq!(BackendRequest::Auto.wants_gpu(), cfg!(target_vendor = "apple"));
        assert!(!BackendRequest::Cpu.wants_gpu());
    }

    #[test]
    fn registry_names_become_backend_names() {
        assert_eq!(backend_name("MTL"), "metal");
        assert_eq!(backend_name("Vulkan"), "vulkan");
        assert_eq!(backend_name("CPU"), "cpu");
        assert_eq!(backend_name("BLAS"), "blas");
    }

    #[test]
    fn a_cpu_only_build_has_no_gpu_backend() {
        assert_eq!(compiled_gpu_backends().is_empty(), !cfg!(any(feature = "vulkan", feature = "metal", target_vendor = "apple")));
    }
}
