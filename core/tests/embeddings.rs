//! Embeddings on real models: all-MiniLM-L6-v2 (converted from the
//! sentence-transformers files by scripts/embedding_model.py) against its
//! reference pipeline, batching, retrieval through the vector index, a chat
//! model asked for embeddings, and the typed errors.

mod common;

use std::sync::OnceLock;

use common::{model_path, qwen};
use pocketlm::plan;
use pocketlm::vector_index::l2_norm;
use pocketlm::{
    Conversation, ConversationOptions, EmbedOptions, Embedder, Error, Model, ModelOptions, Pooling, VectorIndex, WeightLoading,
};

const MINILM_FILE: &str = "all-minilm-l6-v2-f16.gguf";
const REFERENCE_FILE: &str = "all-minilm-l6-v2.reference.json";

fn minilm() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load_for_embeddings(model_path(MINILM_FILE), &ModelOptions::default()).expect("MiniLM loads"))
}

fn new_embedder(options: EmbedOptions) -> Embedder {
    Embedder::new(minilm(), EmbedOptions { threads: Some(2), ..options }).expect("embedder starts")
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    dot / (l2_norm(a) * l2_norm(b))
}

/// (text, its reference tokens, its reference vector) from the fixture script.
fn reference() -> Vec<(String, usize, Vec<f32>)> {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model_path(REFERENCE_FILE)).expect("reference vectors")).expect("reference JSON");
    json["texts"]
        .as_array()
        .expect("texts")
        .iter()
        .map(|t| {
            let vector = t["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            (t["text"].as_str().unwrap().to_string(), t["tokens"].as_array().unwrap().len(), vector)
        })
        .collect()
}

#[test]
fn matches_the_reference_pipeline_text_by_text() {
    let reference = reference();
    assert!(reference.len() >= 10);
    let mut embedder = new_embedder(EmbedOptions::default());
    assert_eq!((embedder.dimensions(), embedder.pooling(), embedder.max_tokens()), (384, Pooling::Mean, 512));
    let texts: Vec<&str> = reference.iter().map(|(t, _, _)| t.as_str()).collect();
    let out = embedder.embed(&texts).expect("embeds");
    assert_eq!(out.vectors.len(), texts.len());
    // Same tokenizer: llama.cpp's WordPiece gives as many tokens as the model's own tokenizer.json.
    assert_eq!(out.tokens, reference.iter().map(|(_, n, _)| n).sum::<usize>());
    let mut worst = 1.0f64;
    for ((text, _, want), got) in reference.iter().zip(&out.vectors) {
        let c = cosine(want, got);
        assert!(c >= 0.99, "{text:?}: cosine {c:.5} with the reference");
        assert!((got.iter().map(|&x| x * x).sum::<f32>() - 1.0).abs() < 1e-4, "normalised");
        worst = worst.min(c);
    }
    eprintln!("MiniLM against its reference pipeline: lowest cosine {worst:.6} over {} texts", reference.len());
}

#[test]
fn batching_and_order_do_not_change_vectors() {
    let texts = ["short", "a somewhat longer sentence about phones", "Café crème"];
    let mut embedder = new_embedder(EmbedOptions::default());
    let together = embedder.embed(&texts).unwrap().vectors;
    for (i, text) in texts.iter().enumerate() {
        let alone = embedder.embed(&[text]).unwrap().vectors.remove(0);
        assert!(cosine(&alone, &together[i]) > 0.9999, "{text}");
    }
    let reversed: Vec<&str> = texts.iter().rev().copied().collect();
    let back = embedder.embed(&reversed).unwrap().vectors;
    assert!(cosine(&back[2], &together[0]) > 0.9999);
    // Without normalisation the same direction comes back, at another length.
    let raw = Embedder::new(minilm(), EmbedOptions { normalize: false, threads: Some(2), ..Default::default() })
        .unwrap()
        .embed(&texts[..1])
        .unwrap()
        .vectors
        .remove(0);
    assert!(cosine(&raw, &together[0]) > 0.9999);
    // Many texts span several batches (at most 64 texts and 512 tokens each).
    let many: Vec<String> = (0..150).map(|i| format!("note number {i} about item {}", i * 7)).collect();
    let out = embedder.embed(&many).unwrap();
    assert_eq!(out.vectors.len(), 150);
    let single = embedder.embed(&[&many[149]]).unwrap().vectors.remove(0);
    assert!(cosine(&single, &out.vectors[149]) > 0.9999);
}

#[test]
fn retrieval_finds_the_chunk_that_answers() {
    let chunks = [
        ("paris", "Paris is the capital and largest city of France."),
        ("photo", "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen."),
        ("rust", "The borrow checker rejects two mutable borrows of the same value."),
        ("battery", "Lithium-ion batteries last longer when kept between 20 and 80 percent."),
        ("tides", "Tides rise and fall because of the Moon's gravity."),
    ];
    let mut embedder = new_embedder(EmbedOptions::default());
    let vectors = embedder.embed(&chunks.iter().map(|c| c.1).collect::<Vec<_>>()).unwrap().vectors;
    let mut index = VectorIndex::new(embedder.dimensions()).unwrap();
    for ((id, text), v) in chunks.iter().zip(&vectors) {
        index.add(id, text, v).unwrap();
    }
    let questions = [
        ("What is the capital of France?", "paris"),
        ("How do plants make food from sunlight?", "photo"),
        ("cannot borrow as mutable more than once", "rust"),
        ("How should I charge my phone to keep the battery healthy?", "battery"),
        ("Why does the sea level change during the day?", "tides"),
    ];
    for (question, want) in questions {
        let q = embedder.embed(&[question]).unwrap().vectors.remove(0);
        let hits = index.search(&q, 2).unwrap();
        assert_eq!(hits[0].id, want, "{question}: {hits:?}");
        assert!(hits[0].score > hits[1].score);
    }
    // Saved and loaded, the index answers the same.
    let path = std::env::temp_dir().join(format!("pocketlm-embed-test-{}.idx", std::process::id()));
    index.save(&path).unwrap();
    let loaded = VectorIndex::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let q = embedder.embed(&[questions[0].0]).unwrap().vectors.remove(0);
    assert_eq!(loaded.search(&q, 1).unwrap(), index.search(&q, 1).unwrap());
}

#[test]
fn too_long_texts_fail_by_name_or_are_cut_when_asked() {
    let long = "word ".repeat(600);
    let mut embedder = new_embedder(EmbedOptions { max_tokens: Some(64), ..Default::default() });
    match embedder.embed(&["fine", &long]) {
        Err(Error::EmbeddingInputTooLong { index: 1, tokens, limit: 64 }) => assert!(tokens > 600, "{tokens}"),
        other => panic!("expected EmbeddingInputTooLong for text 1, got {other:?}"),
    }
    let mut cutting = new_embedder(EmbedOptions { max_tokens: Some(64), truncate: true, ..Default::default() });
    let out = cutting.embed(&["fine", &long]).unwrap();
    assert_eq!(out.truncated, [1]);
    assert_eq!(out.tokens, 3 + 64);
    // The cut text is the same as its first 62 words with [CLS] and [SEP].
    let prefix = "word ".repeat(62);
    let same = cutting.embed(&[prefix.trim_end()]).unwrap().vectors.remove(0);
    assert!(cosine(&same, &out.vectors[1]) > 0.9999);
    // An empty text is [CLS] [SEP]: a valid input for BERT.
    assert_eq!(embedder.embed(&[""]).unwrap().tokens, 2);
    assert!(matches!(
        Embedder::new(minilm(), EmbedOptions { max_tokens: Some(100_000), ..Default::default() }),
        Err(Error::InvalidOption { name: "max_tokens", .. })
    ));
}

#[test]
fn a_chat_model_embeds_only_when_asked() {
    let err = Embedder::new(qwen(), EmbedOptions::default()).err().expect("no pooling declared");
    assert!(matches!(&err, Error::CannotEmbed { reason, .. } if reason.contains("pooling")), "{err}");
    let mut embedder =
        Embedder::new(qwen(), EmbedOptions { pooling: Some(Pooling::Mean), threads: Some(2), max_tokens: Some(128), ..Default::default() })
            .expect("a chat model embeds with a pooling");
    assert_eq!(embedder.dimensions(), 896);
    let out = embedder.embed(&["The cat sat on the mat.", "A cat is sitting on a rug.", "Stock prices fell sharply today."]).unwrap();
    let (near, far) = (cosine(&out.vectors[0], &out.vectors[1]), cosine(&out.vectors[0], &out.vectors[2]));
    assert!(near > far, "similar sentences are closer: {near:.3} vs {far:.3}");
    // The chat model still chats beside its embedder.
    assert!(Conversation::new(qwen(), ConversationOptions { context_length: Some(256), ..Default::default() }).is_ok());
}

#[test]
fn an_embedding_model_cannot_chat() {
    let err = Model::load(model_path(MINILM_FILE), &ModelOptions::default()).expect_err("Model::load refuses an encoder");
    assert!(matches!(err, Error::NotAChatModel { ref architecture, .. } if architecture == "bert"), "{err}");
    let err = Conversation::new(minilm(), ConversationOptions::default()).expect_err("no conversation on an encoder");
    assert!(matches!(err, Error::NotAChatModel { .. }), "{err}");
}

#[test]
fn the_planner_counts_the_embedder() {
    let gguf = minilm().gguf();
    let e = plan::estimate_embedding(gguf, 512, WeightLoading::Mmap).unwrap();
    assert_eq!(e.kv_bytes, 0, "an encoder keeps no KV cache");
    // The output buffer alone: (30522 logits + 384 values) per token of a 512-token batch.
    assert!(e.compute_bytes >= (30_522 + 384) * 512 * 4, "{e:?}");
    assert!(e.weights_bytes >= 45_000_000 && e.predicted_peak_bytes < 400 << 20, "{e:?}");
    let smaller = plan::estimate_embedding(gguf, 128, WeightLoading::Mmap).unwrap();
    assert!(smaller.predicted_peak_bytes < e.predicted_peak_bytes);
    let decoder = plan::estimate_embedding(qwen().gguf(), 512, WeightLoading::Mmap).unwrap();
    assert!(decoder.kv_bytes > 0, "a decoder asked to embed keeps a KV cache for its batch");
}

#[test]
fn a_file_llama_cpp_would_abort_on_is_refused_first() {
    // The real model with its token-type row declared F16: llama.cpp's CPU
    // add aborts the process on that, so the load must stop before.
    let mut bytes = std::fs::read(model_path(MINILM_FILE)).unwrap();
    let name = b"token_types.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).expect("the tensor is in the header") + name.len();
    // After the name: n_dims (u32), two dims (u64 each), then the type (u32).
    let type_at = at + 4 + 16;
    assert_eq!(bytes[type_at..type_at + 4], [0, 0, 0, 0], "F32 in the real file");
    bytes[type_at] = 1;
    let path = std::env::temp_dir().join(format!("pocketlm-f16-token-types-{}.gguf", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let err = Model::load_for_embeddings(&path, &ModelOptions::default()).expect_err("refused");
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(&err, Error::ModelCorrupt { detail, .. } if detail.contains("token_types.weight")), "{err}");
}
