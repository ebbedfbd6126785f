//! The memory planner's arithmetic on the real models' headers, budget
//! fitting, and the refusal path (no weights are loaded here).

mod common;

use common::{model_path, GEMMA_FILE, QWEN_FILE};
use pocketlm::plan::{estimate, fit_budget, SAFETY_MARGIN};
use pocketlm::{inspect_file, Error, KvType, PlanRequest, WeightLoading};

fn request(context_length: u32, kv_type: KvType) -> PlanRequest {
    PlanRequest { context_length, kv_type, batch_size: 512, full_swa_cache: false, weights: WeightLoading::Auto }
}

#[test]
fn kv_cache_matches_llama_cpp_for_qwen() {
    let gguf = inspect_file(&model_path(QWEN_FILE)).unwrap();
    // 24 layers x 2 KV heads x (64 + 64) dims x 2 bytes = 12 KiB per token;
    // llama.cpp reports "KV buffer size = 12.00 MiB" at 1024 and 96.00 MiB at 8192.
    assert_eq!(estimate(&gguf, request(1024, KvType::F16)).unwrap().kv_bytes, 12 << 20);
    assert_eq!(estimate(&gguf, request(8192, KvType::F16)).unwrap().kv_bytes, 96 << 20);
    // q8_0 stores 34 bytes per 32 elements, q4_0 18.
    assert_eq!(estimate(&gguf, request(1024, KvType::Q8_0)).unwrap().kv_bytes, (12 << 20) * 34 / 64);
    assert_eq!(estimate(&gguf, request(1024, KvType::Q4_0)).unwrap().kv_bytes, (12 << 20) * 18 / 64);
    // Contexts are padded to 256 cells, as llama.cpp does.
    assert_eq!(estimate(&gguf, request(1000, KvType::F16)).unwrap().kv_bytes, 12 << 20);
}

#[test]
fn gemma3_sliding_window_layers_cache_only_their_window() {
    let gguf = inspect_file(&model_path(GEMMA_FILE)).unwrap();
    // 18 layers: 3 global, 15 with a 512-token window (5 of every 6).
    // 1 KV head x (256 + 256) dims x 2 bytes = 1 KiB per token per layer.
    let e = estimate(&gguf, request(8192, KvType::F16)).unwrap();
    let window_cells = 1024; // pad256(512 window + 512 batch)
    assert_eq!(e.kv_bytes, 3 * 8192 * 1024 + 15 * window_cells * 1024);
    let full = estimate(&gguf, PlanRequest { full_swa_cache: true, ..request(8192, KvType::F16) }).unwrap();
    assert_eq!(full.kv_bytes, 18 * 8192 * 1024);
    // A context shorter than the window is not inflated.
    assert_eq!(estimate(&gguf, request(512, KvType::F16)).unwrap().kv_bytes, 18 * 512 * 1024);
}

#[test]
fn mapped_weights_count_repacked_tensors_twice_and_auto_reads_them_once() {
    let gguf = inspect_file(&model_path(QWEN_FILE)).unwrap();
    let q4k: u64 = gguf.tensors.iter().filter(|t| t.ggml_type.name == "Q4_K").map(|t| t.size_bytes).sum();
    assert!(q4k > 0);
    let mapped = estimate(&gguf, PlanRequest { weights: WeightLoading::Mmap, ..request(1024, KvType::F16) }).unwrap();
    assert_eq!(mapped.weights_bytes, gguf.tensor_bytes() + q4k);
    // The CPU backend repacks Q4_K, so Auto reads the file instead of mapping it: one copy.
    assert_eq!(WeightLoading::Auto.resolve(&gguf), WeightLoading::Read);
    let auto = estimate(&gguf, request(1024, KvType::F16)).unwrap();
    assert_eq!(auto.request.weights, WeightLoading::Read);
    assert_eq!(auto.weights_bytes, gguf.tensor_bytes());
    assert_eq!(auto.predicted_peak_bytes, auto.weights_bytes + auto.kv_bytes + auto.compute_bytes + auto.overhead_bytes);
}

#[test]
fn budget_picks_the_largest_context_that_fits() {
    let gguf = inspect_file(&model_path(QWEN_FILE)).unwrap();
    let roomy = fit_budget(&gguf, 4 << 30, None, None).unwrap();
    assert!(roomy.fits);
    assert_eq!((roomy.ctx, roomy.kv_type), (32768, KvType::F16), "4 GiB holds the trained context");

    let budget = 700 << 20;
    let tight = fit_budget(&gguf, budget, None, None).unwrap();
    let usable = (budget as f64 * (1.0 - SAFETY_MARGIN)) as u64;
    assert!(tight.predicted_peak_bytes <= usable);
    assert!(tight.ctx >= 512 && tight.ctx < 32768);
    let bigger =
        estimate(&gguf, PlanRequest { context_length: tight.ctx + 256, batch_size: tight.batch_size, ..request(0, tight.kv_type) })
            .unwrap();
    assert!(bigger.predicted_peak_bytes > usable, "the chosen context is the largest that fits");

    let capped = fit_budget(&gguf, 4 << 30, Some(2048), None).unwrap();
    assert_eq!(capped.ctx, 2048);
    let quantised = fit_budget(&gguf, budget, None, Some(KvType::Q4_0)).unwrap();
    assert!(quantised.ctx > tight.ctx, "a q4_0 cache fits more context in the same budget");
}

#[test]
fn a_budget_that_cannot_fit_is_a_typed_error() {
    let gguf = inspect_file(&model_path(QWEN_FILE)).unwrap();
    let err = fit_budget(&gguf, 100 << 20, None, None).unwrap_err();
    match &err {
        Error::InsufficientMemory { needed_bytes, budget_bytes } => {
            assert_eq!(*budget_bytes, 100 << 20);
            assert!(*needed_bytes > 500 << 20, "{needed_bytes}");
        }
        other => panic!("expected InsufficientMemory, got {other}"),
    }
    assert!(err.to_string().contains("MiB"), "{err}");
}

#[test]
fn kv_type_names_parse() {
    assert_eq!("q8_0".parse::<KvType>().unwrap(), KvType::Q8_0);
    assert_eq!("F16".parse::<KvType>().unwrap(), KvType::F16);
    assert!(matches!("q5_1".parse::<KvType>(), Err(Error::InvalidOption { name: "kv_type", .. })));
}
