//! The catalog's planning against the real test models: the Q4_K_M weight
//! estimate from a shape against the real files' tensors, and a plan from a
//! catalog shape against the plan from the real header.

mod common;

use common::{model_path, GEMMA_FILE, QWEN_FILE};
use pocketlm::catalog::q4_k_m_weight_bytes;
use pocketlm::plan::{estimate, plan_shape};
use pocketlm::{inspect_file, Catalog, DownloadRequest, KvType, ModelShape, PlanRequest, WeightLoading};

const QWEN_1_5B_FILE: &str = "qwen2.5-coder-1.5b-instruct-q4.gguf";

#[test]
fn the_weight_estimate_matches_the_real_q4_k_m_files() {
    for file in [QWEN_FILE, QWEN_1_5B_FILE, GEMMA_FILE] {
        let gguf = inspect_file(&model_path(file)).unwrap();
        let shape = ModelShape::from_gguf(&gguf).unwrap();
        let ratio = q4_k_m_weight_bytes(&shape) as f64 / gguf.tensor_bytes() as f64;
        // Qwen's files match exactly; Gemma 3 270M within a few hundred KiB.
        assert!((0.995..=1.005).contains(&ratio), "{file}: estimate / tensor bytes = {ratio}");
    }
}

#[test]
fn a_plan_from_catalog_shapes_equals_the_plan_from_the_real_header() {
    // Qwen2.5 1.5B Instruct's catalog shapes are the Coder 1.5B test model's.
    let gguf = inspect_file(&model_path(QWEN_1_5B_FILE)).unwrap();
    let entry = Catalog::builtin().get("qwen2.5-1.5b-instruct-q4_k_m").unwrap().clone();
    let mut from_file = ModelShape::from_gguf(&gguf).unwrap();
    from_file.architecture = entry.shape.architecture.clone();
    assert_eq!(from_file, entry.shape, "the catalog's shapes are the file's");
    for ctx in [2048, 8192, 32768] {
        let real = estimate(
            &gguf,
            PlanRequest { context_length: ctx, kv_type: KvType::F16, batch_size: 512, full_swa_cache: false, weights: WeightLoading::Read },
        )
        .unwrap();
        let planned = plan_shape(&entry.shape, gguf.tensor_bytes(), 64 << 30, ctx).unwrap();
        assert_eq!(planned.estimate.kv_bytes, real.kv_bytes, "{ctx}");
        assert_eq!(planned.predicted_peak_bytes, real.predicted_peak_bytes, "{ctx}");
    }
}

#[test]
fn every_builtin_entry_makes_a_valid_download_request() {
    for entry in Catalog::builtin().entries() {
        for file in std::iter::once(&entry.file).chain(&entry.projector) {
            let request = DownloadRequest::for_file(file);
            request.validate().unwrap_or_else(|e| panic!("{}: {e}", entry.id));
            assert!(request.url.starts_with("https://huggingface.co/") && request.url.ends_with(".gguf"), "{}", request.url);
            if let Some(rev) = &file.revision {
                assert!(request.url.contains(&format!("/resolve/{rev}/")), "{} is pinned to {rev}", request.url);
            }
        }
    }
}
