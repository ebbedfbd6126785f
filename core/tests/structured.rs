//! Structured output on the real model: answers constrained at decode time
//! by a JSON Schema, any JSON object, a GBNF or Lark grammar, or a choice
//! among fixed strings; constraints the engine cannot enforce are refused.

mod common;

use common::{conversation, greedy, qwen};
use pocketlm::{CancelToken, Constraint, Error, Role, SendOptions, StopReason, Structured};
use serde_json::{json, Value};

fn with(constraint: Constraint) -> SendOptions {
    SendOptions { constraint: Some(constraint), ..SendOptions::default() }
}

fn schema(schema: Value) -> SendOptions {
    with(Constraint::JsonSchema { schema })
}

fn json_of(reply: &pocketlm::Reply) -> &Value {
    match &reply.structured {
        Some(Structured::Json { value }) => value,
        other => panic!("no JSON value: {other:?} for {:?}", reply.text),
    }
}

#[test]
fn a_json_schema_answer_parses_and_validates() {
    let mut chat = conversation(qwen(), greedy(120));
    let options = schema(json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "city": {"type": "string", "enum": ["Paris", "Berlin", "Rome"]},
            "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 30}, "maxItems": 3}
        },
        "required": ["name", "age", "city", "hobbies"],
        "additionalProperties": false
    }));
    let mut streamed = String::new();
    let reply = chat
        .send("Extract the person: Marie is 34, lives in Paris and likes chess and running.", &options, &mut |d| streamed.push_str(d))
        .unwrap();
    assert_eq!(streamed, reply.text, "the JSON streams as text deltas");
    let value = json_of(&reply);
    let object = value.as_object().expect("an object");
    assert_eq!(object.len(), 4, "{value}");
    assert!(object["name"].as_str().is_some_and(|n| n.contains("Marie")), "{value}");
    let age = object["age"].as_i64().expect("an integer age");
    assert!((0..=150).contains(&age), "{value}");
    assert!(["Paris", "Berlin", "Rome"].contains(&object["city"].as_str().unwrap()), "{value}");
    assert!(object["hobbies"].as_array().is_some_and(|h| h.len() <= 3 && h.iter().all(Value::is_string)), "{value}");
    assert_eq!(chat.messages().last().unwrap().content, reply.text, "the history holds the JSON text");
}

#[test]
fn json_object_gives_an_object_and_a_constrained_turn_reuses_the_cache() {
    let mut chat = conversation(qwen(), greedy(60));
    let first = chat.send("Give the capital of France as JSON.", &with(Constraint::JsonObject), &mut |_| {}).unwrap();
    assert!(json_of(&first).is_object(), "{}", first.text);
    let second = chat.send("And of Italy?", &with(Constraint::JsonObject), &mut |_| {}).unwrap();
    assert!(json_of(&second).is_object(), "{}", second.text);
    assert!(second.metrics.prompt_tokens_reused > 20, "{:?}", second.metrics);
}

#[test]
fn a_choice_returns_one_option_with_every_options_probability() {
    let mut chat = conversation(qwen(), greedy(16));
    let options = ["Paris", "Berlin", "Madrid", "Rome"].map(String::from).to_vec();
    let mut deltas = Vec::new();
    let reply = chat
        .send("What is the capital of France?", &with(Constraint::Choice { options: options.clone() }), &mut |d| deltas.push(d.to_string()))
        .unwrap();
    assert_eq!(reply.text, "Paris");
    assert_eq!(deltas, ["Paris"]);
    let Some(Structured::Choice { index, probabilities }) = &reply.structured else { panic!("{:?}", reply.structured) };
    assert_eq!(*index, 0);
    assert_eq!(probabilities.len(), 4);
    assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{probabilities:?}");
    assert!(probabilities[0] > 0.5, "{probabilities:?}");
    assert_eq!(chat.messages().last().unwrap().content, "Paris");
    assert_eq!(chat.messages().last().unwrap().role, Role::Assistant);

    // The cache was rolled back to the prompt: the next turn still reuses it and answers.
    let next =
        chat.send("Is that answer correct?", &with(Constraint::Choice { options: vec!["yes".into(), "no".into()] }), &mut |_| {}).unwrap();
    assert!(next.text == "yes" || next.text == "no", "{}", next.text);
    assert!(next.metrics.prompt_tokens_reused > 10, "{:?}", next.metrics);
}

#[test]
fn gbnf_and_lark_grammars_shape_the_answer() {
    let mut chat = conversation(qwen(), greedy(20));
    let gbnf = Constraint::Gbnf { grammar: r#"root ::= "The answer is " [0-9]+ "." "#.into() };
    let reply = chat.send("What is 6 times 7?", &with(gbnf), &mut |_| {}).unwrap();
    let digits = reply.text.strip_prefix("The answer is ").and_then(|r| r.strip_suffix('.')).unwrap_or_else(|| panic!("{:?}", reply.text));
    assert!(!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()), "{:?}", reply.text);
    assert!(reply.structured.is_none());

    let lark = Constraint::Lark { grammar: r#"start: ("yes" | "no") "!""#.into() };
    let reply = chat.send("Is the sky blue?", &with(lark), &mut |_| {}).unwrap();
    assert!(reply.text == "yes!" || reply.text == "no!", "{:?}", reply.text);
}

#[test]
fn constraints_that_cannot_be_enforced_are_typed_errors_before_any_work() {
    let mut chat = conversation(qwen(), greedy(20));
    let cases = [
        (Constraint::JsonSchema { schema: json!([1, 2]) }, "not an array"),
        (Constraint::JsonSchema { schema: json!({"type": "strin"}) }, "strin"),
        (Constraint::JsonSchema { schema: json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true}) }, "uniqueItems"),
        (Constraint::Gbnf { grammar: "root ::= (".into() }, "gbnf"),
        (Constraint::Gbnf { grammar: "start ::= \"a\"".into() }, "root"),
        (Constraint::Lark { grammar: "start: undefined_rule".into() }, "undefined_rule"),
        (Constraint::Choice { options: vec![] }, "1 to 256 options"),
    ];
    for (constraint, named) in cases {
        let err = chat.send("Hello", &with(constraint.clone()), &mut |_| {}).unwrap_err();
        let Error::InvalidConstraint { detail } = &err else { panic!("{constraint:?}: {err:?}") };
        assert!(detail.contains(named), "{constraint:?}: {detail}");
        assert!(chat.messages().is_empty(), "nothing added for {constraint:?}");
    }
}

#[test]
fn a_value_cut_by_the_token_limit_is_a_typed_error_with_the_partial_text() {
    let mut chat = conversation(qwen(), greedy(6));
    let options = schema(json!({
        "type": "object",
        "properties": {"story": {"type": "string"}, "moral": {"type": "string"}},
        "required": ["story", "moral"]
    }));
    let mut shown = String::new();
    let err = chat.send("Write a long story about a lighthouse.", &options, &mut |d| shown.push_str(d)).unwrap_err();
    let Error::StructuredOutputIncomplete { partial_text, stop_reason } = &err else { panic!("{err:?}") };
    assert_eq!(partial_text, &shown);
    assert!(partial_text.starts_with('{'), "{partial_text}");
    assert_eq!(stop_reason, "max_tokens");
    // Like any answer that failed after text was shown, the history keeps what was shown.
    assert_eq!(chat.messages().last().unwrap().content, shown);
}

#[test]
fn a_cancelled_structured_answer_is_not_an_error() {
    let mut chat = conversation(qwen(), greedy(40));
    let cancel = CancelToken::new();
    cancel.cancel();
    let options = SendOptions { cancel, constraint: Some(Constraint::JsonObject), ..SendOptions::default() };
    let reply = chat.send("Give me JSON.", &options, &mut |_| {}).unwrap();
    assert_eq!(reply.metrics.stop_reason, StopReason::Cancelled);
    assert!(reply.structured.is_none());
}
