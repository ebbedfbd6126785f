//! Shaped models (scripts/make-shaped-model): the public Llama 3.2 3B and
//! Gemma 3 4B Q4_K_M layouts with random weights, cut to a few layers so the
//! tests stay fast. Checks the generator's layout, the planner's arithmetic
//! against the published shapes, the refusal path, and that the engine runs them.

mod common;

use std::path::PathBuf;

use common::model_dir;
use pocketlm::plan::{estimate, fit_budget};
use pocketlm::{
    inspect_file, Conversation, ConversationOptions, Error, KvType, Model, ModelOptions, PlanRequest, SamplingParams, WeightLoading,
};

/// Llama 3.2 3B layout, first 2 of 28 layers.
const LLAMA_FILE: &str = "llama-3.2-3b-2layers.gguf";
/// Gemma 3 4B layout, first 6 of 34 layers (5 sliding-window, 1 global).
const GEMMA_FILE: &str = "gemma-3-4b-6layers.gguf";

fn shaped(file: &str) -> PathBuf {
    let path = model_dir().join("shaped").join(file);
    assert!(path.exists(), "{} is missing: scripts/test.sh generates it with scripts/make-shaped-model", path.display());
    path
}

fn request(context_length: u32, kv_type: KvType) -> PlanRequest {
    PlanRequest { context_length, kv_type, batch_size: 512, full_swa_cache: false, weights: WeightLoading::Auto }
}

fn tensor<'a>(gguf: &'a pocketlm::gguf::GgufFile, name: &str) -> &'a pocketlm::gguf::TensorInfo {
    gguf.tensors.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("tensor {name} is missing"))
}

#[test]
fn llama_layout_is_the_public_q4_k_m_layout() {
    let gguf = inspect_file(&shaped(LLAMA_FILE)).unwrap();
    assert_eq!(gguf.architecture(), Some("llama"));
    for (key, value) in [
        ("embedding_length", 3072),
        ("feed_forward_length", 8192),
        ("attention.head_count", 24),
        ("attention.head_count_kv", 8),
        ("attention.key_length", 128),
        ("vocab_size", 128_256),
        ("block_count", 2),
    ] {
        assert_eq!(gguf.arch_u64(key), Some(value), "llama.{key}");
    }
    // Tied embeddings: no output.weight, token_embd doubles as the output matrix in Q6_K.
    assert!(gguf.tensors.iter().all(|t| t.name != "output.weight"));
    let embd = tensor(&gguf, "token_embd.weight");
    assert_eq!((embd.ggml_type.name, embd.dims.as_slice()), ("Q6_K", &[3072, 128_256][..]));
    // Q4_K_M gives attn_v and ffn_down of layers 0..n/8 six bits.
    assert_eq!(tensor(&gguf, "blk.0.attn_v.weight").ggml_type.name, "Q6_K");
    assert_eq!(tensor(&gguf, "blk.0.ffn_down.weight").ggml_type.name, "Q6_K");
    assert_eq!(tensor(&gguf, "blk.1.attn_q.weight").ggml_type.name, "Q4_K");
    assert_eq!(tensor(&gguf, "blk.1.attn_k.weight").dims, vec![3072, 1024]);
    assert_eq!(tensor(&gguf, "rope_freqs.weight").dims, vec![64]);
}

#[test]
fn gemma_vocabulary_is_padded_to_the_4b_embedding_rows() {
    let gguf = inspect_file(&shaped(GEMMA_FILE)).unwrap();
    assert_eq!(gguf.architecture(), Some("gemma3"));
    assert_eq!(gguf.arch_u64("attention.sliding_window"), Some(1024));
    assert_eq!(tensor(&gguf, "token_embd.weight").dims, vec![2560, 262_208]);
    assert_eq!(tensor(&gguf, "blk.0.attn_q.weight").dims, vec![2560, 2048]);
    assert_eq!(tensor(&gguf, "blk.5.ffn_down.weight").dims, vec![10240, 2560]);
    assert_eq!(pocketlm::describe(&gguf).vocab_size, 262_208);
}

#[test]
fn kv_cache_follows_the_published_shapes() {
    // Llama 3.2 3B: 8 KV heads x 128 dims, K and V, 2 bytes: 4 KiB per token per layer.
    let llama = inspect_file(&shaped(LLAMA_FILE)).unwrap();
    let per_token_layer = 8 * 128 * 2 * 2;
    assert_eq!(estimate(&llama, request(4096, KvType::F16)).unwrap().kv_bytes, 2 * 4096 * per_token_layer);
    assert_eq!(estimate(&llama, request(8192, KvType::Q8_0)).unwrap().kv_bytes, 2 * 8192 * per_token_layer * 34 / 64);
    // At full size (28 layers) that is the 448 MiB llama.cpp allocates at 4096 tokens.
    assert_eq!(28 * 4096 * per_token_layer, 448 << 20);

    // Gemma 3 4B: 4 KV heads x 256 dims; layers 0-4 keep a 1024-token window
    // (padded with the 512-token batch to 1536 cells), layer 5 the whole context.
    let gemma = inspect_file(&shaped(GEMMA_FILE)).unwrap();
    let per_token_layer = 4 * 256 * 2 * 2;
    assert_eq!(estimate(&gemma, request(4096, KvType::F16)).unwrap().kv_bytes, (5 * 1536 + 4096) * per_token_layer);
    assert_eq!(estimate(&gemma, request(1024, KvType::F16)).unwrap().kv_bytes, 6 * 1024 * per_token_layer);
}

#[test]
fn weights_are_counted_once_when_read_and_twice_when_mapped() {
    let gguf = inspect_file(&shaped(LLAMA_FILE)).unwrap();
    let q4k: u64 = gguf.tensors.iter().filter(|t| t.ggml_type.name == "Q4_K").map(|t| t.size_bytes).sum();
    let read = estimate(&gguf, request(4096, KvType::F16)).unwrap();
    let mapped = estimate(&gguf, PlanRequest { weights: WeightLoading::Mmap, ..request(4096, KvType::F16) }).unwrap();
    assert_eq!(read.request.weights, WeightLoading::Read);
    assert_eq!(read.weights_bytes, gguf.tensor_bytes());
    assert_eq!(mapped.weights_bytes - read.weights_bytes, q4k);
}

#[test]
fn a_budget_too_small_is_refused_from_the_header_alone() {
    let path = shaped(GEMMA_FILE);
    let gguf = inspect_file(&path).unwrap();
    let err = fit_budget(&gguf, 512 << 20, None, None).unwrap_err();
    let Error::InsufficientMemory { needed_bytes, budget_bytes } = &err else { panic!("expected InsufficientMemory, got {err}") };
    let (needed_bytes, budget_bytes) = (*needed_bytes, *budget_bytes);
    assert_eq!(budget_bytes, 512 << 20);
    assert!(needed_bytes > gguf.tensor_bytes(), "the weights alone exceed the budget");
    assert!(err.to_string().contains(&format!("{} MiB", needed_bytes >> 20)), "the message says how much is needed: {err}");

    // The budget the error names is enough, and the process carries on.
    let plan = fit_budget(&gguf, needed_bytes, None, None).unwrap();
    assert!(plan.fits && plan.predicted_peak_bytes <= needed_bytes);
}

#[test]
fn shaped_models_load_and_generate_within_the_planned_context() {
    for file in [LLAMA_FILE, GEMMA_FILE] {
        let path = shaped(file);
        let plan = fit_budget(&inspect_file(&path).unwrap(), 2 << 30, Some(2048), None).unwrap();
        assert_eq!((plan.ctx, plan.kv_type, plan.weights), (2048, KvType::F16, WeightLoading::Read));
        let model = Model::load(&path, &ModelOptions { weights: plan.weights, ..ModelOptions::default() }).unwrap();
        assert_eq!(model.weight_loading(), WeightLoading::Read);
        let options = ConversationOptions {
            context_length: Some(plan.ctx),
            kv_type: plan.kv_type,
            batch_size: plan.batch_size,
            threads: Some(2),
            sampling: SamplingParams { max_tokens: 4, ..SamplingParams::greedy() },
            ..ConversationOptions::default()
        };
        let mut chat = Conversation::new(&model, options).unwrap();
        // Random weights answer noise; the point is that they answer at all.
        let reply = chat.ask("Hello").unwrap();
        assert!(reply.metrics.generated_tokens >= 1, "{file}: {:?}", reply.metrics);
        assert!(reply.metrics.decode_tokens_per_s.is_finite());
    }
}
