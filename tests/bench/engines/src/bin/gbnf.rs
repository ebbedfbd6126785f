//! llama.cpp's `common` converter: each case's JSON Schema turned into a
//! GBNF grammar, then llama.cpp's GBNF sampler built from it. A conversion
//! that drops part of the schema only warns on stderr; that is recorded, and
//! for a case with `"without"` (the schema minus the keyword under test) a
//! grammar identical to that one's means the keyword was silently ignored.
//! Usage: gbnf MODEL CASES.json [GRAMMAR_DIR]  (writes NAME.gbnf there, other
//! characters than letters, digits and `-` in NAME replaced by `_`)
use std::time::Instant;

use llama_cpp_2::json_schema_to_grammar;
use llama_cpp_2::sampling::LlamaSampler;
use pocketlm_bench_engines::{capture_stderr, cases, load, ms, report};
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (model_path, cases_path, out_dir) = match &args[..] {
        [_, m, c] => (m, c, None),
        [_, m, c, d] => (m, c, Some(d)),
        _ => panic!("usage: gbnf MODEL CASES.json [GRAMMAR_DIR]"),
    };
    let (_backend, model) = load(model_path);
    for (name, case) in cases(cases_path) {
        let started = Instant::now();
        let (converted, warning) = capture_stderr(|| json_schema_to_grammar(&case["schema"].to_string()));
        let convert_ms = ms(started);
        let grammar = match converted {
            Ok(g) => g,
            Err(e) => {
                report(json!({"engine": "gbnf", "name": name, "ok": false, "detail": e.to_string(), "convert_ms": convert_ms}));
                continue;
            }
        };
        let ignored = match case.get("without") {
            Some(without) => capture_stderr(|| json_schema_to_grammar(&without.to_string())).0.ok().map(|g| g == grammar),
            None => None,
        };
        let started = Instant::now();
        let sampler = LlamaSampler::grammar(&model, &grammar, "root");
        let sampler_ms = ms(started);
        if let (Some(dir), true) = (out_dir, sampler.is_ok()) {
            let file: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
            std::fs::write(format!("{dir}/{file}.gbnf"), &grammar).expect("write the grammar");
        }
        report(json!({
            "engine": "gbnf", "name": name, "ok": sampler.is_ok(),
            "detail": sampler.err().map(|e| e.to_string()).unwrap_or_default(),
            "warning": warning.trim(), "ignored": ignored, "grammar_bytes": grammar.len(),
            "convert_ms": convert_ms, "sampler_ms": sampler_ms, "prepare_ms": convert_ms + sampler_ms,
        }));
    }
}
