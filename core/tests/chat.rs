//! Real-model tests of answers, streaming, KV reuse, cancellation, sampling
//! and context overflow, on Qwen2.5-Coder 0.5B and Gemma 3 270M.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{conversation, gemma, greedy, qwen};
use pocketlm::{
    CancelToken, Conversation, ConversationOptions, Error, Message, OverflowPolicy, PartialAnswer, SamplingParams, SendOptions, StopReason,
};

#[test]
fn qwen_streams_the_capital_of_france() {
    let mut chat = conversation(qwen(), greedy(32));
    let mut deltas = Vec::new();
    let reply = chat.send("What is the capital of France?", &SendOptions::default(), &mut |d| deltas.push(d.to_string())).unwrap();
    assert!(reply.text.contains("Paris"), "answer: {:?}", reply.text);
    assert_eq!(deltas.concat(), reply.text, "the streamed deltas add up to the answer");
    assert!(deltas.len() > 1, "the answer arrived in pieces");
    let m = &reply.metrics;
    assert_eq!(m.stop_reason, StopReason::Eos);
    assert!(m.generated_tokens > 0 && m.prompt_tokens_evaluated > 10);
    assert_eq!(m.prompt_tokens_reused, 0);
    assert!(m.ttft_ms > 0.0 && m.prefill_tokens_per_s > 0.0 && m.decode_tokens_per_s > 0.0);
    assert!(m.load_ms > 0.0 && m.peak_rss_bytes > 100 << 20);
    assert_eq!(chat.messages().len(), 2);
}

#[test]
fn gemma_base_model_completes_plain_text() {
    let mut chat = conversation(gemma(), greedy(8));
    let reply = chat.ask("The capital city of France is Paris. The capital city of Germany is").unwrap();
    assert!(reply.text.contains("Berlin"), "completion: {:?}", reply.text);
    let reply = conversation(gemma(), greedy(8)).ask("Monday, Tuesday, Wednesday,").unwrap();
    assert!(reply.text.starts_with(" Thursday, Friday"), "completion: {:?}", reply.text);
    assert_eq!(gemma().info().prompt_format, "plain");
}

#[test]
fn second_turn_reuses_the_cache_and_matches_a_fresh_evaluation() {
    let mut chat = conversation(qwen(), greedy(24));
    let first = chat.ask("Name one primary colour.").unwrap();
    let second = chat.ask("Name another one.").unwrap();
    let m = &second.metrics;
    assert!(m.prompt_tokens_reused > 0, "{m:?}");
    let full = m.prompt_tokens_reused + m.prompt_tokens_evaluated;
    assert!(m.prompt_tokens_evaluated < full / 2, "only the new turn is evaluated: {m:?}");

    let mut fresh = conversation(qwen(), greedy(24));
    fresh.set_messages(vec![Message::user("Name one primary colour."), Message::assistant(first.text.clone())]);
    let again = fresh.ask("Name another one.").unwrap();
    assert_eq!(again.metrics.prompt_tokens_reused, 0);
    assert_eq!(again.metrics.prompt_tokens_evaluated, full);
    assert_eq!(again.text, second.text, "reuse must not change a greedy answer");
}

#[test]
fn editing_an_earlier_turn_evicts_only_the_diverging_suffix() {
    let mut chat = conversation(qwen(), greedy(12));
    chat.ask("Count from one to three.").unwrap();
    chat.ask("Now count backwards.").unwrap();
    // Edit the second question: the system prompt and first turn stay cached.
    chat.truncate(2);
    let edited = chat.ask("Now say them in French.").unwrap();
    assert!(edited.metrics.prompt_tokens_reused > 20, "{:?}", edited.metrics);
    assert!(edited.metrics.prompt_tokens_evaluated < 20, "{:?}", edited.metrics);
    // Regenerating reuses everything but the answer.
    let again = chat.regenerate(&SendOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(again.text, edited.text);
    assert_eq!(chat.messages().len(), 4);
}

#[test]
fn cancel_from_another_thread_stops_within_a_step_and_keeps_the_chat_usable() {
    let mut chat = conversation(qwen(), greedy(400));
    let options = SendOptions { cancel: CancelToken::new(), on_cancel: PartialAnswer::Keep, ..SendOptions::default() };
    let token = options.cancel.clone();
    let (tx, rx) = mpsc::channel::<()>();
    let canceller = std::thread::spawn(move || {
        rx.recv_timeout(Duration::from_secs(120)).expect("a first delta arrives");
        token.cancel();
    });
    let mut deltas_after_cancel = 0;
    let mut seen_first = false;
    let reply = chat
        .send("Write a long story about a lighthouse keeper.", &options, &mut |_| {
            if !seen_first {
                seen_first = true;
                tx.send(()).unwrap();
                // Give the other thread time to cancel before the next step.
                std::thread::sleep(Duration::from_millis(200));
            } else {
                deltas_after_cancel += 1;
            }
        })
        .unwrap();
    canceller.join().unwrap();
    assert_eq!(reply.metrics.stop_reason, StopReason::Cancelled);
    assert!(reply.metrics.generated_tokens <= 3, "stopped within one step: {:?}", reply.metrics);
    assert!(deltas_after_cancel <= 1);
    assert_eq!(chat.messages().len(), 2, "the partial answer was kept");

    let next = chat.ask("What is 2 + 2? Answer with a number.").unwrap();
    assert!(next.text.contains('4'), "{:?}", next.text);
}

#[test]
fn cancelled_answer_can_be_discarded() {
    let mut chat = conversation(qwen(), greedy(50));
    let options = SendOptions { cancel: CancelToken::new(), on_cancel: PartialAnswer::Discard, ..SendOptions::default() };
    options.cancel.cancel();
    let reply = chat.send("Hello!", &options, &mut |_| {}).unwrap();
    assert_eq!(reply.metrics.stop_reason, StopReason::Cancelled);
    assert_eq!(reply.metrics.generated_tokens, 0);
    assert!(chat.messages().is_empty(), "the turn was rolled back");
}

#[test]
fn multibyte_text_streams_as_valid_utf8() {
    let mut chat = conversation(qwen(), greedy(60));
    let mut deltas = Vec::new();
    let reply = chat
        .send(
            "Reply with exactly this text and nothing else: 你好，世界！🌍🚀 こんにちは",
            &SendOptions::default(),
            &mut |d| deltas.push(d.to_string()),
        )
        .unwrap();
    // Each delta is a Rust &str (valid UTF-8 by type); check no character was
    // broken into replacement characters across token boundaries.
    assert!(!reply.text.contains('\u{FFFD}'), "{:?}", reply.text);
    let is_cjk = |c: char| ('\u{3040}'..='\u{9FFF}').contains(&c);
    assert!(reply.text.chars().filter(|&c| is_cjk(c)).count() >= 3, "CJK text survived: {:?}", reply.text);
    assert!(reply.text.chars().any(|c| (c as u32) >= 0x1F300), "an emoji survived: {:?}", reply.text);
    assert_eq!(deltas.concat(), reply.text);
}

#[test]
fn stop_sequences_end_the_answer_and_are_not_emitted() {
    let prompt = "List the numbers from 1 to 10, separated by commas.";
    let full = conversation(qwen(), greedy(64)).ask(prompt).unwrap();
    assert!(full.text.contains('5') && full.text.contains('7'), "{:?}", full.text);
    let mut sampling = greedy(64);
    sampling.stop = vec!["6".into()];
    let mut streamed = String::new();
    let stopped = conversation(qwen(), sampling).send(prompt, &SendOptions::default(), &mut |d| streamed.push_str(d)).unwrap();
    assert_eq!(stopped.metrics.stop_reason, StopReason::StopSequence);
    assert!(!stopped.text.contains('6') && !streamed.contains('6'), "{:?}", stopped.text);
    assert!(stopped.text.contains('5'));
    assert_eq!(stopped.text, full.text[..full.text.find('6').unwrap()]);
}

#[test]
fn same_seed_same_answer() {
    let sampling = SamplingParams { temperature: 1.0, seed: Some(1234), max_tokens: 24, ..SamplingParams::default() };
    let a = conversation(qwen(), sampling.clone()).ask("Invent a name for a cat.").unwrap();
    let b = conversation(qwen(), sampling).ask("Invent a name for a cat.").unwrap();
    assert_eq!(a.text, b.text);
    assert!(!a.text.is_empty());
}

#[test]
fn max_tokens_limits_the_answer() {
    let reply = conversation(qwen(), greedy(5)).ask("Write a poem about the sea.").unwrap();
    assert_eq!(reply.metrics.stop_reason, StopReason::MaxTokens);
    assert_eq!(reply.metrics.generated_tokens, 5);
}

#[test]
fn invalid_sampling_values_are_typed_errors() {
    let cases = [
        SamplingParams { temperature: -0.1, ..Default::default() },
        SamplingParams { temperature: f32::NAN, ..Default::default() },
        SamplingParams { top_p: 0.0, ..Default::default() },
        SamplingParams { top_p: 1.5, ..Default::default() },
        SamplingParams { min_p: -0.5, ..Default::default() },
        SamplingParams { repeat_penalty: 0.0, ..Default::default() },
        SamplingParams { max_tokens: 0, ..Default::default() },
        SamplingParams { stop: vec![String::new()], ..Default::default() },
    ];
    for sampling in cases {
        let err = Conversation::new(qwen(), ConversationOptions { sampling: sampling.clone(), ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::InvalidSampling { .. }), "{sampling:?} gave {err}");
    }
    let mut chat = conversation(qwen(), greedy(4));
    let err = chat.set_sampling(SamplingParams { top_p: 2.0, ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("top_p"), "{err}");
}

#[test]
fn invalid_context_options_are_typed_errors() {
    let too_long = ConversationOptions { context_length: Some(1 << 20), ..Default::default() };
    assert!(matches!(Conversation::new(qwen(), too_long), Err(Error::InvalidOption { name: "context_length", .. })));
    let no_threads = ConversationOptions { threads: Some(0), ..Default::default() };
    assert!(matches!(Conversation::new(qwen(), no_threads), Err(Error::InvalidOption { name: "threads", .. })));
}

#[test]
fn prompt_longer_than_the_context_is_a_typed_error_and_changes_nothing() {
    let options = ConversationOptions { context_length: Some(64), threads: Some(2), sampling: greedy(4), ..Default::default() };
    let mut chat = Conversation::new(qwen(), options).unwrap();
    let long = "word ".repeat(200);
    let err = chat.ask(&long).unwrap_err();
    assert!(matches!(err, Error::ContextOverflow { context_length: 64, .. }), "{err}");
    assert!(chat.messages().is_empty());
    assert!(chat.ask("Hi").is_ok(), "still usable");
}

#[test]
fn drop_oldest_policy_keeps_the_system_prompt_and_fits() {
    let options = ConversationOptions {
        context_length: Some(128),
        threads: Some(2),
        system_prompt: Some("You are terse.".into()),
        sampling: greedy(8),
        overflow: OverflowPolicy::DropOldest,
        ..Default::default()
    };
    let mut chat = Conversation::new(qwen(), options).unwrap();
    for i in 0..8 {
        chat.ask(&format!("Remember the number {i}. Reply OK.")).unwrap();
    }
    assert_eq!(chat.messages()[0], Message::system("You are terse."));
    assert!(chat.messages().len() < 17, "old turns were dropped: {}", chat.messages().len());
    assert_eq!(chat.messages()[chat.messages().len() - 2], Message::user("Remember the number 7. Reply OK."));
}

#[test]
fn concurrent_conversations_on_one_model_do_not_interfere() {
    let expected = conversation(qwen(), greedy(16)).ask("What is the capital of Italy?").unwrap().text;
    let handles: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(|| {
                let mut chat = Conversation::new(
                    qwen(),
                    ConversationOptions { context_length: Some(512), threads: Some(1), sampling: greedy(16), ..Default::default() },
                )
                .unwrap();
                chat.ask("What is the capital of Italy?").unwrap().text
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), expected);
    }
    assert!(expected.contains("Rome"), "{expected:?}");
}

#[test]
fn gemma3_sliding_window_cache_reuses_only_what_it_still_holds() {
    // Plain completion on the base model: each turn appends to the document.
    let mut chat = conversation(gemma(), greedy(4));
    chat.ask("Monday, Tuesday,").unwrap();
    let second = chat.ask(" Friday, Saturday,").unwrap();
    assert!(second.metrics.prompt_tokens_reused > 0, "within the 512-token window the prefix is reused: {:?}", second.metrics);

    // The SWA layers hold window + batch = 1024 cells. After a 1300-token
    // turn they have forgotten the first positions. Appending still reuses the
    // cache (new tokens only look 512 back), but going back to a short prefix
    // cannot: the engine re-evaluates instead of answering from a broken
    // cache, and the greedy answer equals a fresh evaluation's.
    let options = || ConversationOptions { context_length: Some(2048), threads: Some(2), sampling: greedy(6), ..Default::default() };
    let unit = "one two three four five six seven eight nine ten ";
    let long = unit.repeat(130);
    let short = format!("{} eleven", unit.repeat(3));
    let mut chat = Conversation::new(gemma(), options()).unwrap();
    let first = chat.ask(&long).unwrap();
    assert!(first.metrics.prompt_tokens_evaluated > 1100, "{:?}", first.metrics);
    let appended = chat.ask(" eleven twelve").unwrap();
    assert!(appended.metrics.prompt_tokens_reused > 1100, "{:?}", appended.metrics);
    chat.set_messages(Vec::new());
    let edited = chat.ask(&short).unwrap();
    assert_eq!(edited.metrics.prompt_tokens_reused, 0, "{:?}", edited.metrics);
    let expected = Conversation::new(gemma(), options()).unwrap().ask(&short).unwrap();
    assert_eq!(edited.text, expected.text);

    // With the full SWA cache nothing is forgotten, so the shared prefix is reused.
    let mut full = Conversation::new(gemma(), ConversationOptions { full_swa_cache: true, ..options() }).unwrap();
    full.ask(&long).unwrap();
    full.set_messages(Vec::new());
    let reused = full.ask(&short).unwrap();
    assert!(reused.metrics.prompt_tokens_reused > 20, "{:?}", reused.metrics);
    assert_eq!(reused.text, expected.text);
}

#[test]
fn regenerate_without_a_user_message_is_a_typed_error_and_changes_nothing() {
    let mut chat = Conversation::new(
        qwen(),
        ConversationOptions {
            context_length: Some(256),
            threads: Some(2),
            system_prompt: Some("Be brief.".into()),
            sampling: greedy(4),
            ..Default::default()
        },
    )
    .unwrap();
    let err = chat.regenerate(&SendOptions::default(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::InvalidOption { name: "regenerate", .. }), "{err}");
    assert_eq!(chat.messages(), &[Message::system("Be brief.")]);
}
