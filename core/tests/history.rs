//! Nothing the user typed or saw is lost: what the history holds after
//! interrupted, discarded, regenerated and failed answers.

mod common;

use std::time::Instant;

use common::{conversation, greedy, qwen};
use pocketlm::{CancelToken, Error, Message, PartialAnswer, Role, SendOptions, StopReason};

fn discard() -> SendOptions {
    SendOptions { cancel: CancelToken::new(), on_cancel: PartialAnswer::Discard, ..SendOptions::default() }
}

#[test]
fn a_discarded_regenerate_keeps_the_user_turn_and_the_previous_answer() {
    let mut chat = conversation(qwen(), greedy(12));
    chat.ask("What is the capital of France?").unwrap();
    let history = chat.messages().to_vec();
    assert_eq!(history.len(), 2);

    // Cancelled before any text, discarded.
    let options = discard();
    options.cancel.cancel();
    let reply = chat.regenerate(&options, &mut |_| {}).unwrap();
    assert_eq!(reply.metrics.stop_reason, StopReason::Cancelled);
    assert_eq!(chat.messages(), &history[..], "the user turn and the previous answer survive");

    // A deadline already past stops the same way.
    let options = SendOptions { deadline: Some(Instant::now()), ..discard() };
    let reply = chat.regenerate(&options, &mut |_| {}).unwrap();
    assert_eq!(reply.metrics.stop_reason, StopReason::Deadline);
    assert_eq!(chat.messages(), &history[..]);

    // Cancelled before any text, kept (what the apps' stop button does): the previous answer stays too.
    let options = SendOptions { cancel: CancelToken::new(), on_cancel: PartialAnswer::Keep, ..SendOptions::default() };
    options.cancel.cancel();
    let reply = chat.regenerate(&options, &mut |_| {}).unwrap();
    assert_eq!((reply.metrics.stop_reason, reply.text.as_str()), (StopReason::Cancelled, ""));
    assert_eq!(chat.messages(), &history[..], "nothing shown, nothing lost");

    // A completed regenerate replaces the answer.
    let again = chat.regenerate(&SendOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(chat.messages().len(), 2);
    assert_eq!(chat.messages()[1].content, again.text);
}

#[test]
fn cancelling_during_the_prefill_with_keep_adds_no_empty_answer_and_keeps_what_was_typed() {
    let mut chat = conversation(qwen(), greedy(16));
    let options = SendOptions { cancel: CancelToken::new(), on_cancel: PartialAnswer::Keep, ..SendOptions::default() };
    options.cancel.cancel();
    let reply = chat.send("What is the capital of France?", &options, &mut |_| {}).unwrap();
    assert_eq!((reply.metrics.stop_reason, reply.text.as_str()), (StopReason::Cancelled, ""));
    assert_eq!(chat.messages(), &[Message::user("What is the capital of France?")], "no empty assistant turn");

    // Regenerate answers the kept message.
    let answer = chat.regenerate(&SendOptions::default(), &mut |_| {}).unwrap();
    assert!(answer.text.contains("Paris"), "{}", answer.text);
    assert_eq!(chat.messages().len(), 2);
}

#[test]
fn a_message_sent_after_an_unanswered_one_joins_it_so_roles_still_alternate() {
    let mut chat = conversation(qwen(), greedy(16));
    let options = SendOptions { cancel: CancelToken::new(), on_cancel: PartialAnswer::Keep, ..SendOptions::default() };
    options.cancel.cancel();
    chat.send("My name is Ada.", &options, &mut |_| {}).unwrap();
    chat.send("What is my name?", &SendOptions::default(), &mut |_| {}).unwrap();
    let roles: Vec<Role> = chat.messages().iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant]);
    assert_eq!(chat.messages()[0].content, "My name is Ada.\n\nWhat is my name?");
}

#[test]
fn an_error_after_text_was_shown_returns_that_text_and_keeps_it() {
    let mut chat = conversation(qwen(), greedy(40));
    chat.inject_decode_failure_after(Some(4));
    let mut shown = String::new();
    let err = chat.send("Count from one to twenty in words.", &SendOptions::default(), &mut |d| shown.push_str(d)).unwrap_err();
    let Error::AnswerFailed { partial_text, cause } = &err else { panic!("expected AnswerFailed, got {err}") };
    assert!(!shown.is_empty(), "some text streamed before the failure");
    assert_eq!(partial_text, &shown, "the error carries exactly what was shown");
    assert!(matches!(**cause, Error::Inference(_)), "{cause}");
    assert_eq!(
        chat.messages(),
        &[Message::user("Count from one to twenty in words."), Message::assistant(shown.clone())],
        "the history keeps what the user typed and saw"
    );

    // With Discard, the same failure rolls the turn back but still returns the text.
    let mut shown = String::new();
    let err = chat.send("Count from one to ten in French.", &discard(), &mut |d| shown.push_str(d)).unwrap_err();
    assert!(matches!(&err, Error::AnswerFailed { partial_text, .. } if *partial_text == shown && !shown.is_empty()), "{err}");
    assert_eq!(chat.messages().len(), 2, "rolled back to the previous turn");

    // An error before any text changes nothing and is not wrapped.
    chat.inject_decode_failure_after(None);
    let long = "word ".repeat(5000);
    let err = chat.send(&long, &SendOptions::default(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::ContextOverflow { .. }), "{err}");
    assert_eq!(chat.messages().len(), 2);
}

#[test]
fn editing_the_last_message_replaces_the_turn_and_a_failure_before_any_text_keeps_the_old_one() {
    let mut chat = conversation(qwen(), greedy(12));
    chat.ask("What is the capital of France?").unwrap();
    let history = chat.messages().to_vec();

    // An edit too long for the context fails before any text.
    let edited = chat.edit_last_events(&"word ".repeat(20_000), &SendOptions::default(), &mut |_| {});
    assert!(matches!(edited, Err(Error::ContextOverflow { .. })), "{edited:?}");
    assert_eq!(chat.messages(), &history[..], "the old question and answer survive");

    let reply = chat.edit_last_events("What is the capital of Italy?", &SendOptions::default(), &mut |_| {}).unwrap();
    assert!(reply.text.contains("Rome"), "{}", reply.text);
    assert_eq!(chat.messages().len(), 2);
    assert_eq!(chat.messages()[0], Message::user("What is the capital of Italy?"));
}
