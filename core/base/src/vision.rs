//! Vision projectors (llama.cpp's `mmproj` files): the layout PocketLM
//! accepts, checked against the text model before llama.cpp sees the file.
//!
//! llama.cpp's loader (`clip.cpp`) reads metadata with type-asserting
//! getters (a key of the wrong type aborts the process) and never checks a
//! tensor's shape: a projector whose shapes disagree loads, then aborts in
//! its warm-up graph. [`check_projector`] refuses both with a reason.
//!
//! Only the Gemma 3 layout (`clip.projector_type = "gemma3"`, a SigLIP
//! encoder, average pooling, RMS norm and one projection into the text
//! model's embedding) is accepted, and only exactly: every tensor the
//! encoder reads, with its shape, and nothing else, since clip.cpp changes
//! the graph when optional tensors are present.
//!
//! The Gemma 3 4B projector (`mmproj-model-f16.gguf`):
//! - `clip.vision.*`: image_size 896, patch_size 14, embedding_length 1152,
//!   feed_forward_length 4304, block_count 27, attention.head_count 16,
//!   attention.layer_norm_epsilon 1e-6, projection_dim 2560, image_mean and
//!   image_std [0.5, 0.5, 0.5];
//! - `v.patch_embd.weight` `[14, 14, 3, 1152]` and bias, `v.position_embd.weight`
//!   `[1152, 4096]` (F32: llama.cpp adds it to F32 activations), per block `v.blk.N.{attn_q, attn_k, attn_v, attn_out}`
//!   `[1152, 1152]`, `ffn_up` `[1152, 4304]`, `ffn_down` `[4304, 1152]` (or the
//!   two swapped, as the first Gemma 3 converter wrote them),
//!   `ln1`/`ln2`, each with a bias; `v.post_ln`; `mm.soft_emb_norm.weight`
//!   `[1152]`; `mm.input_projection.weight` `[2560, 1152]`.
//!
//! An image becomes `(image_size / patch_size / n_merge)²` embeddings (256
//! for Gemma 3), between the text tokens `<start_of_image>` and `<end_of_image>`.

use std::collections::BTreeMap;

use crate::gguf::{GgufFile, GgufValue, TensorInfo};

/// GGUF value type ids (`GGUF_TYPE_*`) of the keys clip.cpp reads.
const GGUF_UINT32: u32 = 4;
const GGUF_INT32: u32 = 5;
const GGUF_FLOAT32: u32 = 6;
const GGUF_BOOL: u32 = 7;
const GGUF_STRING: u32 = 8;
const GGUF_ARRAY: u32 = 9;

/// Every key clip.cpp may read for a vision projector, with its type.
const KEY_TYPES: &[(&str, u32)] = &[
    ("general.name", GGUF_STRING),
    ("general.description", GGUF_STRING),
    ("clip.projector_type", GGUF_STRING),
    ("clip.vision.projector_type", GGUF_STRING),
    ("clip.has_vision_encoder", GGUF_BOOL),
    ("clip.has_audio_encoder", GGUF_BOOL),
    ("clip.has_gen_audio_encoder", GGUF_BOOL),
    ("clip.use_gelu", GGUF_BOOL),
    ("clip.use_silu", GGUF_BOOL),
    ("clip.vision.embedding_length", GGUF_UINT32),
    ("clip.vision.feed_forward_length", GGUF_UINT32),
    ("clip.vision.block_count", GGUF_UINT32),
    ("clip.vision.projection_dim", GGUF_UINT32),
    ("clip.vision.attention.head_count", GGUF_UINT32),
    ("clip.vision.attention.head_count_kv", GGUF_UINT32),
    ("clip.vision.attention.head_dim", GGUF_UINT32),
    ("clip.vision.attention.layer_norm_epsilon", GGUF_FLOAT32),
    ("clip.vision.image_size", GGUF_UINT32),
    ("clip.vision.patch_size", GGUF_UINT32),
    ("clip.vision.projector.scale_factor", GGUF_UINT32),
    ("clip.minicpmv_version", GGUF_INT32),
    ("clip.minicpmv_query_num", GGUF_UINT32),
    ("clip.vision.mm_patch_merge_type", GGUF_STRING),
    ("clip.vision.image_mean", GGUF_ARRAY),
    ("clip.vision.image_std", GGUF_ARRAY),
    ("clip.vision.feature_layer", GGUF_ARRAY),
    ("clip.vision.image_grid_pinpoints", GGUF_ARRAY),
];

/// Element types clip.cpp multiplies by on every backend, for the matrices.
const MATRIX_TYPES: [&str; 4] = ["F32", "F16", "BF16", "Q8_0"];
/// Types of the patch embedding and the input projection (convolved, or
/// transposed and copied: no quantised types).
const DENSE_TYPES: [&str; 2] = ["F32", "F16"];
/// The position embedding is added to F32 activations, which the CPU
/// backend does only from F32 (an F16 one aborts at the first image).
const ADDED_TYPES: [&str; 1] = ["F32"];

/// Largest encoder dimensions accepted (the largest published SigLIP is
/// below these); bounds on the memory a header can imply.
const MAX_DIM: u64 = 16_384;
const MAX_BLOCKS: u64 = 128;
const MAX_IMAGE_SIZE: u64 = 4096;
/// Most patches a side: the encoder's activations grow with their square.
const MAX_PATCH_SIDE: u64 = 128;
/// Largest memory a projector may need ([`projector_bytes`]): more than a
/// phone has to spare beside a model.
pub const MAX_PROJECTOR_BYTES: u64 = 6 << 30;

/// What a projector file is, once checked against its text model.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectorShape {
    /// `general.name`, if the file has one.
    pub name: Option<String>,
    /// `clip.projector_type` (only `"gemma3"` is accepted).
    pub projector_type: String,
    /// Side of the square the image is resized to, in pixels.
    pub image_size: u32,
    /// Side of one patch, in pixels.
    pub patch_size: u32,
    /// Patches pooled per side into one embedding.
    pub merge: u32,
    /// Encoder width.
    pub embedding: u32,
    /// Encoder feed-forward width.
    pub feed_forward: u32,
    /// Encoder blocks.
    pub blocks: u32,
    /// Attention heads.
    pub heads: u32,
    /// The text model's embedding width the projection writes.
    pub projection: u32,
    /// Embeddings one image becomes in the text model's context.
    pub image_tokens: u32,
    /// Bytes of its tensors (read into memory, not mapped).
    pub tensor_bytes: u64,
}

/// Checks that `projector` is a vision projector llama.cpp will load for
/// the text model in `base` and run without aborting. The error is a
/// sentence for the user (what is wrong, and what to do).
pub fn check_projector(projector: &GgufFile, base: &GgufFile) -> Result<ProjectorShape, String> {
    if projector.architecture() != Some("clip") {
        let found = projector.architecture().unwrap_or("none");
        return Err(format!("it is not a vision projector (its architecture is {found}, not clip); use the model's mmproj file"));
    }
    for &(key, want) in KEY_TYPES {
        if let Some(&found) = projector.value_types.get(key) {
            if found != want {
                return Err(format!("its {key} is of GGUF type {found}, not {want}; the file is malformed"));
            }
        }
    }
    let flag = |key: &str| matches!(projector.get(key), Some(GgufValue::Bool(true)));
    if !flag("clip.has_vision_encoder") {
        return Err("it has no vision encoder (clip.has_vision_encoder is not true); use the model's image projector".into());
    }
    if flag("clip.has_audio_encoder") || flag("clip.has_gen_audio_encoder") {
        return Err("it has an audio encoder; PocketLM takes image projectors only".into());
    }
    let projector_type =
        projector.get_str("clip.projector_type").or_else(|| projector.get_str("clip.vision.projector_type")).unwrap_or_default();
    if projector_type != "gemma3" {
        let named = if projector_type.is_empty() { "none" } else { projector_type };
        return Err(format!("its projector type is {named}; PocketLM supports the Gemma 3 projector (gemma3) only"));
    }
    for key in ["clip.vision.feature_layer", "clip.vision.image_grid_pinpoints"] {
        if projector.metadata.contains_key(key) {
            return Err(format!("it sets {key}, which the Gemma 3 layout does not have; the file is not a Gemma 3 projector"));
        }
    }

    let num = |key: &str, max: u64| -> Result<u64, String> {
        match projector.get_u64(key) {
            Some(v) if (1..=max).contains(&v) => Ok(v),
            Some(v) => Err(format!("its {key} is {v}; it must be between 1 and {max}")),
            None => Err(format!("it has no {key}; the file is not a complete projector")),
        }
    };
    let n_embd = num("clip.vision.embedding_length", MAX_DIM)?;
    let n_ff = num("clip.vision.feed_forward_length", 4 * MAX_DIM)?;
    let blocks = num("clip.vision.block_count", MAX_BLOCKS)?;
    let heads = num("clip.vision.attention.head_count", 256)?;
    let projection = num("clip.vision.projection_dim", 4 * MAX_DIM)?;
    let image_size = num("clip.vision.image_size", MAX_IMAGE_SIZE)?;
    let patch = num("clip.vision.patch_size", 256)?;
    let merge = if projector.metadata.contains_key("clip.vision.projector.scale_factor") {
        num("clip.vision.projector.scale_factor", 64)?
    } else {
        4
    };
    if n_embd % heads != 0 {
        return Err(format!("its width {n_embd} is not a multiple of its {heads} attention heads; the file is malformed"));
    }
    if let Some(kv) = projector.get_u64("clip.vision.attention.head_count_kv") {
        if kv != heads {
            return Err(format!("it has {kv} key/value heads for {heads} query heads; the Gemma 3 encoder has one per head"));
        }
    }
    if let Some(d) = projector.get_u64("clip.vision.attention.head_dim") {
        if d != n_embd / heads {
            return Err(format!("its head_dim {d} is not its width over its heads ({}); the file is malformed", n_embd / heads));
        }
    }
    match projector.get("clip.vision.attention.layer_norm_epsilon").and_then(GgufValue::as_f64) {
        Some(eps) if eps.is_finite() && eps > 0.0 && eps < 1.0 => {}
        _ => return Err("its clip.vision.attention.layer_norm_epsilon is missing or not a small positive number".into()),
    }
    for key in ["clip.vision.image_mean", "clip.vision.image_std"] {
        let ok = match projector.get(key) {
            Some(GgufValue::Array { len: 3.., values }) => {
                values.len() >= 3
                    && values.iter().all(|v| matches!(v, GgufValue::Float(f) if f.is_finite()))
                    && (key.ends_with("mean") || values.iter().all(|v| v.as_f64().is_some_and(|f| f != 0.0)))
            }
            _ => false,
        };
        if !ok {
            return Err(format!("its {key} is missing or not three finite numbers (standard deviations non-zero)"));
        }
    }
    if image_size % patch != 0 {
        return Err(format!("its image size {image_size} is not a multiple of its patch size {patch}; the file is malformed"));
    }
    let side = image_size / patch;
    if side > MAX_PATCH_SIDE {
        return Err(format!(
            "it cuts images into {side} patches a side; PocketLM takes at most {MAX_PATCH_SIDE} (Gemma 3: 64), as the encoder's memory grows with their square"
        ));
    }
    if side % merge != 0 {
        return Err(format!("its {side} patches a side do not pool evenly by {merge}; the file is malformed"));
    }
    let text_embd = base.arch_u64("embedding_length").unwrap_or(0);
    if projection != text_embd {
        return Err(format!(
            "it projects images to width {projection}, but the model's embedding is {text_embd} wide; use the mmproj file made for this model"
        ));
    }
    if base.architecture() != Some("gemma3") {
        let arch = base.architecture().unwrap_or("unknown");
        return Err(format!("it is a Gemma 3 projector, but the model is {arch}; use it with the Gemma 3 model it was made for"));
    }

    // Every tensor, exactly: name -> (dims, allowed types).
    let mut expected: BTreeMap<String, (Vec<u64>, &[&str])> = BTreeMap::new();
    let mut want = |name: String, dims: Vec<u64>, types: &'static [&'static str]| {
        expected.insert(name, (dims, types));
    };
    const VECTOR: &[&str] = &["F32"];
    want("v.patch_embd.weight".into(), vec![patch, patch, 3, n_embd], &DENSE_TYPES);
    want("v.patch_embd.bias".into(), vec![n_embd], VECTOR);
    want("v.position_embd.weight".into(), vec![n_embd, side * side], &ADDED_TYPES);
    for b in 0..blocks {
        for t in ["attn_q", "attn_k", "attn_v", "attn_out"] {
            want(format!("v.blk.{b}.{t}.weight"), vec![n_embd, n_embd], &MATRIX_TYPES);
            want(format!("v.blk.{b}.{t}.bias"), vec![n_embd], VECTOR);
        }
        // The first Gemma 3 converter (llama.cpp's gemma3_convert_encoder_to_gguf.py)
        // wrote the two FFN matrices under each other's names, and clip.cpp
        // swaps them back when `ffn_down` is `n_embd` rows long: both layouts run.
        let swapped = projector
            .tensors
            .iter()
            .find(|t| t.name == format!("v.blk.{b}.ffn_down.weight"))
            .is_some_and(|t| t.dims.first() == Some(&n_embd) && n_ff != n_embd);
        let (up, down) = if swapped { ("ffn_down", "ffn_up") } else { ("ffn_up", "ffn_down") };
        want(format!("v.blk.{b}.{up}.weight"), vec![n_embd, n_ff], &MATRIX_TYPES);
        want(format!("v.blk.{b}.{up}.bias"), vec![n_ff], VECTOR);
        want(format!("v.blk.{b}.{down}.weight"), vec![n_ff, n_embd], &MATRIX_TYPES);
        want(format!("v.blk.{b}.{down}.bias"), vec![n_embd], VECTOR);
        for t in ["ln1", "ln2"] {
            want(format!("v.blk.{b}.{t}.weight"), vec![n_embd], VECTOR);
            want(format!("v.blk.{b}.{t}.bias"), vec![n_embd], VECTOR);
        }
    }
    want("v.post_ln.weight".into(), vec![n_embd], VECTOR);
    want("v.post_ln.bias".into(), vec![n_embd], VECTOR);
    want("mm.soft_emb_norm.weight".into(), vec![n_embd], VECTOR);
    want("mm.input_projection.weight".into(), vec![projection, n_embd], &DENSE_TYPES);

    let mut tensor_bytes = 0u64;
    let mut seen = std::collections::BTreeSet::new();
    for t in &projector.tensors {
        let Some((dims, types)) = expected.get(t.name.as_str()) else {
            return Err(format!("it holds {}, which the Gemma 3 projector does not have; the file is not a Gemma 3 projector", t.name));
        };
        if !seen.insert(t.name.as_str()) {
            return Err(format!("it holds {} twice; the file is malformed", t.name));
        }
        check_tensor(t, dims, types)?;
        tensor_bytes = tensor_bytes.saturating_add(t.size_bytes);
    }
    if let Some(missing) = expected.keys().find(|n| !seen.contains(n.as_str())) {
        return Err(format!("it lacks {missing}; the file is not a complete Gemma 3 projector"));
    }
    let tokens = (side / merge) * (side / merge);
    let shape = ProjectorShape {
        name: projector.get_str("general.name").map(str::to_owned),
        projector_type: projector_type.to_string(),
        image_size: image_size as u32,
        patch_size: patch as u32,
        merge: merge as u32,
        embedding: n_embd as u32,
        feed_forward: n_ff as u32,
        blocks: blocks as u32,
        heads: heads as u32,
        projection: projection as u32,
        image_tokens: tokens as u32,
        tensor_bytes,
    };
    if projector_bytes(&shape) > MAX_PROJECTOR_BYTES {
        return Err(format!(
            "it would need {} MiB to encode an image, more than the {} MiB PocketLM allows a projector",
            projector_bytes(&shape) >> 20,
            MAX_PROJECTOR_BYTES >> 20
        ));
    }
    Ok(shape)
}

fn check_tensor(t: &TensorInfo, dims: &[u64], types: &[&str]) -> Result<(), String> {
    let trim = |d: &[u64]| d[..d.iter().rposition(|&x| x != 1).map_or(0, |i| i + 1)].to_vec();
    if trim(&t.dims) != trim(dims) {
        return Err(format!("{} is {:?}, but the projector's own sizes make it {dims:?}; the file is malformed", t.name, t.dims));
    }
    if !types.contains(&t.ggml_type.name) {
        return Err(format!("{} is {}; it must be {}", t.name, t.ggml_type.name, types.join(" or ")));
    }
    Ok(())
}

/// The memory a loaded projector adds: its tensors (read into memory, not
/// mapped), the encoder's compute buffer for one image (the patch
/// activations of one block, with flash attention: blocks reuse it), the
/// resized image, its embeddings, and the buffers of the helpers around
/// them. Calibrated with scripts/bench-vision.sh on the shaped Gemma 3 4B
/// (see docs/images.md): within a few MiB of the measured growth of peak RSS.
pub fn projector_bytes(shape: &ProjectorShape) -> u64 {
    let side = u64::from(shape.image_size / shape.patch_size);
    let patches = side * side;
    let row = u64::from(shape.feed_forward) + 4 * u64::from(shape.embedding);
    let activations = patches.saturating_mul(4).saturating_mul(row);
    let pixels = u64::from(shape.image_size).pow(2) * 3 * 4;
    let output = u64::from(shape.image_tokens) * u64::from(shape.projection) * 4;
    shape.tensor_bytes.saturating_add(activations).saturating_add(pixels).saturating_add(output).saturating_add(72 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::test_support::{file, tensor};
    use crate::gguf::GgmlType;

    fn floats(v: &[f64]) -> GgufValue {
        GgufValue::Array { len: v.len() as u64, values: v.iter().map(|&f| GgufValue::Float(f)).collect() }
    }

    fn base(n_embd: u64) -> GgufFile {
        file(
            &[
                ("general.architecture", GgufValue::String("gemma3".into()), GGUF_STRING),
                ("gemma3.embedding_length", GgufValue::UInt(n_embd), GGUF_UINT32),
            ],
            vec![tensor("token_embd.weight", &[n_embd, 100], 0)],
        )
    }

    /// A Gemma 3 layout at small sizes: 56-pixel images of 14-pixel patches
    /// (4 a side), pooled by 2, so 4 image tokens.
    fn projector() -> GgufFile {
        let (e, ff) = (8u64, 12u64);
        let mut t = vec![
            tensor("v.patch_embd.weight", &[14, 14, 3, e], 1),
            tensor("v.patch_embd.bias", &[e], 0),
            tensor("v.position_embd.weight", &[e, 16], 0),
            tensor("v.post_ln.weight", &[e], 0),
            tensor("v.post_ln.bias", &[e], 0),
            tensor("mm.soft_emb_norm.weight", &[e], 0),
            tensor("mm.input_projection.weight", &[32, e], 1),
        ];
        for b in 0..2 {
            for n in ["attn_q", "attn_k", "attn_v", "attn_out"] {
                t.push(tensor(&format!("v.blk.{b}.{n}.weight"), &[e, e], 1));
                t.push(tensor(&format!("v.blk.{b}.{n}.bias"), &[e], 0));
            }
            t.push(tensor(&format!("v.blk.{b}.ffn_up.weight"), &[e, ff], 1));
            t.push(tensor(&format!("v.blk.{b}.ffn_up.bias"), &[ff], 0));
            t.push(tensor(&format!("v.blk.{b}.ffn_down.weight"), &[ff, e], 1));
            t.push(tensor(&format!("v.blk.{b}.ffn_down.bias"), &[e], 0));
            for n in ["ln1", "ln2"] {
                t.push(tensor(&format!("v.blk.{b}.{n}.weight"), &[e], 0));
                t.push(tensor(&format!("v.blk.{b}.{n}.bias"), &[e], 0));
            }
        }
        let u = |v| GgufValue::UInt(v);
        file(
            &[
                ("general.architecture", GgufValue::String("clip".into()), GGUF_STRING),
                ("clip.projector_type", GgufValue::String("gemma3".into()), GGUF_STRING),
                ("clip.has_vision_encoder", GgufValue::Bool(true), GGUF_BOOL),
                ("clip.vision.embedding_length", u(e), GGUF_UINT32),
                ("clip.vision.feed_forward_length", u(ff), GGUF_UINT32),
                ("clip.vision.block_count", u(2), GGUF_UINT32),
                ("clip.vision.attention.head_count", u(2), GGUF_UINT32),
                ("clip.vision.projection_dim", u(32), GGUF_UINT32),
                ("clip.vision.image_size", u(56), GGUF_UINT32),
                ("clip.vision.patch_size", u(14), GGUF_UINT32),
                ("clip.vision.projector.scale_factor", u(2), GGUF_UINT32),
                ("clip.vision.attention.layer_norm_epsilon", GgufValue::Float(1e-6), GGUF_FLOAT32),
                ("clip.vision.image_mean", floats(&[0.5, 0.5, 0.5]), GGUF_ARRAY),
                ("clip.vision.image_std", floats(&[0.5, 0.5, 0.5]), GGUF_ARRAY),
            ],
            t,
        )
    }

    #[test]
    fn accepts_the_gemma3_layout_and_counts_its_image_tokens() {
        let shape = check_projector(&projector(), &base(32)).unwrap();
        assert_eq!((shape.image_tokens, shape.blocks, shape.merge, shape.projection), (4, 2, 2, 32));
        assert_eq!(shape.tensor_bytes, projector().tensor_bytes());
        assert!(projector_bytes(&shape) > shape.tensor_bytes);
    }

    #[test]
    fn accepts_the_first_converters_swapped_ffn_names() {
        let mut p = projector();
        for t in p.tensors.iter_mut() {
            let swapped = if t.name.contains(".ffn_up.") {
                t.name.replace(".ffn_up.", ".ffn_down.")
            } else if t.name.contains(".ffn_down.") {
                t.name.replace(".ffn_down.", ".ffn_up.")
            } else {
                continue;
            };
            t.name = swapped;
        }
        assert_eq!(check_projector(&p, &base(32)).unwrap().image_tokens, 4);
        // Swapped names with unswapped shapes are not a layout clip.cpp runs.
        let mut p = projector();
        p.tensors.iter_mut().find(|t| t.name == "v.blk.0.ffn_up.bias").unwrap().name = "v.blk.0.ffn_down.biasx".into();
        assert!(check_projector(&p, &base(32)).is_err());
    }

    #[test]
    fn refuses_headers_that_would_need_unbounded_memory() {
        let mut p = projector();
        p.metadata.insert("clip.vision.patch_size".into(), GgufValue::UInt(1));
        p.metadata.insert("clip.vision.image_size".into(), GgufValue::UInt(4096));
        assert!(check_projector(&p, &base(32)).unwrap_err().contains("patches a side"));
    }

    #[test]
    fn refuses_what_clip_would_abort_on_or_misread() {
        let err = |p: GgufFile, b: GgufFile| check_projector(&p, &b).unwrap_err();
        assert!(err(projector(), base(64)).contains("64 wide"));
        let mut p = projector();
        p.tensors.retain(|t| t.name != "v.blk.1.ffn_down.bias");
        assert!(err(p, base(32)).contains("lacks v.blk.1.ffn_down.bias"));
        let mut p = projector();
        p.tensors.iter_mut().find(|t| t.name == "v.blk.0.attn_k.weight").unwrap().dims = vec![8, 4];
        assert!(err(p, base(32)).contains("v.blk.0.attn_k.weight is [8, 4]"));
        // Found by the fuzzer: one tensor twice in place of another.
        let mut p = projector();
        let copy = p.tensors.iter().find(|t| t.name == "v.post_ln.bias").unwrap().clone();
        p.tensors.retain(|t| t.name != "mm.soft_emb_norm.weight");
        p.tensors.push(copy);
        assert!(err(p, base(32)).contains("v.post_ln.bias twice"));
        let mut p = projector();
        p.tensors.push(tensor("v.blk.0.attn_qkv.weight", &[8, 24], 1));
        assert!(err(p, base(32)).contains("does not have"));
        let mut p = projector();
        p.value_types.insert("clip.vision.image_size".into(), GGUF_INT32);
        assert!(err(p, base(32)).contains("GGUF type 5"));
        let mut p = projector();
        p.metadata.insert("clip.vision.image_size".into(), GgufValue::UInt(60));
        assert!(err(p, base(32)).contains("not a multiple"));
        let mut p = projector();
        p.metadata.insert("clip.projector_type".into(), GgufValue::String("qwen2vl_merger".into()));
        assert!(err(p, base(32)).contains("Gemma 3 projector (gemma3) only"));
        let mut p = projector();
        p.metadata.insert("clip.vision.image_std".into(), floats(&[0.5, 0.0, 0.5]));
        assert!(err(p, base(32)).contains("image_std"));
        let mut p = projector();
        p.tensors.iter_mut().find(|t| t.name == "mm.input_projection.weight").unwrap().ggml_type = GgmlType::from_id(8).unwrap();
        assert!(err(p, base(32)).contains("must be F32 or F16"));
        let mut p = projector();
        p.tensors.iter_mut().find(|t| t.name == "v.position_embd.weight").unwrap().ggml_type = GgmlType::from_id(1).unwrap();
        assert!(err(p, base(32)).contains("v.position_embd.weight is F16; it must be F32"));
        let mut b = base(32);
        b.metadata.insert("general.architecture".into(), GgufValue::String("llama".into()));
        b.metadata.insert("llama.embedding_length".into(), GgufValue::UInt(32));
        assert!(err(projector(), b).contains("the model is llama"));
        assert!(err(base(32), base(32)).contains("not a vision projector"));
    }
}
