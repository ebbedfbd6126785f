//! llguidance: each case's JSON Schema compiled to a token-mask parser over
//! the model's vocabulary. Usage: llguidance MODEL CASES.json
use std::time::Instant;

use llama_cpp_2::sampling::LlamaSampler;
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use pocketlm_bench_engines::{cases, load, ms, report};
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, model_path, cases_path] = &args[..] else { panic!("usage: llguidance MODEL CASES.json") };
    let (_backend, model) = load(model_path);
    let started = Instant::now();
    let env = LlamaSampler::llguidance_tok_env(&model);
    let mut factory = ParserFactory::new_simple(&env).expect("a parser factory");
    factory.quiet();
    report(json!({"engine": "llguidance", "vocabulary_ms": ms(started)}));
    for (name, case) in cases(cases_path) {
        let schema = case["schema"].clone();
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let parser = factory.create_parser(TopLevelGrammar::from_json_schema(schema)).map_err(|e| e.to_string())?;
            let _sampler: LlamaSampler = Matcher::new(Ok(parser)).into();
            Ok::<(), String>(())
        }));
        let compile_ms = ms(started);
        let (ok, detail) = match result {
            Ok(Ok(())) => (true, String::new()),
            Ok(Err(e)) => (false, e),
            Err(_) => (false, "panicked".to_string()),
        };
        report(json!({"engine": "llguidance", "name": name, "ok": ok, "detail": detail, "prepare_ms": compile_ms}));
    }
}
