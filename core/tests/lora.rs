//! LoRA adapters through the public API, on the real Qwen test model with the
//! adapters of scripts/lora_adapters.py. (The exact logit checks are unit
//! tests in core/src/engine/adapter.rs, where the logits are visible.)

mod common;

use std::path::PathBuf;

use common::{conversation, greedy, model_dir, model_path, qwen, GEMMA_FILE};
use pocketlm::{plan, Error, LoraAdapter, Model, ModelOptions, PlanRequest, SessionErrorKind};

fn adapter_path(name: &str) -> PathBuf {
    let path = model_dir().join("lora").join(format!("qwen-lora-{name}.gguf"));
    assert!(path.exists(), "{} is missing: run scripts/fetch-test-models.sh first", path.display());
    path
}

fn adapter(name: &str) -> LoraAdapter {
    LoraAdapter::load(qwen(), adapter_path(name)).expect("the test adapter loads")
}

const QUESTION: &str = "Name three colours of the rainbow.";

/// The greedy answer to `QUESTION` from a fresh conversation with `adapters`.
fn fresh_answer(adapters: &[(LoraAdapter, f32)]) -> String {
    let mut chat = conversation(qwen(), greedy(24));
    chat.set_adapters(adapters).unwrap();
    chat.ask(QUESTION).unwrap().text
}

#[test]
fn adapters_attach_detach_and_swap_on_a_live_conversation() {
    let base = fresh_answer(&[]);
    let output = adapter("output");
    let attn = adapter("attn");
    let with_output = fresh_answer(&[(output.clone(), 3.0)]);
    let with_attn = fresh_answer(&[(attn.clone(), 6.0)]);
    assert_ne!(with_output, base, "the output adapter changes the answer");
    assert_ne!(with_attn, base, "the attention adapter changes the answer");
    assert_ne!(with_attn, with_output);

    // One conversation, one base model: swap between them. Each answer
    // must equal a fresh conversation's with the same adapters, which it
    // cannot if the KV cache of the previous weights were reused.
    let mut chat = conversation(qwen(), greedy(24));
    assert_eq!(chat.ask(QUESTION).unwrap().text, base);
    for (adapters, expected) in [
        (vec![(output.clone(), 3.0)], &with_output),
        (vec![(attn.clone(), 6.0)], &with_attn),
        (vec![(attn.clone(), 0.0)], &base),
        (vec![(output.clone(), 3.0)], &with_output),
        (vec![], &base),
    ] {
        chat.set_adapters(&adapters).unwrap();
        let reply = chat.regenerate(&Default::default(), &mut |_| {}).unwrap();
        assert_eq!(&reply.text, expected, "with {} adapters", adapters.len());
        assert_eq!(chat.messages().len(), 2, "the history is kept");
    }
    assert!(chat.adapters().is_empty());
}

#[test]
fn an_adapter_is_shared_by_conversations_without_touching_the_others() {
    let attn = adapter("attn");
    let mut tuned = conversation(qwen(), greedy(24));
    let mut plain = conversation(qwen(), greedy(24));
    tuned.set_adapters(&[(attn.clone(), 6.0)]).unwrap();
    let tuned_answer = tuned.ask(QUESTION).unwrap().text;
    let plain_answer = plain.ask(QUESTION).unwrap().text;
    assert_eq!(plain_answer, fresh_answer(&[]));
    assert_eq!(tuned_answer, fresh_answer(&[(attn.clone(), 6.0)]));
    assert_eq!(tuned.adapters()[0].0, attn);
    assert_eq!(attn.info().rank, 4);
    assert_eq!(attn.info().alpha, 8.0);
    assert_eq!(attn.info().targets, 48);
    assert_eq!(attn.info().sha256.len(), 64);
}

#[test]
fn bad_adapters_and_bad_scales_get_typed_errors_and_change_nothing() {
    // Files: not there, cut short, a model, for another architecture or shape.
    assert!(matches!(LoraAdapter::load(qwen(), "/nonexistent/adapter.gguf"), Err(Error::ModelNotFound { .. })));
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.gguf");
    let bytes = std::fs::read(adapter_path("attn")).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(LoraAdapter::load(qwen(), &cut), Err(Error::ModelTruncated { .. })), "a file cut short");
    match LoraAdapter::load(qwen(), model_path(GEMMA_FILE)) {
        Err(Error::AdapterMismatch { reason, .. }) => assert!(reason.contains("is a model"), "{reason}"),
        other => panic!("a model file: {other:?}"),
    }
    for name in ["bad-arch", "bad-shape", "bad-alpha", "bad-embd"] {
        assert!(matches!(LoraAdapter::load(qwen(), adapter_path(name)), Err(Error::AdapterMismatch { .. })), "{name}");
    }

    // Scales and owners, on a conversation that keeps working afterwards.
    let attn = adapter("attn");
    let mut chat = conversation(qwen(), greedy(24));
    chat.set_adapters(&[(attn.clone(), 6.0)]).unwrap();
    let before = chat.ask(QUESTION).unwrap().text;
    for bad in [f32::NAN, f32::INFINITY] {
        assert!(matches!(chat.set_adapters(&[(attn.clone(), bad)]), Err(Error::InvalidOption { .. })));
    }
    assert!(matches!(chat.set_adapters(&[(attn.clone(), 1.0), (attn.clone(), 2.0)]), Err(Error::InvalidOption { .. })));
    let gemma = Model::load(model_path(GEMMA_FILE), &ModelOptions::default()).unwrap();
    let mut gemma_chat = conversation(&gemma, greedy(4));
    match gemma_chat.set_adapters(&[(attn.clone(), 1.0)]) {
        Err(Error::AdapterMismatch { reason, .. }) => assert!(reason.contains("another model"), "{reason}"),
        other => panic!("an adapter of another model: {other:?}"),
    }
    assert_eq!(chat.adapters().len(), 1, "a refused change leaves the adapters as they were");
    assert_eq!(chat.regenerate(&Default::default(), &mut |_| {}).unwrap().text, before);
}

#[test]
fn a_saved_session_remembers_its_adapters() {
    let attn = adapter("attn");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chat.session");
    let mut chat = conversation(qwen(), greedy(8));
    chat.set_adapters(&[(attn.clone(), 6.0)]).unwrap();
    chat.ask(QUESTION).unwrap();
    chat.save(&file).unwrap();

    let mut without = conversation(qwen(), greedy(8));
    match without.restore(&file) {
        Err(Error::Session { kind: SessionErrorKind::SettingsMismatch, detail }) => assert!(detail.contains("adapters"), "{detail}"),
        other => panic!("restoring without the adapter: {other:?}"),
    }
    let mut with = conversation(qwen(), greedy(8));
    with.set_adapters(&[(attn, 6.0)]).unwrap();
    let restored = with.restore(&file).unwrap();
    assert!(restored.cached_tokens > 0);
}

#[test]
fn the_planner_counts_adapter_memory() {
    let attn = adapter("attn");
    let sum = adapter("sum");
    let gguf = qwen().gguf();
    let request = PlanRequest { context_length: 2048, batch_size: 512, ..plan::smallest_request(None, None) };
    let bare = plan::estimate(gguf, request).unwrap();
    let with = plan::estimate_with_adapters(gguf, request, &[attn.shape().clone(), sum.shape().clone()]).unwrap();
    let tensors = attn.info().tensor_bytes + sum.info().tensor_bytes;
    assert!(with.adapter_bytes >= tensors, "{} counted for {tensors} bytes of tensors", with.adapter_bytes);
    assert_eq!(with.predicted_peak_bytes, bare.predicted_peak_bytes + with.adapter_bytes);
    // The tensors are the file minus its header (and alignment padding).
    let file = pocketlm::gguf::GgufFile::read(&adapter_path("attn")).unwrap().unwrap();
    let data = file.file_size - file.data_offset;
    assert!(attn.info().tensor_bytes <= data && attn.info().tensor_bytes * 100 >= data * 99, "{} of {data}", attn.info().tensor_bytes);

    // Under a budget, the adapters come out of it before the context is chosen.
    let budget = 700 << 20;
    let plain = plan::fit_budget(gguf, budget, None, None).unwrap();
    let adapted = plan::fit_budget_with_adapters(gguf, budget, None, None, &[attn.shape().clone(), sum.shape().clone()]).unwrap();
    assert!(adapted.fits);
    assert!(adapted.estimate.adapter_bytes >= tensors);
    assert!(adapted.ctx <= plain.ctx, "{} then {}", plain.ctx, adapted.ctx);
}

#[test]
fn loading_and_freeing_adapters_while_other_conversations_switch_theirs() {
    let attn = adapter("attn");
    let expected = [fresh_answer(&[]), fresh_answer(&[(attn.clone(), 6.0)])];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut loads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                drop(adapter("tiny"));
                loads += 1;
            }
            loads
        })
    };
    let mut chat = conversation(qwen(), greedy(24));
    chat.ask(QUESTION).unwrap();
    for round in 0..6 {
        let on = round % 2 == 1;
        chat.set_adapters(&if on { vec![(attn.clone(), 6.0)] } else { vec![] }).unwrap();
        let reply = chat.regenerate(&Default::default(), &mut |_| {}).unwrap();
        assert_eq!(reply.text, expected[usize::from(on)], "round {round}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(churn.join().unwrap() > 0, "adapters were loaded and freed meanwhile");
}
