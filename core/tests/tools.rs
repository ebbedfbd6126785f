//! Tool calling on the real models: calls rendered through each model's own
//! template (Qwen's Hermes tags, PocketLM's generic convention for Gemma 3),
//! constrained once the model opens a call, answered by hand or by handlers,
//! with the history left consistent whatever happens. Also partial JSON
//! snapshots while a structured answer streams.

mod common;

use common::{conversation, gemma, greedy, qwen};
use pocketlm::{ChatEvent, Constraint, Error, Role, SendOptions, Tool, ToolCall, ToolChoice, ToolFormat, ToolResult};
use serde_json::{json, Value};

fn weather() -> Tool {
    Tool::new(
        "get_weather",
        "Get the current weather for a city.",
        json!({
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
            },
            "required": ["city", "unit"],
            "additionalProperties": false
        }),
    )
}

fn timer() -> Tool {
    Tool::new(
        "set_timer",
        "Start a countdown timer.",
        json!({
            "type": "object",
            "properties": {"minutes": {"type": "integer", "minimum": 1, "maximum": 180}},
            "required": ["minutes"],
            "additionalProperties": false
        }),
    )
}

fn with_tools(choice: ToolChoice) -> SendOptions {
    SendOptions { tools: vec![weather(), timer()], tool_choice: choice, ..SendOptions::default() }
}

fn assert_valid(call: &ToolCall) {
    match call.name.as_str() {
        "get_weather" => {
            assert!(call.arguments["city"].is_string(), "{call:?}");
            assert!(["celsius", "fahrenheit"].contains(&call.arguments["unit"].as_str().unwrap_or("")), "{call:?}");
        }
        "set_timer" => {
            let minutes = call.arguments["minutes"].as_i64().expect("integer minutes");
            assert!((1..=180).contains(&minutes), "{call:?}");
        }
        other => panic!("unknown tool {other}"),
    }
}

#[test]
fn each_template_gets_its_own_call_format() {
    assert_eq!(qwen().tool_format(), ToolFormat::Hermes);
    assert_eq!(gemma().tool_format(), ToolFormat::Generic);
}

#[test]
fn a_manual_round_trip_calls_then_answers_from_the_result() {
    let mut chat = conversation(qwen(), greedy(120));
    let mut events = Vec::new();
    let mut shown = String::new();
    let reply = chat
        .send_events("What is the weather in Paris right now, in celsius?", &with_tools(ToolChoice::Auto), &mut |e| match e {
            ChatEvent::Text(t) => shown.push_str(t),
            ChatEvent::ToolCall(c) => events.push(c.clone()),
            _ => {}
        })
        .unwrap();
    assert_eq!(reply.tool_calls.len(), 1, "one call: {reply:?}");
    let call = &reply.tool_calls[0];
    assert_eq!(call.name, "get_weather");
    assert_eq!(call.arguments["city"], "Paris");
    assert_valid(call);
    assert_eq!(events, reply.tool_calls, "the call was streamed as it was decided");
    assert!(!shown.contains("<tool_call>") && !reply.text.contains("tool_call"), "markup never shown: {shown:?}");
    let last = chat.messages().last().unwrap();
    assert_eq!((last.role, &last.tool_calls), (Role::Assistant, &reply.tool_calls), "the history holds the call");

    let result = ToolResult {
        call_id: call.id.clone(),
        name: call.name.clone(),
        content: json!({"temperature": 18, "condition": "sunny"}).to_string(),
        is_error: false,
    };
    // `none`: the answer must be text now (a 0.5B model otherwise tends to call again).
    let answer = chat.send_tool_results(&[result], &with_tools(ToolChoice::None), &mut |_| {}).unwrap();
    assert!(answer.tool_calls.is_empty(), "{answer:?}");
    assert!(answer.text.contains("18"), "the answer uses the result: {:?}", answer.text);
    let roles: Vec<Role> = chat.messages().iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool, Role::Assistant]);
    assert!(answer.metrics.prompt_tokens_reused > 0, "the KV cache was reused: {:?}", answer.metrics);
}

#[test]
fn automatic_tool_use_runs_handlers_and_continues() {
    let mut chat = conversation(qwen(), greedy(120));
    let mut seen = Vec::new();
    let mut results = Vec::new();
    let reply = chat
        .respond_with_tools(
            "Set a timer for 25 minutes.",
            &with_tools(ToolChoice::Required),
            &mut |call| {
                seen.push(call.clone());
                Ok(json!({"ok": true, "minutes": call.arguments["minutes"]}).to_string())
            },
            &mut |e| {
                if let ChatEvent::ToolResult(r) = e {
                    results.push(r.clone());
                }
            },
        )
        .unwrap();
    assert!(!seen.is_empty());
    assert_eq!(seen[0].name, "set_timer");
    assert_eq!(seen[0].arguments["minutes"], 25);
    // Every handler call has its result; a repeated call gets an error result without running the handler.
    assert_eq!(results.iter().filter(|r| !r.is_error).count(), seen.len(), "{results:?}");
    assert!(reply.tool_calls.is_empty() && !reply.text.is_empty(), "a final answer in text: {reply:?}");
    assert_eq!(chat.messages().last().unwrap().role, Role::Assistant);
}

#[test]
fn a_handler_error_goes_back_to_the_model_and_a_round_limit_is_typed() {
    let mut chat = conversation(qwen(), greedy(80));
    let options = SendOptions { max_tool_rounds: Some(0), ..with_tools(ToolChoice::Tool("get_weather".into())) };
    let before = chat.messages().len();
    let err = chat.respond_with_tools("Weather in Rome, in celsius?", &options, &mut |_| Ok("{}".into()), &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::ToolRoundsExceeded { rounds: 0 }), "{err}");
    // The unanswered call is not kept: the history ends with the user's message.
    assert_eq!(chat.messages().len(), before + 1);
    assert_eq!(chat.messages().last().unwrap().role, Role::User);

    let mut chat = conversation(qwen(), greedy(80));
    let mut failed = Vec::new();
    let options = with_tools(ToolChoice::Tool("get_weather".into()));
    let reply = chat
        .respond_with_tools("Weather in Rome, in celsius?", &options, &mut |_| Err("the weather service is down".into()), &mut |e| {
            if let ChatEvent::ToolResult(r) = e {
                failed.push(r.clone());
            }
        })
        .unwrap_or_else(|e| panic!("a failing handler is an outcome, not an error: {e}"));
    assert!(failed[0].is_error && failed[0].content.contains("down"), "{failed:?}");
    assert!(reply.tool_calls.is_empty() || chat.messages().last().unwrap().role == Role::Assistant);
}

#[test]
fn a_forced_named_call_is_made_and_none_means_text() {
    let mut chat = conversation(qwen(), greedy(80));
    let reply = chat.send("Hello there!", &with_tools(ToolChoice::Tool("set_timer".into())), &mut |_| {}).unwrap();
    assert_eq!(reply.tool_calls.len(), 1);
    assert_eq!(reply.tool_calls[0].name, "set_timer");
    assert_valid(&reply.tool_calls[0]);

    let mut chat = conversation(qwen(), greedy(40));
    let reply = chat.send("What is the weather in Oslo, in celsius?", &with_tools(ToolChoice::None), &mut |_| {}).unwrap();
    assert!(reply.tool_calls.is_empty(), "{reply:?}");
}

#[test]
fn a_call_cut_off_by_the_token_limit_is_a_typed_error_never_text() {
    let mut chat = conversation(qwen(), greedy(6));
    let mut shown = String::new();
    let err = chat
        .send_events("Weather in Rome, in celsius?", &with_tools(ToolChoice::Tool("get_weather".into())), &mut |e| {
            if let ChatEvent::Text(t) = e {
                shown.push_str(t)
            }
        })
        .unwrap_err();
    match &err {
        Error::StructuredOutputIncomplete { partial_text, stop_reason } => {
            assert!(partial_text.starts_with('{') && stop_reason.contains("max_tokens"), "{err:?}")
        }
        other => panic!("expected StructuredOutputIncomplete, got {other:?}"),
    }
    assert!(shown.is_empty(), "the call's JSON is never shown as text: {shown:?}");
    assert!(chat.messages().is_empty(), "nothing was shown, so the turn is rolled back");
}

#[test]
fn the_generic_convention_works_on_a_template_without_tools() {
    let mut chat = conversation(gemma(), greedy(80));
    let reply = chat.send("Set a timer for 10 minutes.", &with_tools(ToolChoice::Required), &mut |_| {}).unwrap();
    assert_eq!(reply.tool_calls.len(), 1, "{reply:?}");
    assert_valid(&reply.tool_calls[0]);
    let call = reply.tool_calls[0].clone();
    let result = ToolResult { call_id: call.id, name: call.name, content: "{\"ok\": true}".into(), is_error: false };
    // The result goes back as a user turn the template accepts.
    // `none`: the answer must be text now (a 0.5B model otherwise tends to call again).
    let answer = chat.send_tool_results(&[result], &with_tools(ToolChoice::None), &mut |_| {}).unwrap();
    assert!(!answer.text.is_empty() || !answer.tool_calls.is_empty());
}

#[test]
fn bad_tool_declarations_and_results_are_refused_before_any_work() {
    let mut chat = conversation(qwen(), greedy(8));
    let dup = SendOptions { tools: vec![weather(), weather()], ..SendOptions::default() };
    let err = chat.send("hi", &dup, &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::InvalidConstraint { ref detail } if detail.contains("twice")), "{err}");
    let unknown = SendOptions { tool_choice: ToolChoice::Tool("nope".into()), ..with_tools(ToolChoice::Auto) };
    assert!(chat.send("hi", &unknown, &mut |_| {}).is_err());
    let both = SendOptions { constraint: Some(Constraint::JsonObject), ..with_tools(ToolChoice::Auto) };
    assert!(matches!(chat.send("hi", &both, &mut |_| {}), Err(Error::InvalidConstraint { .. })));
    assert!(chat.messages().is_empty(), "nothing was added: {:?}", chat.messages());
    // Results with no calls to answer.
    let stray = ToolResult { call_id: "call_x".into(), name: "get_weather".into(), content: "{}".into(), is_error: false };
    assert!(matches!(chat.send_tool_results(&[stray], &SendOptions::default(), &mut |_| {}), Err(Error::InvalidOption { .. })));
}

#[test]
fn a_streaming_json_answer_sends_growing_snapshots() {
    let mut chat = conversation(qwen(), greedy(120));
    let options = SendOptions {
        constraint: Some(Constraint::JsonSchema {
            schema: json!({
                "type": "object",
                "properties": {"title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
                "required": ["title", "tags"],
                "additionalProperties": false
            }),
        }),
        ..SendOptions::default()
    };
    let mut snapshots: Vec<Value> = Vec::new();
    let reply = chat
        .send_events("Give a title and tags for a blog post about baking sourdough bread.", &options, &mut |e| {
            if let ChatEvent::Snapshot(v) = e {
                snapshots.push(v.clone());
            }
        })
        .unwrap();
    assert!(snapshots.len() > 3, "several snapshots: {snapshots:?}");
    assert!(snapshots.iter().all(Value::is_object));
    let Some(pocketlm::Structured::Json { value }) = &reply.structured else { panic!("{reply:?}") };
    assert_eq!(snapshots.last(), Some(value), "the last snapshot is the value");
    // A title is shown while it is being written.
    assert!(snapshots.iter().any(|s| s.get("title").is_some_and(|t| t != &value["title"])), "{snapshots:?}");
}

/// Experiment (run with `--ignored --nocapture`): after one finished call,
/// does the model open a second one? The answer starts with a complete Paris
/// call already written (decoded, not shown); the model then samples freely,
/// with the engine ready to constrain a second call if one opens. Any call it
/// makes must be valid; what it does is printed. Result on 2026-12-02: both
/// Qwen Coder models write a newline and end the answer (docs/structured.md).
#[test]
#[ignore = "experiment on the 0.5B and 1.5B models; run with --ignored --nocapture"]
fn experiment_after_one_call_the_model_may_open_a_second() {
    let first = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>";
    let big = pocketlm::Model::load(common::model_path("qwen2.5-coder-1.5b-instruct-q4.gguf"), &pocketlm::ModelOptions::default()).unwrap();
    for (label, model) in [("0.5B", qwen()), ("1.5B", &big)] {
        let mut chat = conversation(model, greedy(96));
        chat.inject_answer_prefix(Some(first.into()));
        let mut raw = String::new();
        let reply = chat
            .send_events("What's the weather in Paris and in Rome, both in celsius?", &with_tools(ToolChoice::Auto), &mut |e| {
                if let ChatEvent::Text(t) = e {
                    raw.push_str(t)
                }
            })
            .unwrap();
        reply.tool_calls.iter().for_each(assert_valid);
        println!("{label}: second calls {:?}; text after the first call {raw:?}; stop {:?}", reply.tool_calls, reply.metrics.stop_reason);
    }
}
