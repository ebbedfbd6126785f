//! Cancellation that the UI can rely on: during a long prompt (llama.cpp's
//! abort callback, not only between batches) and while loading a model, with
//! load progress. Run the measurement with
//! `cargo test -p pocketlm --test cancel -- --ignored --nocapture`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{greedy, model_path, qwen, QWEN_FILE};
use pocketlm::{CancelToken, Conversation, ConversationOptions, Error, Model, ModelOptions, PartialAnswer, SendOptions, StopReason};

/// A user message of about `tokens` tokens (Qwen's tokenizer: ~10 per sentence).
fn long_message(tokens: usize) -> String {
    let sentence = "The quick brown fox jumps over the lazy dog near the river bank. ";
    let mut text = String::from("Summarise the following text in one word.\n");
    text.push_str(&sentence.repeat(tokens / 14 + 1));
    text
}

fn chat(context_length: u32) -> Conversation {
    Conversation::new(
        qwen(),
        ConversationOptions { context_length: Some(context_length), threads: Some(2), sampling: greedy(16), ..Default::default() },
    )
    .expect("conversation starts")
}

/// Sends `text`, cancels after `after`, and returns the reply and how long
/// `send` took to return once cancelled.
fn send_and_cancel(chat: &mut Conversation, text: &str, after: Duration) -> (pocketlm::Reply, Duration) {
    let options = SendOptions { cancel: CancelToken::new(), on_cancel: PartialAnswer::Discard, ..SendOptions::default() };
    let token = options.cancel.clone();
    let cancelled_at = Arc::new(Mutex::new(None::<Instant>));
    let at = Arc::clone(&cancelled_at);
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(after);
        *at.lock().unwrap() = Some(Instant::now());
        token.cancel();
    });
    let reply = chat.send(text, &options, &mut |_| {}).expect("a cancelled answer is not an error");
    let returned = Instant::now();
    canceller.join().unwrap();
    let cancelled_at = cancelled_at.lock().unwrap().expect("the canceller ran before send returned");
    (reply, returned.saturating_duration_since(cancelled_at))
}

#[test]
fn cancel_during_a_long_prefill_stops_quickly_and_the_chat_still_answers() {
    let mut chat = chat(4096);
    let first = chat.ask("What is the capital of France?").unwrap();
    assert!(first.text.contains("Paris"), "{}", first.text);
    let history = chat.messages().to_vec();

    // About 3000 prompt tokens: several seconds of prefill on two cores.
    let (reply, latency) = send_and_cancel(&mut chat, &long_message(3000), Duration::from_millis(300));
    assert_eq!(reply.metrics.stop_reason, StopReason::Cancelled);
    assert_eq!(reply.metrics.generated_tokens, 0);
    assert!(latency < Duration::from_secs(2), "cancel took {latency:?} during the prefill");
    assert_eq!(chat.messages(), &history[..], "a discarded cancel leaves the history as it was");

    // The cached prefix survived the aborted batch, and answers are still right.
    let next = chat.ask("And the capital of Germany?").unwrap();
    assert!(next.text.contains("Berlin"), "{}", next.text);
    assert!(next.metrics.prompt_tokens_reused > 0, "the KV prefix was kept: {:?}", next.metrics);
}

#[test]
fn cancel_before_the_prompt_is_evaluated_keeps_the_conversation_usable() {
    let mut chat = chat(1024);
    let options = SendOptions { cancel: CancelToken::new(), on_cancel: PartialAnswer::Keep, ..SendOptions::default() };
    options.cancel.cancel();
    let reply = chat.send("What is the capital of France?", &options, &mut |_| {}).unwrap();
    assert_eq!(reply.metrics.stop_reason, StopReason::Cancelled);
    let next = chat.ask("What is the capital of Italy?").unwrap();
    assert!(next.text.contains("Rome"), "{}", next.text);
}

/// The measurement behind the "cancel latency during a long prefill" figure:
/// a ~3000-token prompt cancelled 300 ms in, five times. Before the abort
/// callback, a cancel waited for the 512-token batch in progress (seconds).
#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn bench_cancel_latency_during_prefill() {
    let mut chat = chat(4096);
    let text = long_message(3000);
    let prompt_tokens = {
        let mut probe = chat.model().tokenize(&text).len();
        probe += 20; // the chat template's wrapping, roughly
        probe
    };
    let mut latencies = Vec::new();
    for _ in 0..5 {
        chat.clear_cache();
        let (reply, latency) = send_and_cancel(&mut chat, &text, Duration::from_millis(300));
        assert_eq!(reply.metrics.stop_reason, StopReason::Cancelled);
        latencies.push(latency.as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    // For comparison: one whole 512-token batch, the old worst case.
    chat.clear_cache();
    let batch = chat.send(&long_message(500), &SendOptions::default(), &mut |_| {}).unwrap();
    let batch_ms = batch.metrics.prompt_tokens_evaluated as f64 / batch.metrics.prefill_tokens_per_s * 1000.0;
    println!(
        "cancel latency during a ~{prompt_tokens}-token prefill, cancelled after 300 ms, 2 threads: \
         min {:.1} ms, median {:.1} ms, max {:.1} ms (one {}-token batch takes {batch_ms:.0} ms)",
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        batch.metrics.prompt_tokens_evaluated,
    );
}

#[test]
fn load_reports_increasing_progress_up_to_one() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let model =
        Model::load_with(model_path(QWEN_FILE), &ModelOptions::default(), move |p| sink.lock().unwrap().push(p), &CancelToken::new())
            .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() > 10, "progress was reported per tensor: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "increasing: {seen:?}");
    assert!(seen.iter().all(|p| (0.0..=1.0).contains(p)));
    assert_eq!(seen.last(), Some(&1.0));
    assert_eq!(model.info().architecture, "qwen2");
}

#[test]
fn cancelling_a_load_stops_it_with_a_typed_error() {
    // Cancelled from the progress callback: the next tensor is not read.
    let token = CancelToken::new();
    let calls = Arc::new(Mutex::new(0));
    let (t, c) = (token.clone(), Arc::clone(&calls));
    let err = Model::load_with(
        model_path(QWEN_FILE),
        &ModelOptions::default(),
        move |_| {
            *c.lock().unwrap() += 1;
            t.cancel();
        },
        &token,
    )
    .unwrap_err();
    assert!(matches!(err, Error::LoadCancelled { .. }), "{err:?}");
    assert_eq!(*calls.lock().unwrap(), 1, "no progress after the cancel");

    // Cancelled before it starts.
    let token = CancelToken::new();
    token.cancel();
    let err = Model::load_with(model_path(QWEN_FILE), &ModelOptions::default(), |_| {}, &token).unwrap_err();
    assert!(matches!(err, Error::LoadCancelled { .. }), "{err:?}");
    assert!(err.to_string().contains("cancelled"), "{err}");
}

#[test]
fn a_panicking_progress_callback_unwinds_in_the_caller() {
    // Inside llama.cpp's C callback a panic would abort the process; it must
    // reach the caller of `load_with` instead.
    let outcome = std::panic::catch_unwind(|| {
        Model::load_with(model_path(QWEN_FILE), &ModelOptions::default(), |_| panic!("progress bar broke"), &CancelToken::new())
    });
    let panic = outcome.expect_err("the panic propagates");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"progress bar broke"));
}
