//! `--lora` on `generate` and `plan`, with the adapters of scripts/lora_adapters.py.

mod common;

use common::{fetch, pocketlm};

const PROMPT: &str = "Name three colours of the rainbow.";

fn generate(model: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["generate", "--model", model, "--temperature", "0", "--max-tokens", "16", "--threads", "2", "--prompt", PROMPT];
    args.extend_from_slice(extra);
    pocketlm(&args, None)
}

#[test]
fn generate_applies_adapters_with_their_scales_and_refuses_a_foreign_one() {
    let qwen = fetch("qwen2.5-0.5b");
    let lora = fetch("qwen2.5-0.5b-lora");
    let model = qwen.to_str().unwrap();
    let output = lora.join("qwen-lora-output.gguf");
    let output = output.to_str().unwrap();

    let base = generate(model, &[]);
    assert!(base.status.success(), "{}", String::from_utf8_lossy(&base.stderr));
    let off = generate(model, &["--lora", &format!("{output}@0")]);
    assert_eq!(off.stdout, base.stdout, "scale 0 is the base model");
    let on = generate(model, &["--lora", &format!("{output}@3")]);
    assert!(on.status.success(), "{}", String::from_utf8_lossy(&on.stderr));
    assert_ne!(on.stdout, base.stdout, "the adapter changes the answer");

    let foreign = lora.join("qwen-lora-bad-arch.gguf");
    let refused = generate(model, &["--lora", foreign.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("made for gemma3"), "{stderr}");
}

#[test]
fn plan_counts_the_adapters() {
    let qwen = fetch("qwen2.5-0.5b");
    let lora = fetch("qwen2.5-0.5b-lora");
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", qwen.to_str().unwrap(), "--ctx", "4096", "--json"];
        args.extend_from_slice(extra);
        let out = pocketlm(&args, None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let bare = plan(&[]);
    let sum = lora.join("qwen-lora-sum.gguf");
    let with = plan(&["--lora", sum.to_str().unwrap()]);
    let adapters = with["estimate"]["adapter_bytes"].as_u64().unwrap();
    assert!(adapters > 4_900_000, "{adapters}");
    let peak = |v: &serde_json::Value| v["predicted_peak_bytes"].as_u64().unwrap();
    assert_eq!(peak(&with), peak(&bare) + adapters);
}
