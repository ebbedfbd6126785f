//! LoRA adapter files (apps download them, like models): any bytes must be
//! a typed GGUF error or a checked verdict against the base model, never a
//! panic, and an accepted adapter must fit the base exactly as llama.cpp
//! needs (the check that keeps llama.cpp from aborting).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use pocketlm_base::gguf::{GgmlType, GgufFile, GgufValue, TensorInfo};
use pocketlm_base::lora::{adapter_bytes, check_adapter};

/// The tensor table of a Qwen2.5 0.5B-shaped base model (what the seeds,
/// scripts/lora_adapters.py's adapters, are made for).
fn base() -> GgufFile {
    let q5 = GgmlType::from_id(6).unwrap();
    let mut tensors = vec![
        TensorInfo { name: "token_embd.weight".into(), dims: vec![896, 151936], ggml_type: q5, offset: 0, size_bytes: 0 },
        TensorInfo { name: "output.weight".into(), dims: vec![896, 151936], ggml_type: q5, offset: 0, size_bytes: 0 },
    ];
    for il in 0..24 {
        for (m, dims) in [("attn_q", [896, 896]), ("attn_v", [896, 128]), ("ffn_down", [4864, 896])] {
            tensors.push(TensorInfo { name: format!("blk.{il}.{m}.weight"), dims: dims.to_vec(), ggml_type: q5, offset: 0, size_bytes: 0 });
        }
        tensors.push(TensorInfo { name: format!("blk.{il}.attn_norm.weight"), dims: vec![896], ggml_type: q5, offset: 0, size_bytes: 0 });
    }
    let metadata = BTreeMap::from([("general.architecture".to_string(), GgufValue::String("qwen2".into()))]);
    let value_types = BTreeMap::from([("general.architecture".to_string(), 8)]);
    GgufFile { version: 3, metadata, value_types, tensors, data_offset: 0, file_size: 0 }
}

fuzz_target!(|data: &[u8]| {
    let Ok(adapter) = GgufFile::parse(data) else { return };
    let base = base();
    if let Ok(shape) = check_adapter(&adapter, &base) {
        assert_eq!(adapter.value_types.get("general.type"), Some(&8));
        assert!(shape.rank >= 1 && u64::from(shape.rank) <= pocketlm_base::lora::MAX_RANK);
        assert!(!shape.targets.is_empty());
        for target in &shape.targets {
            let w = base.tensors.iter().find(|t| &t.name == target).expect("a target is a base tensor");
            let half = |s: &str| adapter.tensors.iter().find(|t| t.name == format!("{target}.{s}")).expect("both halves");
            let (a, b) = (half("lora_a"), half("lora_b"));
            if target == "token_embd.weight" {
                assert!(base.tensors.iter().any(|t| t.name == "output.weight"), "an embedding adapter needs a separate output matrix");
                assert_eq!((a.dims[0], a.dims[1], b.dims[1]), (b.dims[0], w.dims[1], w.dims[0]));
            } else {
                assert_eq!((a.dims[0], a.dims[1], b.dims[1]), (w.dims[0], b.dims[0], w.dims[1]));
            }
        }
        assert!(adapter_bytes(&shape, &base, 512) >= shape.tensor_bytes);
    }
});
