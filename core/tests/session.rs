//! Saved conversations on the real model: a restored conversation continues
//! exactly where the saved one was, evaluating only the new tokens; files
//! that do not match, are cut short, damaged or forged are typed errors that
//! leave the conversation as it was, and the transcript can still be restored.

mod common;

use std::path::{Path, PathBuf};

use common::{conversation, gemma, greedy, qwen};
use pocketlm::session_file::{parse_session, write_session};
use pocketlm::{Conversation, ConversationOptions, Error, Message, SendOptions, SessionErrorKind};

fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pocketlm-session-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn kind(e: Error) -> SessionErrorKind {
    match e {
        Error::Session { kind, .. } => kind,
        other => panic!("expected a session error, got {other}"),
    }
}

/// A conversation with one answered turn, saved to `path`.
fn saved(path: &Path) -> Conversation {
    let mut chat = conversation(qwen(), greedy(24));
    chat.send("Name three primary colours.", &SendOptions::default(), &mut |_| {}).unwrap();
    let saved = chat.save(path).unwrap();
    assert_eq!(saved.messages, 2);
    assert!(saved.cached_tokens > 20, "the answered turn is cached: {saved:?}");
    assert_eq!(saved.file_bytes, std::fs::metadata(path).unwrap().len());
    chat
}

#[test]
fn a_restored_conversation_continues_exactly_and_evaluates_only_the_new_turn() {
    let path = temp_file("continue.session");
    let mut original = saved(&path);
    let expected = original.send("Which of them is warmest?", &SendOptions::default(), &mut |_| {}).unwrap();

    // A new context, as after an app kill (the same model file).
    let mut restored = conversation(qwen(), greedy(24));
    let info = restored.restore(&path).unwrap();
    assert_eq!(info.messages, 2);
    assert!(info.cached_tokens > 20);
    assert_eq!(restored.messages()[0], Message::user("Name three primary colours."));
    let reply = restored.send("Which of them is warmest?", &SendOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(reply.text, expected.text, "greedy decoding after a restore gives the same answer");
    assert_eq!(reply.metrics.prompt_tokens_reused, info.cached_tokens, "the whole saved cache is reused");
    assert_eq!(reply.metrics.prompt_tokens_evaluated, expected.metrics.prompt_tokens_evaluated);
    assert!(reply.metrics.prompt_tokens_evaluated < 30, "{:?}", reply.metrics);
}

#[test]
fn gemma_with_sliding_window_layers_restores_too() {
    let path = temp_file("gemma.session");
    let mut original = conversation(gemma(), greedy(16));
    original.send("The capital of France is", &SendOptions::default(), &mut |_| {}).unwrap();
    original.save(&path).unwrap();
    let expected = original.send("And of Spain?", &SendOptions::default(), &mut |_| {}).unwrap();
    let mut restored = conversation(gemma(), greedy(16));
    let info = restored.restore(&path).unwrap();
    let reply = restored.send("And of Spain?", &SendOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(reply.text, expected.text);
    assert_eq!(reply.metrics.prompt_tokens_reused, info.cached_tokens);
}

#[test]
fn a_file_from_other_settings_or_another_model_is_refused_but_its_transcript_restores() {
    let path = temp_file("mismatch.session");
    saved(&path);

    let mut longer = Conversation::new(
        qwen(),
        ConversationOptions { context_length: Some(2048), threads: Some(2), sampling: greedy(8), ..Default::default() },
    )
    .unwrap();
    let e = longer.restore(&path).unwrap_err();
    assert_eq!(kind(e.clone()), SessionErrorKind::SettingsMismatch, "{e}");
    assert!(longer.messages().is_empty(), "a refused restore changes nothing");
    let (restored, why) = longer.restore_or_transcript(&path).unwrap();
    assert_eq!((restored.messages, restored.cached_tokens), (2, 0));
    assert_eq!(kind(why.unwrap()), SessionErrorKind::SettingsMismatch);
    let reply = longer.send("And the coldest?", &SendOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(reply.metrics.prompt_tokens_reused, 0, "the transcript alone is re-read");
    assert!(reply.metrics.prompt_tokens_evaluated > 30);

    let mut other = conversation(gemma(), greedy(8));
    let e = other.restore(&path).unwrap_err();
    assert_eq!(kind(e.clone()), SessionErrorKind::ModelMismatch, "{e}");
    assert!(e.to_string().contains("restore the transcript"), "the message says what to do: {e}");
    other.restore_transcript(&path).unwrap();
    assert_eq!(other.messages().len(), 2);
    other.send("And the coldest?", &SendOptions::default(), &mut |_| {}).unwrap();
}

#[test]
fn a_cut_or_damaged_file_is_a_typed_error_and_the_conversation_stays_usable() {
    let path = temp_file("damaged.session");
    saved(&path);
    let bytes = std::fs::read(&path).unwrap();
    let mut chat = conversation(qwen(), greedy(8));

    // Cut in the state: the transcript survives.
    let cut = temp_file("cut.session");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    assert_eq!(kind(chat.restore(&cut).unwrap_err()), SessionErrorKind::StateCorrupt);
    assert_eq!(chat.restore_transcript(&cut).unwrap().messages, 2);

    // A flipped bit in the state.
    let flipped = temp_file("flipped.session");
    let mut damaged = bytes.clone();
    let middle = bytes.len() - 5000;
    damaged[middle] ^= 0x10;
    std::fs::write(&flipped, &damaged).unwrap();
    assert_eq!(kind(chat.restore(&flipped).unwrap_err()), SessionErrorKind::StateCorrupt);

    // Cut in the header: nothing is usable.
    let short = temp_file("short.session");
    std::fs::write(&short, &bytes[..100]).unwrap();
    assert_eq!(kind(chat.restore(&short).unwrap_err()), SessionErrorKind::Corrupt);
    assert_eq!(kind(chat.restore_transcript(&short).unwrap_err()), SessionErrorKind::Corrupt);

    // Not a session at all, or no file.
    assert_eq!(kind(chat.restore(&common::model_path(common::QWEN_FILE)).unwrap_err()), SessionErrorKind::NotASession);
    assert_eq!(kind(chat.restore(&temp_file("missing.session")).unwrap_err()), SessionErrorKind::NotFound);

    // After all that, the conversation still answers.
    chat.send("Hello", &SendOptions::default(), &mut |_| {}).unwrap();
}

#[test]
fn a_forged_state_with_valid_digests_is_refused_by_llama_cpp_without_aborting() {
    let path = temp_file("forged-source.session");
    saved(&path);
    let (header, payload) = parse_session(&std::fs::read(&path).unwrap()).unwrap();
    let payload = payload.unwrap();
    let mut chat = conversation(qwen(), greedy(8));

    let forge = |name: &str, tokens: Vec<i32>, state: Vec<u8>| {
        let out = temp_file(name);
        let mut bytes = Vec::new();
        write_session(&mut bytes, &header, &pocketlm::session_file::SessionPayload { tokens, state }).unwrap();
        std::fs::write(&out, bytes).unwrap();
        out
    };
    // The state cut in half, re-signed.
    let half = forge("half.session", payload.tokens.clone(), payload.state[..payload.state.len() / 2].to_vec());
    assert_eq!(kind(chat.restore(&half).unwrap_err()), SessionErrorKind::StateRejected);
    // Garbage of the right length.
    let garbage = forge("garbage.session", payload.tokens.clone(), vec![0xA5; payload.state.len()]);
    assert_eq!(kind(chat.restore(&garbage).unwrap_err()), SessionErrorKind::StateRejected);
    // A token list that disagrees with the state.
    let fewer = forge("fewer.session", payload.tokens[..payload.tokens.len() - 3].to_vec(), payload.state.clone());
    assert_eq!(kind(chat.restore(&fewer).unwrap_err()), SessionErrorKind::StateRejected);
    // Tokens outside the vocabulary.
    let alien = forge("alien.session", payload.tokens.iter().map(|_| i32::MAX).collect(), payload.state.clone());
    assert_eq!(kind(chat.restore(&alien).unwrap_err()), SessionErrorKind::StateRejected);

    assert!(chat.messages().is_empty());
    let reply = chat.send("Hello", &SendOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(reply.metrics.prompt_tokens_reused, 0, "a refused state leaves nothing in the cache");
}

#[test]
fn saving_replaces_the_file_atomically_and_reports_a_bad_directory() {
    let path = temp_file("atomic.session");
    let mut chat = saved(&path);
    chat.send("One more?", &SendOptions::default(), &mut |_| {}).unwrap();
    let second = chat.save(&path).unwrap();
    assert_eq!(second.messages, 4);
    let dir = path.parent().unwrap();
    let leftovers: Vec<_> =
        std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "no temporary file is left: {leftovers:?}");
    let summary = pocketlm::read_session_summary(&path).unwrap();
    assert_eq!(summary.messages.len(), 4);
    assert!(summary.saved_at > 0);

    let e = chat.save(&dir.join("no-such-dir").join("x.session")).unwrap_err();
    assert_eq!(kind(e), SessionErrorKind::Storage);
}

#[test]
fn an_empty_conversation_round_trips() {
    let path = temp_file("empty.session");
    let chat = Conversation::new(
        qwen(),
        ConversationOptions { context_length: Some(1024), threads: Some(2), system_prompt: Some("Be brief.".into()), ..Default::default() },
    )
    .unwrap();
    let saved = chat.save(&path).unwrap();
    assert_eq!((saved.messages, saved.cached_tokens), (1, 0));
    let mut restored = conversation(qwen(), greedy(8));
    assert_eq!(restored.restore(&path).unwrap().messages, 1);
    assert_eq!(restored.messages()[0], Message::system("Be brief."));
    restored.send("Hi", &SendOptions::default(), &mut |_| {}).unwrap();
}
