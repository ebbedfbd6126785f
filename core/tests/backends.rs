//! Compute backends: the same greedy answer on every backend and CPU, the
//! CPU-kernel guard, and the GPU probe's fallback to the CPU.
//!
//! These run in every build: the host's `cargo test` (x86-64 CPU), the
//! aarch64 builds under qemu (`scripts/test-arm64.sh`) and the Vulkan build
//! on Mesa's lavapipe (`scripts/test-vulkan.sh`). The scripts steer them with:
//! - `POCKETLM_PARITY_OUT`: write this run's greedy answer (JSON) there;
//! - `POCKETLM_PARITY_REF`: a file written by another build; the answer must
//!   match it token for token;
//! - `POCKETLM_TEST_BACKEND`: `cpu` (default) or `gpu` for the parity run;
//! - `POCKETLM_EXPECT_MISSING`: the CPU extensions the kernels need but this
//!   (emulated) CPU lacks, comma-separated; empty means none.

mod common;

use std::sync::Mutex;

use common::{greedy, model_path, QWEN_FILE};
use pocketlm::{BackendRequest, Conversation, ConversationOptions, CpuInfo, Error, Model, ModelOptions};

/// Loads and GPU probes run one at a time (the probe test sets an environment variable).
static SERIAL: Mutex<()> = Mutex::new(());

const PROMPT: &str = "In one sentence: what is the capital of France, and which river flows through it?";
const TOKENS: u32 = 12;

fn load(backend: BackendRequest) -> Model {
    Model::load(model_path(QWEN_FILE), &ModelOptions { backend, ..ModelOptions::default() }).expect("qwen loads")
}

/// The greedy answer to the fixed prompt, and its tokens.
fn greedy_answer(model: &Model) -> (String, Vec<i32>) {
    let options = ConversationOptions { context_length: Some(256), threads: Some(2), sampling: greedy(TOKENS), ..Default::default() };
    let reply = Conversation::new(model, options).unwrap().ask(PROMPT).unwrap();
    let tokens = model.tokenize(&reply.text);
    (reply.text, tokens)
}

/// These tests load a model, which a CPU without this build's kernels must
/// refuse: on such a CPU they fail (never pass by doing nothing); run only
/// `loading_refuses_kernels_this_cpu_cannot_run` there.
fn require_kernels() {
    let missing = CpuInfo::detect().missing();
    assert!(
        missing.is_empty(),
        "this CPU lacks {missing:?} for this build's kernels: only loading_refuses_kernels_this_cpu_cannot_run applies here"
    );
}

fn requested_backend() -> BackendRequest {
    std::env::var("POCKETLM_TEST_BACKEND").ok().map_or(BackendRequest::Cpu, |b| b.parse().unwrap())
}

#[test]
fn the_greedy_answer_matches_the_reference_build_token_for_token() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    require_kernels();
    let model = load(requested_backend());
    let (text, tokens) = greedy_answer(&model);
    let b = model.backend();
    eprintln!("{} on {} (kernels {}): {text:?} {tokens:?}", b.backend, b.device, b.cpu.kernels.join("+"));
    assert!(text.contains("Paris"), "answer: {text:?}");
    let record = serde_json::json!({
        "text": text, "tokens": tokens, "backend": b.backend, "device": b.device,
        "arch": b.cpu.arch, "kernels": b.cpu.kernels,
    });
    if let Some(out) = std::env::var_os("POCKETLM_PARITY_OUT") {
        std::fs::write(out, record.to_string()).unwrap();
    }
    if let Some(reference) = std::env::var_os("POCKETLM_PARITY_REF") {
        let want: serde_json::Value = serde_json::from_slice(&std::fs::read(reference).unwrap()).unwrap();
        assert_eq!(
            record["tokens"], want["tokens"],
            "this build ({} {}) answered {text:?}, the reference ({} {}) answered {}",
            b.cpu.arch, b.backend, want["arch"], want["backend"], want["text"]
        );
    }
}

#[test]
fn loading_refuses_kernels_this_cpu_cannot_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let cpu = CpuInfo::detect();
    eprintln!("cpu {}: features {:?}, kernels {:?}, best Arm build {}", cpu.arch, cpu.features, cpu.kernels, cpu.arm_variant());
    if let Ok(expected) = std::env::var("POCKETLM_EXPECT_MISSING") {
        assert_eq!(cpu.missing().join(","), expected, "{cpu:?}");
    }
    if cpu.missing().is_empty() {
        cpu.check().unwrap();
        return; // loading works: every other test here loads a model
    }
    let e = Model::load(model_path(QWEN_FILE), &ModelOptions { backend: BackendRequest::Cpu, ..ModelOptions::default() })
        .expect_err("kernels this CPU cannot run must not start");
    assert_eq!(e, Error::UnsupportedCpu { missing: cpu.missing(), kernels: cpu.kernels.join("+") });
    assert!(e.to_string().contains("armv8-a build"), "{e}");
}

#[test]
fn cpu_requests_run_on_the_cpu_and_say_so() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    require_kernels();
    let model = load(BackendRequest::Cpu);
    let b = model.backend();
    assert_eq!((b.backend.as_str(), b.gpu_layers, b.fallback_reason.as_deref()), ("cpu", 0, None));
    assert!(!b.device.is_empty());
    let reply = Conversation::new(&model, ConversationOptions { context_length: Some(256), sampling: greedy(2), ..Default::default() })
        .unwrap()
        .ask(PROMPT)
        .unwrap();
    assert_eq!((reply.metrics.backend.as_str(), reply.metrics.device.as_str()), ("cpu", b.device.as_str()));
}

#[test]
fn a_failed_gpu_probe_falls_back_to_the_cpu_with_the_reason() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    require_kernels();
    // Without a GPU backend the probe fails on its own; with one, force it.
    let forced = !pocketlm::compiled_gpu_backends().is_empty();
    if forced {
        std::env::set_var(pocketlm::FORCE_PROBE_FAILURE_ENV, "fail");
    }
    let loaded = Model::load(model_path(QWEN_FILE), &ModelOptions { backend: BackendRequest::Gpu, ..ModelOptions::default() });
    std::env::remove_var(pocketlm::FORCE_PROBE_FAILURE_ENV);
    let model = loaded.expect("a failed probe is not an error");
    let b = model.backend();
    assert_eq!((b.backend.as_str(), b.gpu_layers, b.requested), ("cpu", 0, BackendRequest::Gpu));
    let reason = b.fallback_reason.as_deref().expect("the fallback says why");
    let expected = if forced { pocketlm::FORCE_PROBE_FAILURE_ENV } else { "no GPU backend" };
    assert!(reason.contains(expected), "{reason}");
    let (text, _) = greedy_answer(&model);
    assert!(text.contains("Paris"), "the CPU fallback still answers: {text:?}");
}

/// On a Vulkan build (lavapipe here) the GPU passes the probe and takes
/// every layer. (Its answer is compared with the CPU build's by the parity
/// test above, run with `POCKETLM_TEST_BACKEND=gpu`.)
#[cfg(feature = "vulkan")]
#[test]
fn vulkan_passes_the_probe_and_takes_every_layer() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let gpu = load(BackendRequest::Gpu);
    let b = gpu.backend();
    assert_eq!(b.backend, "vulkan", "fell back: {:?}", b.fallback_reason);
    assert_eq!(b.gpu_layers, 25, "Qwen2.5 0.5B: 24 blocks and the output layer");
    assert!(!b.device.is_empty() && b.fallback_reason.is_none());
    let diff = b.probe_max_diff.expect("the probe ran");
    assert!(diff < 0.02, "self-test difference {diff}");
    eprintln!("vulkan device {:?}, self-test max difference {:.4} % in {:.0} ms", b.device, diff * 100.0, b.probe_ms);
}
