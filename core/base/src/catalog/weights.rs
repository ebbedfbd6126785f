//! The bytes of a Q4_K_M file's tensors, from the model's shape alone, for a
//! catalog entry whose file size is not known yet.
//!
//! It follows llama.cpp's Q4_K_M recipe (`src/llama-quant.cpp`,
//! `llama_tensor_get_type_impl`) for a dense transformer:
//! - Q4_K for attention Q, K, output and the FFN gate and up matrices;
//! - Q6_K for V and FFN down in the layers `use_more_bits` picks (about half), Q4_K elsewhere;
//! - Q6_K for the output matrix (the embedding matrix when tied), Q4_K for an untied embedding;
//! - K-quants need rows of a multiple of 256 values: narrower rows fall back
//!   to Q5_0 (for Q4_K) and Q8_0 (for Q6_K);
//! - Phi-3's fused QKV matrix in Q5_K;
//! - norms and biases in F32.
//!
//! Checked against the real Q4_K_M files the tests use (`core/tests/catalog.rs`).

use crate::plan::ModelShape;

/// Bytes per weight of the types a Q4_K_M file holds (block bytes / block values).
const Q4_K: f64 = 144.0 / 256.0;
const Q5_K: f64 = 176.0 / 256.0;
const Q6_K: f64 = 210.0 / 256.0;
const Q5_0: f64 = 22.0 / 32.0;
const Q8_0: f64 = 34.0 / 32.0;
const F32: f64 = 4.0;

/// Q4_K, or Q5_0 when a row of `row` values cannot be split into 256-value blocks.
fn q4(row: u64) -> f64 {
    if row % 256 == 0 {
        Q4_K
    } else {
        Q5_0
    }
}

/// Q6_K, or Q8_0 when a row of `row` values cannot be split into 256-value blocks.
fn q6(row: u64) -> f64 {
    if row % 256 == 0 {
        Q6_K
    } else {
        Q8_0
    }
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third in between.
fn use_more_bits(i: u64, n: u64) -> bool {
    // Short-circuit: the subtraction runs only when i >= n / 8.
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// Predicted bytes of every tensor of a Q4_K_M GGUF with `shape`.
pub fn q4_k_m_weight_bytes(shape: &ModelShape) -> u64 {
    let (embd, ff, vocab) = (shape.embedding as f64, shape.feed_forward as f64, shape.vocab as f64);
    let q_width = shape.heads.saturating_mul(shape.head_dim);
    let kv_width = shape.kv_heads.saturating_mul(shape.head_dim);
    let (q_rows, kv_rows) = (q_width as f64, kv_width as f64);

    let mut bytes =
        if shape.tied_embeddings { vocab * embd * q6(shape.embedding) } else { vocab * embd * (q4(shape.embedding) + q6(shape.embedding)) };
    bytes += embd * F32; // output norm
                         // Norms and biases per layer: attention and FFN norms; Gemma 3's two extra
                         // norms and Gemma 3's and Qwen 3's per-head Q/K norms; Qwen 2's Q/K/V biases.
    let small = match shape.architecture.as_str() {
        "gemma3" => 4.0 * embd + 2.0 * shape.head_dim as f64,
        "qwen3" => 2.0 * embd + 2.0 * shape.head_dim as f64,
        "qwen2" => 2.0 * embd + q_rows + 2.0 * kv_rows,
        _ => 2.0 * embd,
    } * F32;
    // Beyond llama.cpp's layer limit a shape is refused anyway; the clamp
    // keeps this loop short for any input.
    let layers = shape.layers.min(crate::plan::limits::MAX_LAYERS);
    let fused_qkv = shape.architecture == "phi3" && shape.embedding % 256 == 0;
    for layer in 0..layers {
        let more = use_more_bits(layer, layers);
        let v = if more { q6(shape.embedding) } else { q4(shape.embedding) };
        let down = if more { q6(shape.feed_forward) } else { q4(shape.feed_forward) };
        let (q, k, v) = if fused_qkv { (Q5_K, Q5_K, Q5_K) } else { (q4(shape.embedding), q4(shape.embedding), v) };
        bytes += embd * q_rows * q // Q
            + embd * kv_rows * k // K
            + embd * kv_rows * v // V
            + q_rows * embd * q4(q_width) // attention output
            + 2.0 * embd * ff * q4(shape.embedding) // FFN gate and up
            + ff * embd * down // FFN down
            + small;
    }
    bytes.ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_within_2_percent_of_the_catalog_files_of_known_size() {
        for e in crate::catalog::Catalog::builtin().entries() {
            let Some(size) = e.file.size else { continue };
            let ratio = q4_k_m_weight_bytes(&e.shape) as f64 / size as f64;
            if e.id == "qwen3-0.6b-q4_k_m" {
                // That publisher's file is larger than llama.cpp's default
                // recipe makes it: why a known size beats the estimate.
                assert!((0.75..0.85).contains(&ratio), "{}: {ratio}", e.id);
                continue;
            }
            // The file also holds its header (tokenizer, template): a little above the tensors.
            assert!((0.98..=1.0).contains(&ratio), "{}: estimate / file size = {ratio}", e.id);
        }
    }

    #[test]
    fn use_more_bits_picks_the_layers_llama_cpp_picks() {
        // The real Q4_K_M files hold Q6_K V matrices in exactly these many layers.
        for (n, expected) in [(18, 9), (24, 12), (28, 14)] {
            assert_eq!((0..n).filter(|&i| use_more_bits(i, n)).count() as u64, expected, "{n} layers");
        }
    }
}
