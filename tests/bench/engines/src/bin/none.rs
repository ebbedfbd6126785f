//! The baseline: llama.cpp with a plain greedy sampler and no constraint
//! engine. Usage: none MODEL
use llama_cpp_2::sampling::LlamaSampler;

fn main() {
    let model_path = std::env::args().nth(1).expect("usage: none MODEL");
    let (_backend, model) = pocketlm_bench_engines::load(&model_path);
    let _sampler = LlamaSampler::greedy();
    pocketlm_bench_engines::report(serde_json::json!({"engine": "none", "vocab": model.n_vocab()}));
}
