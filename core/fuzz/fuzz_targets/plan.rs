//! The memory planner on any header the reader accepts: real bytes parsed by
//! the reader, and headers built directly from arbitrary metadata values for
//! the keys the planner reads (the shapes a hostile file could claim). It must
//! return a typed error or a plan whose numbers add up, never panic or wrap.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use pocketlm_base::gguf::{GgmlType, GgufFile, GgufValue, TensorInfo};
use pocketlm_base::plan::{self, KvType, PlanRequest, WeightLoading};

const KEYS: &[&str] = &[
    "block_count",
    "embedding_length",
    "attention.head_count",
    "attention.head_count_kv",
    "feed_forward_length",
    "attention.key_length",
    "attention.value_length",
    "attention.sliding_window",
    "context_length",
    "vocab_size",
];

fn value(u: &mut Unstructured) -> arbitrary::Result<GgufValue> {
    Ok(match u.int_in_range(0..=5)? {
        0 => GgufValue::UInt(u64::arbitrary(u)?),
        1 => GgufValue::UInt(u.int_in_range(0..=4096)?),
        2 => GgufValue::Int(i64::arbitrary(u)?),
        3 => GgufValue::Float(f64::arbitrary(u)?),
        4 => GgufValue::String(String::arbitrary(u)?),
        _ => {
            let len = u.int_in_range(0..=600)?;
            let values = (0..len.min(64)).map(|_| u.int_in_range(0..=64).map(GgufValue::UInt)).collect::<Result<_, _>>()?;
            GgufValue::Array { len: if bool::arbitrary(u)? { len } else { u64::arbitrary(u)? }, values }
        }
    })
}

fn header(u: &mut Unstructured) -> arbitrary::Result<GgufFile> {
    let arch = *u.choose(&["llama", "qwen2", "gemma3", "gemma2", "phi3", ""])?;
    let mut metadata = BTreeMap::new();
    metadata.insert("general.architecture".to_string(), GgufValue::String(arch.to_string()));
    for key in KEYS {
        if bool::arbitrary(u)? {
            metadata.insert(format!("{arch}.{key}"), value(u)?);
        }
    }
    if bool::arbitrary(u)? {
        metadata.insert("tokenizer.ggml.tokens".into(), GgufValue::Array { len: u64::arbitrary(u)?, values: vec![] });
    }
    let mut tensors = Vec::new();
    for i in 0..u.int_in_range(0..=8)? {
        let ggml_type = GgmlType::from_id(*u.choose(&[0u32, 1, 2, 12, 14, 20])?).unwrap();
        tensors.push(TensorInfo {
            name: format!("t{i}"),
            dims: vec![u.int_in_range(1..=1 << 20)?],
            ggml_type,
            offset: 0,
            size_bytes: u64::arbitrary(u)?,
        });
    }
    Ok(GgufFile { version: 3, metadata, value_types: BTreeMap::new(), tensors, data_offset: 0, file_size: u64::arbitrary(u)? })
}

fn check(file: &GgufFile, u: &mut Unstructured) -> arbitrary::Result<()> {
    let request = PlanRequest {
        context_length: u32::arbitrary(u)?,
        kv_type: *u.choose(&[KvType::F16, KvType::Q8_0, KvType::Q4_0])?,
        batch_size: u32::arbitrary(u)?,
        full_swa_cache: bool::arbitrary(u)?,
        weights: *u.choose(&[WeightLoading::Auto, WeightLoading::Mmap, WeightLoading::Read])?,
    };
    if let Ok(e) = plan::estimate(file, request) {
        let sum = e.weights_bytes as u128 + e.kv_bytes as u128 + e.compute_bytes as u128 + e.overhead_bytes as u128;
        assert_eq!(sum, e.predicted_peak_bytes as u128, "{e:?}");
    }
    let budget = u64::arbitrary(u)?;
    let max_context = Option::<u32>::arbitrary(u)?;
    if let Ok(p) = plan::fit_budget(file, budget, max_context, None) {
        assert!(p.fits && p.predicted_peak_bytes <= budget, "{p:?}");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(raw) = bool::arbitrary(&mut u) else { return };
    if raw {
        // Bytes the reader accepts, planned as they are.
        let bytes = u.peek_bytes(u.len()).unwrap_or_default().to_vec();
        if let Ok(file) = GgufFile::parse(&bytes) {
            let _ = check(&file, &mut Unstructured::new(&bytes));
        }
    } else if let Ok(file) = header(&mut u) {
        let _ = check(&file, &mut u);
    }
});
