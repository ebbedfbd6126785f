//! Catalog documents an app brings (a file it downloaded, perhaps): any
//! bytes as JSON, and well-formed documents with arbitrary shapes, sizes and
//! strings, then recommendations for any budget and context. It must return
//! a typed error or a catalog whose recommendations hold together, never panic.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use pocketlm_base::catalog::{Catalog, RecommendRequest};

fn number(u: &mut Unstructured) -> arbitrary::Result<serde_json::Value> {
    Ok(match u.int_in_range(0..=3)? {
        0 => u64::arbitrary(u)?.into(),
        1 => u.int_in_range(0u64..=300_000)?.into(),
        2 => i64::arbitrary(u)?.into(),
        _ => serde_json::json!(f64::arbitrary(u)?),
    })
}

fn document(u: &mut Unstructured) -> arbitrary::Result<String> {
    let mut models = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        let mut shape = serde_json::Map::new();
        shape.insert("architecture".into(), (*u.choose(&["llama", "gemma3", "qwen2", "qwen3", "phi3", "", "x y"])?).into());
        for key in ["layers", "embedding", "heads", "kv_heads", "head_dim", "feed_forward", "vocab", "context_length", "sliding_window"] {
            if u.ratio(9, 10)? {
                shape.insert(key.into(), number(u)?);
            }
        }
        shape.insert("tied_embeddings".into(), bool::arbitrary(u)?.into());
        let file = |u: &mut Unstructured| -> arbitrary::Result<serde_json::Value> {
            Ok(serde_json::json!({
                "url": *u.choose(&["https://huggingface.co/a/b/resolve/main/m.gguf", "http://x", "ftp://x", ""])?,
                "file_name": String::arbitrary(u)?,
                "size": if bool::arbitrary(u)? { number(u)? } else { serde_json::Value::Null },
                "sha256": if bool::arbitrary(u)? { String::arbitrary(u)?.into() } else { serde_json::Value::Null },
            }))
        };
        let projector = if bool::arbitrary(u)? { file(u)? } else { serde_json::Value::Null };
        models.push(serde_json::json!({
            "id": *u.choose(&["a", "b-1.0", "Bad Id", ""])?, "name": String::arbitrary(u)?, "quantization": "Q4_K_M",
            "license": String::arbitrary(u)?, "file": file(u)?, "projector": projector,
            "shape": shape, "sources": [String::arbitrary(u)?],
        }));
    }
    Ok(serde_json::json!({ "version": 1, "models": models }).to_string())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(raw) = bool::arbitrary(&mut u) else { return };
    let json = if raw { String::from_utf8_lossy(u.peek_bytes(u.len()).unwrap_or_default()).into_owned() } else { document(&mut u).unwrap_or_default() };
    let Ok(catalog) = Catalog::from_json(&json) else { return };
    let request = RecommendRequest {
        budget_bytes: u64::arbitrary(&mut u).unwrap_or(4 << 30),
        context_length: u32::arbitrary(&mut u).unwrap_or(4096),
        with_projector: bool::arbitrary(&mut u).unwrap_or(false),
    };
    let recommendations = catalog.recommend(&request);
    if request.budget_bytes == 0 || request.context_length == 0 {
        assert!(recommendations.is_err());
    } else {
        // One entry the planner cannot cost never hides the others.
        let recommendations = recommendations.expect("a valid request is answered for every entry");
        assert_eq!(recommendations.len(), catalog.entries().len());
        for r in &recommendations {
            assert_eq!(r.fits, r.reason.is_none(), "{r:?}");
            if let Some(plan) = &r.plan {
                assert_eq!(plan.fits, r.fits, "{r:?}");
            }
            if r.fits {
                let peak = r.plan.as_ref().expect("a fitting model has a plan").predicted_peak_bytes;
                assert!(peak as f64 <= request.budget_bytes as f64 * 0.95 + 1.0, "{r:?}");
            }
        }
        let fitting = recommendations.iter().take_while(|r| r.fits).count();
        assert!(recommendations[fitting..].iter().all(|r| !r.fits), "the ones that fit come first");
    }
    assert_eq!(Catalog::from_json(&catalog.to_json()).as_ref(), Ok(&catalog), "a checked catalog round-trips");
});
