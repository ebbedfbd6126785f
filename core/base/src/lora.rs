//! LoRA adapters: the GGUF layout llama.cpp's loader reads, checked against
//! the base model before llama.cpp sees the file.
//!
//! llama.cpp (`llama_adapter_lora_init`) asserts each metadata key's exact
//! type as it reads it, so a key of the wrong type aborts the process; it
//! never checks that an adapted tensor is a matrix, and an embedding adapter
//! whose two halves disagree on the rank loads, then aborts at the first
//! decode. [`check_adapter`] refuses all of those with a reason, and
//! everything llama.cpp would refuse itself (wrong architecture, missing
//! halves, shapes), so the caller gets one clear error either way.
//!
//! The layout (what llama.cpp's `convert_lora_to_gguf.py` writes):
//! - metadata: `general.type = "adapter"`, `adapter.type = "lora"`,
//!   `general.architecture` equal to the base model's, and optionally
//!   `adapter.lora.alpha` (FLOAT32);
//! - per adapted matrix `W` (ggml shape `[n_in, n_out]`), the tensors
//!   `W.lora_a` of ggml shape `[n_in, r]` and `W.lora_b` of `[r, n_out]`;
//!   for `token_embd.weight` the halves are swapped (`lora_a` `[r, n_vocab]`,
//!   `lora_b` `[r, n_embd]`).
//!
//! The change applied is `scale * alpha / r * B·A` (just `scale * B·A`
//! when `alpha` is 0 or absent), `scale` being the caller's.

use std::collections::BTreeMap;

use crate::gguf::{GgufFile, TensorInfo};

/// GGUF value type ids (`GGUF_TYPE_*`) the adapter keys must have.
const GGUF_FLOAT32: u32 = 6;
const GGUF_STRING: u32 = 8;

/// Element types convert_lora_to_gguf.py writes, which llama.cpp multiplies
/// F32 activations by (checked on the CPU backend here).
const HALF_TYPES: [&str; 4] = ["F32", "F16", "BF16", "Q8_0"];

/// Largest rank accepted: far above any published adapter (8 to 256), and a
/// bound on the extra activations an adapter adds to a batch.
pub const MAX_RANK: u64 = 4096;

/// What an adapter file is, once checked against its base model.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterShape {
    /// `general.name`, if the file has one.
    pub name: Option<String>,
    /// The base model's architecture, which the adapter names too.
    pub architecture: String,
    /// `adapter.lora.alpha`; 0 when absent (then no `alpha / r` factor).
    pub alpha: f32,
    /// The largest rank among the adapted matrices.
    pub rank: u32,
    /// The base tensors it adapts, sorted.
    pub targets: Vec<String>,
    /// Bytes of its `lora_a` and `lora_b` tensors (what loading it adds).
    pub tensor_bytes: u64,
}

/// Checks that `adapter` is a LoRA adapter llama.cpp will load onto the model
/// in `base` and run without aborting. The error is a sentence for the user
/// (what is wrong, and what to do).
pub fn check_adapter(adapter: &GgufFile, base: &GgufFile) -> Result<AdapterShape, String> {
    let string_key = |key: &str| -> Result<Option<&str>, String> {
        match adapter.value_types.get(key) {
            None => Ok(None),
            Some(&GGUF_STRING) => Ok(adapter.get_str(key)),
            Some(&other) => Err(format!("its {key} is of GGUF type {other}, not a string; the file is malformed")),
        }
    };
    if adapter.architecture() == Some("controlvector") {
        return Err("it is a control vector, not a LoRA adapter; PocketLM does not apply control vectors".into());
    }
    match string_key("general.type")? {
        Some("adapter") => {}
        Some("model") | None if !adapter.tensors.iter().any(|t| is_half(&t.name)) => {
            return Err("it is a model, not a LoRA adapter (it has no lora_a/lora_b tensors); load it as a model".into())
        }
        Some(other) => return Err(format!("its general.type is \"{other}\", not \"adapter\"; it is not a LoRA adapter")),
        None => return Err("it has no general.type = \"adapter\"; it is not a LoRA adapter".into()),
    }
    match string_key("adapter.type")? {
        Some("lora") => {}
        Some(other) => return Err(format!("it is a \"{other}\" adapter; only LoRA adapters (adapter.type = \"lora\") are supported")),
        None => return Err("it has no adapter.type = \"lora\"; it is not a LoRA adapter".into()),
    }
    if adapter.metadata.contains_key("adapter.alora.invocation_tokens") {
        return Err("it is an activated LoRA (aLoRA), which PocketLM does not support; export a plain LoRA adapter".into());
    }
    let base_arch = base.architecture().unwrap_or_default();
    let architecture = string_key("general.architecture")?.unwrap_or_default();
    if architecture != base_arch {
        let named = if architecture.is_empty() { "no architecture" } else { architecture };
        return Err(format!("it was made for {named}, but the model is {base_arch}; use an adapter trained on this base model"));
    }
    let alpha = match adapter.value_types.get("adapter.lora.alpha") {
        None => 0.0,
        Some(&GGUF_FLOAT32) => adapter.metadata["adapter.lora.alpha"].as_f64().unwrap_or(f64::NAN) as f32,
        Some(&other) => return Err(format!("its adapter.lora.alpha is of GGUF type {other}, not FLOAT32; convert the adapter again")),
    };
    if !alpha.is_finite() {
        return Err("its adapter.lora.alpha is not a finite number; the file is malformed".into());
    }

    let mut pairs: BTreeMap<&str, (Option<&TensorInfo>, Option<&TensorInfo>)> = BTreeMap::new();
    for t in &adapter.tensors {
        if let Some(target) = t.name.strip_suffix(".lora_a") {
            let slot = &mut pairs.entry(target).or_default().0;
            if slot.replace(t).is_some() {
                return Err(format!("it holds {} twice; the file is malformed", t.name));
            }
        } else if let Some(target) = t.name.strip_suffix(".lora_b") {
            let slot = &mut pairs.entry(target).or_default().1;
            if slot.replace(t).is_some() {
                return Err(format!("it holds {} twice; the file is malformed", t.name));
            }
        } else if !t.name.ends_with("_norm.weight") {
            // llama.cpp skips norm tensors and refuses anything else.
            return Err(format!("its tensor {} is neither a lora_a nor a lora_b half", t.name));
        }
    }
    if pairs.is_empty() {
        return Err("it holds no lora_a/lora_b tensor pairs; it would change nothing".into());
    }
    let base_tensors: BTreeMap<&str, &TensorInfo> = base.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut rank = 0u64;
    let mut tensor_bytes = 0u64;
    for (&target, &(a, b)) in &pairs {
        let (Some(a), Some(b)) = (a, b) else {
            return Err(format!("the pair for {target} is missing its {} half", if a.is_none() { "lora_a" } else { "lora_b" }));
        };
        let Some(w) = base_tensors.get(target) else {
            return Err(format!("it adapts {target}, which the model does not have; use an adapter trained on this base model"));
        };
        // llama.cpp refuses LoRA on the FFN of NVFP4 weights with an assertion.
        if w.ggml_type.name == "NVFP4" {
            return Err(format!("it adapts {target}, which is NVFP4 in this model; llama.cpp cannot apply LoRA to NVFP4 weights"));
        }
        let (w_dims, a_dims, b_dims) = (matrix(&w.dims), matrix(&a.dims), matrix(&b.dims));
        let Some([w_in, w_out]) = w_dims else {
            return Err(format!("it adapts {target}, which is not a matrix in this model; LoRA adapts matrices only"));
        };
        let (Some([a0, a1]), Some([b0, b1])) = (a_dims, b_dims) else {
            return Err(format!("the halves for {target} are not matrices; the file is malformed"));
        };
        for half in [a, b] {
            if !HALF_TYPES.contains(&half.ggml_type.name) {
                return Err(format!("{} is {}; adapters must be F32, F16, BF16 or Q8_0", half.name, half.ggml_type.name));
            }
        }
        // The rank is the dimension the two halves share.
        let r = if target == "token_embd.weight" {
            // A model without output.weight reuses the embedding as its output
            // matrix under the same name, and llama.cpp would then multiply
            // the embedding pair as an output adapter and abort.
            if !base_tensors.contains_key("output.weight") {
                return Err(
                    "it adapts token_embd.weight, but this model reuses its embedding as its output matrix, where llama.cpp cannot apply an embedding adapter; export the adapter without the embedding".into(),
                );
            }
            if b1 != w_in || a1 != w_out || a0 != b0 {
                return Err(format!(
                    "the embedding halves are [{a0}, {a1}] and [{b0}, {b1}], which do not fit the model's [{w_in}, {w_out}]; use an adapter trained on this base model"
                ));
            }
            a0
        } else {
            if a0 != w_in || b1 != w_out {
                return Err(format!(
                    "{target} is [{w_in}, {w_out}] in the model, but the adapter's halves are [{a0}, {a1}] and [{b0}, {b1}]; use an adapter trained on this base model"
                ));
            }
            if a1 != b0 {
                return Err(format!("the halves for {target} disagree on the rank ({a1} and {b0}); the file is malformed"));
            }
            a1
        };
        if r == 0 || r > MAX_RANK {
            return Err(format!("the rank for {target} is {r}; it must be between 1 and {MAX_RANK}"));
        }
        rank = rank.max(r);
        tensor_bytes = tensor_bytes.saturating_add(a.size_bytes).saturating_add(b.size_bytes);
    }
    Ok(AdapterShape {
        name: string_key("general.name")?.map(str::to_owned),
        architecture: architecture.to_string(),
        alpha,
        rank: rank as u32,
        targets: pairs.keys().map(|t| t.to_string()).collect(),
        tensor_bytes,
    })
}

fn is_half(name: &str) -> bool {
    name.ends_with(".lora_a") || name.ends_with(".lora_b")
}

/// `dims` as a matrix `[ne0, ne1]`, ignoring trailing 1s; `None` otherwise.
fn matrix(dims: &[u64]) -> Option<[u64; 2]> {
    let end = dims.iter().rposition(|&d| d != 1).map_or(0, |i| i + 1);
    match dims[..end.max(2).min(dims.len())] {
        [ne0, ne1] => Some([ne0, ne1]),
        _ => None,
    }
}

/// The extra memory an adapter adds to a conversation with prompt batches
/// of `batch_tokens`: its tensors (llama.cpp reads them into memory, not
/// mapped) and, per batch token, one full-width product and its rank-`r`
/// intermediate (the graph allocator reuses the buffers of one adapted
/// product for the next). Calibrated with scripts/bench-adapters.sh (see
/// docs/adapters.md): a little above the measured growth of peak RSS.
pub fn adapter_bytes(shape: &AdapterShape, base: &GgufFile, batch_tokens: u32) -> u64 {
    let widest = shape
        .targets
        .iter()
        .filter_map(|t| base.tensors.iter().find(|w| &w.name == t))
        .filter_map(|w| {
            let [n_in, n_out] = matrix(&w.dims)?;
            // The embedding pair is a row lookup into n_embd-wide rows, not
            // a product as wide as the vocabulary.
            Some(if w.name == "token_embd.weight" { n_in } else { n_in.max(n_out) })
        })
        .max()
        .unwrap_or(0);
    let per_token = widest.saturating_add(u64::from(shape.rank)).saturating_mul(4);
    shape.tensor_bytes.saturating_add(per_token.saturating_mul(u64::from(batch_tokens.max(1))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::test_support::{file, tensor};
    use crate::gguf::GgufValue;

    fn s(v: &str) -> GgufValue {
        GgufValue::String(v.into())
    }

    fn base() -> GgufFile {
        file(
            &[("general.architecture", s("qwen2"), GGUF_STRING)],
            vec![
                tensor("token_embd.weight", &[64, 1000], 8),
                tensor("output.weight", &[64, 1000], 8),
                tensor("blk.0.attn_q.weight", &[64, 64], 8),
                tensor("blk.0.attn_v.weight", &[64, 16], 8),
                tensor("blk.0.attn_norm.weight", &[64], 0),
            ],
        )
    }

    fn meta(arch: &str) -> Vec<(&'static str, GgufValue, u32)> {
        vec![
            ("general.type", s("adapter"), GGUF_STRING),
            ("adapter.type", s("lora"), GGUF_STRING),
            ("general.architecture", s(arch), GGUF_STRING),
            ("adapter.lora.alpha", GgufValue::Float(8.0), GGUF_FLOAT32),
        ]
    }

    fn q_pair(r: u64) -> Vec<TensorInfo> {
        vec![tensor("blk.0.attn_q.weight.lora_a", &[64, r], 0), tensor("blk.0.attn_q.weight.lora_b", &[r, 64], 1)]
    }

    #[test]
    fn accepts_the_llama_cpp_layout_and_reports_its_shape() {
        let mut tensors = q_pair(4);
        tensors.extend([tensor("blk.0.attn_v.weight.lora_a", &[64, 2], 1), tensor("blk.0.attn_v.weight.lora_b", &[2, 16], 1)]);
        tensors.extend([tensor("token_embd.weight.lora_a", &[4, 1000], 0), tensor("token_embd.weight.lora_b", &[4, 64], 0)]);
        let shape = check_adapter(&file(&meta("qwen2"), tensors), &base()).unwrap();
        assert_eq!(shape.rank, 4);
        assert_eq!(shape.alpha, 8.0);
        assert_eq!(shape.targets, ["blk.0.attn_q.weight", "blk.0.attn_v.weight", "token_embd.weight"]);
        assert_eq!(shape.tensor_bytes, (64 * 4 * 4 + 4 * 64 * 2) + (64 * 2 * 2 + 2 * 16 * 2) + (4 * 1000 * 4 + 4 * 64 * 4));
        // Per batch token: the widest adapted product (64, not the 1000-entry
        // vocabulary of the embedding lookup) and the rank.
        assert_eq!(adapter_bytes(&shape, &base(), 128), shape.tensor_bytes + (64 + 4) * 4 * 128);
    }

    #[test]
    fn refuses_an_embedding_adapter_on_a_model_that_reuses_its_embedding_as_output() {
        let mut tied = base();
        tied.tensors.retain(|t| t.name != "output.weight");
        let embd = vec![tensor("token_embd.weight.lora_a", &[4, 1000], 0), tensor("token_embd.weight.lora_b", &[4, 64], 0)];
        let err = check_adapter(&file(&meta("qwen2"), embd), &tied).unwrap_err();
        assert!(err.contains("reuses its embedding"), "{err}");
        // The same model's other matrices take adapters.
        assert!(check_adapter(&file(&meta("qwen2"), q_pair(4)), &tied).is_ok());
    }

    #[test]
    fn refuses_what_llama_cpp_would_abort_on() {
        let cases: Vec<(GgufFile, &str)> = vec![
            (
                {
                    let mut m = meta("qwen2");
                    m[3] = ("adapter.lora.alpha", GgufValue::UInt(8), 4);
                    file(&m, q_pair(4))
                },
                "not FLOAT32",
            ),
            (
                {
                    let mut m = meta("qwen2");
                    m[0] = ("general.type", GgufValue::UInt(1), 4);
                    file(&m, q_pair(4))
                },
                "not a string",
            ),
            (
                file(
                    &meta("qwen2"),
                    vec![tensor("token_embd.weight.lora_a", &[4, 1000], 0), tensor("token_embd.weight.lora_b", &[8, 64], 0)],
                ),
                "do not fit",
            ),
            (
                file(
                    &meta("qwen2"),
                    vec![tensor("blk.0.attn_norm.weight.lora_a", &[64, 4], 0), tensor("blk.0.attn_norm.weight.lora_b", &[4, 1], 0)],
                ),
                "not a matrix",
            ),
        ];
        for (adapter, expected) in cases {
            let err = check_adapter(&adapter, &base()).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn refuses_an_adapter_for_another_model() {
        let cases: Vec<(GgufFile, &str)> = vec![
            (file(&meta("llama"), q_pair(4)), "made for llama"),
            (
                file(
                    &meta("qwen2"),
                    vec![tensor("blk.0.attn_q.weight.lora_a", &[32, 4], 0), tensor("blk.0.attn_q.weight.lora_b", &[4, 64], 0)],
                ),
                "[64, 64] in the model",
            ),
            (
                file(
                    &meta("qwen2"),
                    vec![tensor("blk.0.attn_q.weight.lora_a", &[64, 4], 0), tensor("blk.0.attn_q.weight.lora_b", &[8, 64], 0)],
                ),
                "disagree on the rank",
            ),
            (
                file(
                    &meta("qwen2"),
                    vec![tensor("blk.9.attn_q.weight.lora_a", &[64, 4], 0), tensor("blk.9.attn_q.weight.lora_b", &[4, 64], 0)],
                ),
                "does not have",
            ),
            (file(&meta("qwen2"), vec![tensor("blk.0.attn_q.weight.lora_a", &[64, 4], 0)]), "missing its lora_b"),
            (
                file(
                    &meta("qwen2"),
                    vec![tensor("blk.0.attn_q.weight.lora_a", &[64, 4], 12), tensor("blk.0.attn_q.weight.lora_b", &[4, 64], 0)],
                ),
                "must be F32",
            ),
            (
                file(
                    &meta("qwen2"),
                    vec![tensor("blk.0.attn_q.weight.lora_a", &[64, 0], 0), tensor("blk.0.attn_q.weight.lora_b", &[0, 64], 0)],
                ),
                "between 1",
            ),
            (file(&meta("qwen2"), vec![]), "no lora_a/lora_b"),
            (file(&meta("qwen2"), vec![tensor("blk.0.attn_q.weight.delta", &[64, 64], 0)]), "neither a lora_a"),
            (file(&[("general.architecture", s("qwen2"), GGUF_STRING)], vec![tensor("blk.0.attn_q.weight", &[64, 64], 8)]), "is a model"),
            (file(&[("general.architecture", s("controlvector"), GGUF_STRING)], vec![tensor("direction.1", &[64], 0)]), "control vector"),
            (
                {
                    let mut m = meta("qwen2");
                    m[1] = ("adapter.type", s("control_vector"), GGUF_STRING);
                    file(&m, q_pair(4))
                },
                "only LoRA",
            ),
            (
                {
                    let mut m = meta("qwen2");
                    m.push(("adapter.alora.invocation_tokens", GgufValue::Array { len: 1, values: vec![GgufValue::UInt(5)] }, 9));
                    file(&m, q_pair(4))
                },
                "aLoRA",
            ),
        ];
        for (adapter, expected) in cases {
            let err = check_adapter(&adapter, &base()).unwrap_err();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }
}
