//! `pocketlm embed` and `pocketlm retrieval` on the real embedding model
//! (all-MiniLM-L6-v2) and ARC-Easy questions read in place from ../shared.

mod common;

use std::path::PathBuf;

use common::{fetch, pocketlm};
use serde_json::Value;

#[test]
fn embed_prints_one_vector_per_text_from_arguments_or_stdin() {
    let model = fetch("all-minilm-l6-v2");
    let model = model.to_str().unwrap();
    let out = pocketlm(&["embed", "--model", model, "--threads", "2", "Hello world", "Bonjour le monde"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    let first: Vec<f64> = lines[0]["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(first.len(), 384);
    // The published all-MiniLM-L6-v2 vector of "Hello world" starts -0.0345, 0.0310, 0.0067.
    for (got, want) in first.iter().zip([-0.0345, 0.0310, 0.0067]) {
        assert!((got - want).abs() < 2e-3, "{got} vs {want}");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("384 dimensions (mean pooling)"));

    let piped = pocketlm(&["embed", "--model", model, "--threads", "2", "--raw"], Some("one\ntwo\nthree\n"));
    assert!(piped.status.success());
    assert_eq!(String::from_utf8(piped.stdout).unwrap().lines().count(), 3);

    // A text over --max-tokens fails with the typed error, or is cut with --truncate.
    let long = "word ".repeat(100);
    let failed = pocketlm(&["embed", "--model", model, "--max-tokens", "32", &long], None);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("text 0 has 102 tokens but the embedder takes at most 32"));
    let cut = pocketlm(&["embed", "--model", model, "--max-tokens", "32", "--truncate", &long], None);
    assert!(cut.status.success());
    assert!(String::from_utf8_lossy(&cut.stdout).contains("\"truncated\":true"));

    // A chat model embeds only with a pooling.
    let qwen = fetch("qwen2.5-0.5b");
    let refused = pocketlm(&["embed", "--model", qwen.to_str().unwrap(), "x"], None);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("declares no pooling"), "{}", String::from_utf8_lossy(&refused.stderr));
}

#[test]
fn retrieval_reports_recall_and_speed_on_arc_questions() {
    let dataset = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/arc-easy/ARC-Easy-test.jsonl");
    assert!(dataset.exists(), "{} is missing: ../shared sits beside the repository", dataset.display());
    let model = fetch("all-minilm-l6-v2");
    let out = pocketlm(
        &[
            "retrieval",
            "--model",
            model.to_str().unwrap(),
            "--dataset",
            dataset.to_str().unwrap(),
            "--limit",
            "60",
            "--scale",
            "2000",
            "--threads",
            "2",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["queries"], 60);
    assert_eq!(s["dimensions"], 384);
    let (r1, r10) = (s["recall_at_1"].as_f64().unwrap(), s["recall_at_10"].as_f64().unwrap());
    let chunks = s["chunks"].as_f64().unwrap();
    // Far above chance (1/chunks at k=1), and recall grows with k.
    assert!(r1 > 5.0 / chunks && r10 >= r1 && r10 > 0.5, "{s}");
    assert!(s["embed_texts_per_s"].as_f64().unwrap() > 1.0 && s["scale_search_ms_per_query"].as_f64().unwrap() > 0.0, "{s}");
    // Picking the option closest to the question beats picking at random.
    let (closest, chance) = (s["closest_option_accuracy"].as_f64().unwrap(), s["closest_option_chance"].as_f64().unwrap());
    assert!((0.2..0.4).contains(&chance) && closest > chance, "{s}");
}
