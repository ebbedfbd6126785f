//! Shared helpers for the real-model integration tests.
#![allow(dead_code)]

pub mod files;
pub mod http;

use std::path::PathBuf;
use std::sync::OnceLock;

use pocketlm::{Conversation, ConversationOptions, Model, ModelOptions, SamplingParams};

pub const QWEN_FILE: &str = "qwen2.5-coder-0.5b-instruct-q4.gguf";
pub const GEMMA_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

/// The model cache (same rule as scripts/fetch_models.py).
pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("POCKETLM_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
    base.join("pocketlm").join("models")
}

/// Path of a real test model; fails loudly if it has not been fetched.
pub fn model_path(file: &str) -> PathBuf {
    let path = model_dir().join(file);
    assert!(path.exists(), "{} is missing: run scripts/fetch-test-models.sh first", path.display());
    path
}

/// Qwen2.5-Coder 0.5B Instruct, loaded once per test binary.
pub fn qwen() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(model_path(QWEN_FILE), &ModelOptions::default()).expect("qwen loads"))
}

/// Gemma 3 270M base, loaded once per test binary.
pub fn gemma() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(model_path(GEMMA_FILE), &ModelOptions::default()).expect("gemma loads"))
}

/// Greedy sampling with a token limit.
pub fn greedy(max_tokens: u32) -> SamplingParams {
    SamplingParams { max_tokens, ..SamplingParams::greedy() }
}

/// A small-context, 2-thread conversation with the given sampling.
pub fn conversation(model: &Model, sampling: SamplingParams) -> Conversation {
    Conversation::new(model, ConversationOptions { context_length: Some(1024), threads: Some(2), sampling, ..Default::default() })
        .expect("conversation starts")
}
