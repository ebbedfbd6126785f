//! The cloud client and the router against real HTTP servers on loopback that
//! fail on purpose: refused, hanging, 500, 429 with Retry-After, 401,
//! malformed and cut streams, a slow stream the caller cancels, and a circuit
//! breaker. Every test is bounded by short timeouts; none needs the network.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::http::{ok_stream, Behaviour, FaultServer, ENDLESS_LIMIT};
use common::{greedy, qwen};
use pocketlm::{
    AnsweredBy, CancelToken, CloudClient, CloudConfig, CloudErrorKind, ConfidenceOptions, Conversation, ConversationOptions, Error,
    Message, Pricing, Role, RouteEvent, RouteOptions, RoutePolicy, RouteReason, RoutedChat, RouterConfig, SamplingParams,
};

/// A client with quick timeouts and retries, so faults resolve in well under a second.
fn config(url: &str) -> CloudConfig {
    CloudConfig {
        read_timeout_ms: 400,
        connect_timeout_ms: 400,
        max_retries: 2,
        retry_backoff_ms: 10,
        breaker_failures: 100,
        ..CloudConfig::new(url, "test-model", Some("sk-test".into()))
    }
}

fn ask(client: &CloudClient) -> (Result<pocketlm::CloudReply, Error>, String) {
    let mut streamed = String::new();
    let result = client.chat(&[Message::user("hi")], &SamplingParams::default(), &CancelToken::new(), &mut |t| streamed.push_str(t));
    (result, streamed)
}

fn kind(result: &Result<pocketlm::CloudReply, Error>) -> CloudErrorKind {
    match result {
        Err(Error::Cloud { kind, .. }) => *kind,
        other => panic!("expected a cloud error, got {other:?}"),
    }
}

#[test]
fn a_streamed_answer_arrives_whole_with_usage_and_the_key() {
    let server = FaultServer::start(vec![ok_stream(&["Hello", " from", " the cloud."])]);
    let (result, streamed) = ask(&CloudClient::new(config(&server.url)).unwrap());
    let reply = result.unwrap();
    assert_eq!(reply.text, "Hello from the cloud.");
    assert_eq!(streamed, reply.text);
    assert_eq!(reply.finish_reason, "stop");
    assert_eq!(reply.usage.map(|u| (u.prompt_tokens, u.completion_tokens)), Some((42, 7)));
    let seen = &server.seen.lock().unwrap()[0];
    assert!(seen.headers.to_ascii_lowercase().contains("authorization: bearer sk-test"));
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!((body["model"].as_str(), body["stream"].as_bool()), (Some("test-model"), Some(true)));
}

#[test]
fn a_refused_connection_is_unreachable_after_bounded_retries() {
    let started = Instant::now();
    let (result, _) = ask(&CloudClient::new(config(&FaultServer::refused_url())).unwrap());
    assert_eq!(kind(&result), CloudErrorKind::Unreachable);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_hanging_server_times_out() {
    let server = FaultServer::start(vec![Behaviour::Hang]);
    let started = Instant::now();
    let client = CloudClient::new(CloudConfig { max_retries: 0, ..config(&server.url) }).unwrap();
    let (result, _) = ask(&client);
    assert_eq!(kind(&result), CloudErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[test]
fn server_errors_are_retried_then_reported() {
    let server = FaultServer::start(vec![Behaviour::Status(500, vec![], r#"{"error":{"message":"boom"}}"#.into())]);
    let (result, _) = ask(&CloudClient::new(config(&server.url)).unwrap());
    assert_eq!(kind(&result), CloudErrorKind::Server);
    assert!(result.unwrap_err().to_string().contains("boom"));
    assert_eq!(server.requests(), 3, "one try and two retries");
}

#[test]
fn rate_limits_honour_retry_after() {
    let server = FaultServer::start(vec![
        Behaviour::Status(429, vec![("Retry-After", "1".into())], r#"{"error":{"message":"slow down"}}"#.into()),
        ok_stream(&["ok"]),
    ]);
    let started = Instant::now();
    let (result, _) = ask(&CloudClient::new(config(&server.url)).unwrap());
    let reply = result.unwrap();
    assert_eq!((reply.text.as_str(), reply.attempts), ("ok", 2));
    assert!(started.elapsed() >= Duration::from_millis(950), "waited {:?}", started.elapsed());
}

#[test]
fn a_rejected_key_is_unauthorized_and_not_retried() {
    let server = FaultServer::start(vec![Behaviour::Status(401, vec![], r#"{"error":{"message":"bad key"}}"#.into())]);
    let (result, _) = ask(&CloudClient::new(config(&server.url)).unwrap());
    assert_eq!(kind(&result), CloudErrorKind::Unauthorized);
    assert_eq!(server.requests(), 1);
}

#[test]
fn a_malformed_stream_is_a_typed_error() {
    let server = FaultServer::start(vec![Behaviour::Raw("data: this is not json\n\n".into())]);
    let (result, _) = ask(&CloudClient::new(config(&server.url)).unwrap());
    assert_eq!(kind(&result), CloudErrorKind::MalformedStream);
}

#[test]
fn a_stream_cut_mid_answer_is_never_a_complete_answer() {
    let events = vec![(0, r#"{"choices":[{"index":0,"delta":{"content":"The answer is"},"finish_reason":null}]}"#.to_string())];
    let server = FaultServer::start(vec![Behaviour::Stream { events, done: false }]);
    let (result, streamed) = ask(&CloudClient::new(config(&server.url)).unwrap());
    assert_eq!(kind(&result), CloudErrorKind::Interrupted);
    assert_eq!(streamed, "The answer is", "the partial text was streamed, then the error came");
    assert_eq!(server.requests(), 1, "text already reached the caller, so no retry");
}

#[test]
fn cancelling_a_slow_stream_closes_the_connection() {
    let events = (0..100)
        .map(|i| (100, serde_json::json!({"choices":[{"index":0,"delta":{"content":format!("{i} ")},"finish_reason":null}]}).to_string()))
        .collect();
    let server = FaultServer::start(vec![Behaviour::Stream { events, done: true }]);
    let client = CloudClient::new(CloudConfig { read_timeout_ms: 5_000, ..config(&server.url) }).unwrap();
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(350));
        trigger.cancel();
    });
    let started = Instant::now();
    let result = client.chat(&[Message::user("hi")], &SamplingParams::default(), &cancel, &mut |_| {});
    assert_eq!(kind(&result), CloudErrorKind::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The server notices the closed connection within a few more writes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.seen.lock().unwrap()[0].client_closed {
        assert!(Instant::now() < deadline, "the connection stayed open after cancelling");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the server saw the client hang up on request `index`.
fn wait_client_closed(server: &FaultServer, index: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.seen.lock().unwrap()[index].client_closed {
        assert!(Instant::now() < deadline, "the connection stayed open");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_endless_event_line_is_a_malformed_stream_not_unbounded_memory() {
    // One `data:` line that never ends: the client gives up at its cap (1 MiB),
    // instead of buffering (and rescanning) until the read timeout.
    let server = FaultServer::start(vec![Behaviour::Endless {
        status: 200,
        content_type: "text/event-stream",
        prefix: "data: ".into(),
        chunk: "x".repeat(8192),
    }]);
    let started = Instant::now();
    let client = CloudClient::new(CloudConfig { read_timeout_ms: 5_000, ..config(&server.url) }).unwrap();
    let (result, streamed) = ask(&client);
    assert_eq!(kind(&result), CloudErrorKind::MalformedStream, "{result:?}");
    assert!(result.unwrap_err().to_string().contains("longer than"));
    assert!(streamed.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(server.requests(), 1, "a malformed stream is not retried");
    wait_client_closed(&server, 0);
    let sent = server.seen.lock().unwrap()[0].sent;
    assert!(sent < (64 << 20).min(ENDLESS_LIMIT), "the client read {sent} bytes of one line");
}

#[test]
fn a_huge_error_body_is_read_only_in_part_and_the_status_decides_the_kind() {
    // An error body without end: at most 64 KiB is read, the detail is short.
    let server = FaultServer::start(vec![Behaviour::Endless {
        status: 500,
        content_type: "application/json",
        prefix: r#"{"error":{"message":""#.into(),
        chunk: "boom ".repeat(2000),
    }]);
    let started = Instant::now();
    let client = CloudClient::new(CloudConfig { max_retries: 0, read_timeout_ms: 5_000, ..config(&server.url) }).unwrap();
    let (result, _) = ask(&client);
    assert_eq!(kind(&result), CloudErrorKind::Server);
    let text = result.unwrap_err().to_string();
    assert!(text.contains("HTTP 500") && text.contains("boom") && text.len() < 1000, "{} chars: {text:.200}", text.len());
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    wait_client_closed(&server, 0);
    let sent = server.seen.lock().unwrap()[0].sent;
    assert!(sent < 64 << 20, "the client read {sent} bytes of an error body");

    // A large but finite one: 4xx stays a bad request, with a clipped message.
    let message = "m".repeat(200_000);
    let body = serde_json::json!({ "error": { "message": message } }).to_string();
    let server = FaultServer::start(vec![Behaviour::Status(400, vec![], body)]);
    let (result, _) = ask(&CloudClient::new(config(&server.url)).unwrap());
    assert_eq!(kind(&result), CloudErrorKind::BadRequest);
    assert!(result.unwrap_err().to_string().len() < 1000);
    assert_eq!(server.requests(), 1);
}

#[test]
fn an_infinite_retry_after_fails_typed_instead_of_panicking() {
    for value in ["inf", "1e400", "NaN", "-5"] {
        let server = FaultServer::start(vec![Behaviour::Status(429, vec![("Retry-After", value.into())], "{}".into()), ok_stream(&["ok"])]);
        let (result, _) = ask(&CloudClient::new(config(&server.url)).unwrap());
        match value {
            // Longer than max_retry_after_ms: fails at once.
            "inf" | "1e400" => {
                assert_eq!(kind(&result), CloudErrorKind::RateLimited, "{value}");
                assert_eq!(server.requests(), 1, "{value}");
            }
            // Meaningless or past: the normal backoff, then the answer.
            _ => assert_eq!(result.unwrap().text, "ok", "{value}"),
        }
    }
}

// ---- called from async code (an app's tokio task, `pocketlm serve`) ----

#[tokio::test]
async fn the_client_answers_when_called_from_inside_a_tokio_runtime() {
    // A blocking call inside a running (current-thread) runtime: a runtime per
    // client driven with `block_on` panicked here, and so did dropping it.
    let server = FaultServer::start(vec![ok_stream(&["Hello", " from", " async."])]);
    let client = CloudClient::new(config(&server.url)).unwrap();
    let (result, streamed) = ask(&client);
    let reply = result.unwrap();
    assert_eq!((reply.text.as_str(), streamed.as_str()), ("Hello from async.", "Hello from async."));
    assert_eq!(reply.usage.map(|u| u.completion_tokens), Some(7));
    drop(client);
    // The runtime still works for this test afterwards.
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tasks_share_clients_and_cancel_from_async_code() {
    let server = FaultServer::start(vec![ok_stream(&["one", " answer"])]);
    let client = Arc::new(CloudClient::new(config(&server.url)).unwrap());
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move { ask(&client) })
        })
        .collect();
    for task in tasks {
        let (result, streamed) = task.await.unwrap();
        assert_eq!(result.unwrap().text, "one answer");
        assert_eq!(streamed, "one answer");
    }
    assert_eq!(server.requests(), 4);

    // Streaming to the caller's callback and cancelling from another task.
    let events = (0..100)
        .map(|i| (100, serde_json::json!({"choices":[{"index":0,"delta":{"content":format!("{i} ")},"finish_reason":null}]}).to_string()))
        .collect();
    let slow = FaultServer::start(vec![Behaviour::Stream { events, done: true }]);
    let client = CloudClient::new(CloudConfig { read_timeout_ms: 5_000, ..config(&slow.url) }).unwrap();
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(350)).await;
        trigger.cancel();
    });
    let caller = thread::current().id();
    let started = Instant::now();
    let mut deltas = Vec::new();
    let result = client.chat(&[Message::user("hi")], &SamplingParams::default(), &cancel, &mut |t| {
        assert_eq!(thread::current().id(), caller, "text is delivered on the caller's thread");
        deltas.push(t.to_string());
    });
    assert_eq!(kind(&result), CloudErrorKind::Cancelled);
    assert!(!deltas.is_empty() && started.elapsed() < Duration::from_secs(2), "{deltas:?} {:?}", started.elapsed());
    canceller.await.unwrap();
    wait_client_closed(&slow, 0);
}

#[test]
fn the_circuit_opens_after_repeated_failures_and_stops_calling() {
    let server = FaultServer::start(vec![Behaviour::Status(503, vec![], "{}".into())]);
    let client =
        CloudClient::new(CloudConfig { max_retries: 0, breaker_failures: 2, breaker_cooldown_ms: 60_000, ..config(&server.url) }).unwrap();
    assert_eq!(kind(&ask(&client).0), CloudErrorKind::Server);
    assert_eq!(kind(&ask(&client).0), CloudErrorKind::Server);
    let started = Instant::now();
    assert_eq!(kind(&ask(&client).0), CloudErrorKind::CircuitOpen);
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(server.requests(), 2, "an open circuit makes no request");
}

// ---- the router, with the real device model (Qwen2.5 0.5B) ----

fn device(context_length: u32) -> Result<Conversation, Error> {
    Conversation::new(
        qwen(),
        ConversationOptions { context_length: Some(context_length), threads: Some(2), sampling: greedy(8), ..Default::default() },
    )
}

fn router(policy: RoutePolicy, url: &str) -> RouterConfig {
    RouterConfig {
        policy,
        cloud: Some(config(url)),
        pricing: Pricing { input_per_million: 1.0, output_per_million: 2.0 },
        ..RouterConfig::default()
    }
}

fn send(chat: &mut RoutedChat, text: &str, options: &RouteOptions) -> (Result<pocketlm::RoutedReply, Error>, Vec<String>) {
    let mut events = Vec::new();
    let result = chat.send(text, options, &mut |e| {
        events.push(match e {
            RouteEvent::Text(t) => t.to_string(),
            RouteEvent::Restart(r) => format!("<restart:{}>", r.as_str()),
            RouteEvent::ToolCall(c) => format!("<call:{}>", c.name),
        })
    });
    (result, events)
}

#[test]
fn local_only_never_contacts_the_cloud_even_when_configured() {
    let server = FaultServer::start(vec![ok_stream(&["cloud"])]);
    let mut chat = RoutedChat::new(device(512), router(RoutePolicy::LocalOnly, &server.url), greedy(8)).unwrap();
    let (reply, _) = send(&mut chat, "Say hi.", &RouteOptions::default());
    let reply = reply.unwrap();
    assert_eq!((reply.route.answered_by, reply.route.reason), (AnsweredBy::Device, RouteReason::Policy));
    assert_eq!(reply.cost.cloud_cost, 0.0);
    assert!(reply.cost.device_output_tokens > 0);
    assert_eq!(server.requests(), 0);
}

#[test]
fn a_cloud_answer_stopped_after_text_keeps_the_turn_and_what_was_shown() {
    let events = (0..100)
        .map(|i| (100, serde_json::json!({"choices":[{"index":0,"delta":{"content":format!("{i} ")},"finish_reason":null}]}).to_string()))
        .collect();
    let server = FaultServer::start(vec![Behaviour::Stream { events, done: true }]);
    let mut chat = RoutedChat::new(device(512), router(RoutePolicy::CloudOnly, &server.url), greedy(8)).unwrap();
    let options = RouteOptions::default();
    let trigger = options.cancel.clone();
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(350));
        trigger.cancel();
    });
    let (result, shown) = send(&mut chat, "Count.", &options);
    canceller.join().unwrap();
    assert!(matches!(result, Err(Error::Cloud { kind: CloudErrorKind::Cancelled, .. })), "{result:?}");
    assert!(!shown.is_empty());
    let history = chat.messages();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!((history[0].role, history[0].content.as_str()), (Role::User, "Count."));
    assert_eq!((history[1].role, history[1].content.clone()), (Role::Assistant, shown.concat()), "what was shown is kept");

    // Stopped before any text: nothing changes.
    let options = RouteOptions::default();
    options.cancel.cancel();
    let (result, _) = send(&mut chat, "Again.", &options);
    assert!(result.is_err());
    assert_eq!(chat.messages().len(), 2);
}

#[test]
fn a_device_answer_stopped_before_any_text_adds_no_empty_answer() {
    let server = FaultServer::start(vec![ok_stream(&["cloud"])]);
    let mut chat = RoutedChat::new(device(512), router(RoutePolicy::LocalOnly, &server.url), greedy(8)).unwrap();
    let options = RouteOptions::default();
    options.cancel.cancel();
    let (reply, shown) = send(&mut chat, "Say hi.", &options);
    let reply = reply.unwrap();
    assert_eq!((reply.text.as_str(), shown.len()), ("", 0));
    assert!(chat.messages().is_empty(), "{:?}", chat.messages());
    let (reply, _) = send(&mut chat, "Say hi.", &RouteOptions::default());
    assert!(!reply.unwrap().text.is_empty());
    assert_eq!(chat.messages().len(), 2, "one user turn and its answer");
}

#[test]
fn prefer_cloud_falls_back_to_the_device_and_keeps_one_history() {
    let server = FaultServer::start(vec![Behaviour::Status(500, vec![], "{}".into())]);
    let mut chat = RoutedChat::new(device(1024), router(RoutePolicy::PreferCloud, &server.url), greedy(8)).unwrap();
    let (reply, _) = send(&mut chat, "What is 2 + 2?", &RouteOptions::default());
    let reply = reply.unwrap();
    assert_eq!((reply.route.answered_by, reply.route.reason), (AnsweredBy::Device, RouteReason::CloudFailed));
    assert!(reply.route.detail.as_deref().unwrap_or("").contains("server"), "{:?}", reply.route.detail);
    assert_eq!(chat.messages().len(), 2);

    // allow_cloud = false wins over the policy: no request is made.
    let before = server.requests();
    let (reply, _) = send(&mut chat, "And 3 + 3?", &RouteOptions { allow_cloud: false, ..Default::default() });
    assert_eq!(reply.unwrap().route.answered_by, AnsweredBy::Device);
    assert_eq!(server.requests(), before);
    assert_eq!(chat.messages().len(), 4);
}

#[test]
fn cloud_answers_are_redacted_on_the_way_out_and_costed() {
    let server = FaultServer::start(vec![ok_stream(&["Paris."])]);
    let config = RouterConfig {
        redact: Some(Arc::new(|m: &Message| m.with_content(m.content.replace("4111-1111", "[card]")))),
        ..router(RoutePolicy::CloudOnly, &server.url)
    };
    let mut chat = RoutedChat::new(device(512), config, greedy(8)).unwrap();
    let (reply, events) = send(&mut chat, "My card is 4111-1111. Capital of France?", &RouteOptions::default());
    let reply = reply.unwrap();
    assert_eq!((reply.text.as_str(), reply.route.answered_by), ("Paris.", AnsweredBy::Cloud));
    assert_eq!(events.concat(), "Paris.");
    let body = &server.seen.lock().unwrap()[0].body;
    assert!(body.contains("[card]") && !body.contains("4111-1111"), "{body}");
    // The history on the device keeps what the user typed.
    assert!(chat.messages()[0].content.contains("4111-1111"));
    assert_eq!((reply.cost.cloud_input_tokens, reply.cost.cloud_output_tokens), (42, 7));
    assert!((reply.cost.cloud_cost - (42.0 * 1.0 + 7.0 * 2.0) / 1e6).abs() < 1e-12);
    assert_eq!(chat.totals().cloud_answers, 1);
}

#[test]
fn low_confidence_escalates_as_soon_as_the_signal_drops() {
    let server = FaultServer::start(vec![ok_stream(&["From the cloud."])]);
    let config = RouterConfig {
        // No answer is this sure, so the first window always escalates.
        confidence: ConfidenceOptions { threshold: 0.9999, first_tokens: 2, window: 8 },
        ..router(RoutePolicy::PreferLocal, &server.url)
    };
    let mut chat = RoutedChat::new(device(1024), config, greedy(8)).unwrap();
    let (reply, events) = send(&mut chat, "Write a poem about the sea.", &RouteOptions::default());
    let reply = reply.unwrap();
    assert_eq!((reply.route.answered_by, reply.route.reason), (AnsweredBy::Cloud, RouteReason::LowConfidence));
    let restart = events.iter().position(|e| e == "<restart:low_confidence>").expect("a restart event");
    assert_eq!(events[restart + 1..].concat(), "From the cloud.");
    assert_eq!(chat.messages().last().unwrap().content, "From the cloud.");
    assert_eq!(chat.messages().len(), 2, "the abandoned device answer is not in the history");
}

#[test]
fn confident_device_answers_stay_on_the_device_with_their_signals() {
    let server = FaultServer::start(vec![ok_stream(&["cloud"])]);
    let config = RouterConfig {
        confidence: ConfidenceOptions { threshold: 0.0001, ..Default::default() },
        ..router(RoutePolicy::PreferLocal, &server.url)
    };
    let mut chat = RoutedChat::new(device(1024), config, greedy(8)).unwrap();
    let (reply, _) = send(&mut chat, "What is the capital of France?", &RouteOptions::default());
    let reply = reply.unwrap();
    assert_eq!(reply.route.answered_by, AnsweredBy::Device);
    let c = reply.confidence.expect("signals are reported");
    assert!(c.score > 0.0 && c.score <= 1.0 && c.mean_logprob <= 0.0 && c.mean_entropy >= 0.0, "{c:?}");
    assert_eq!(server.requests(), 0);
}

#[test]
fn prompts_longer_than_the_device_context_escalate() {
    let server = FaultServer::start(vec![ok_stream(&["long answer"])]);
    let mut chat = RoutedChat::new(device(64), router(RoutePolicy::PreferLocal, &server.url), greedy(8)).unwrap();
    let long = "Tell me about the sea. ".repeat(40);
    let (reply, _) = send(&mut chat, &long, &RouteOptions::default());
    let reply = reply.unwrap();
    assert_eq!((reply.route.answered_by, reply.route.reason), (AnsweredBy::Cloud, RouteReason::PromptTooLong));
}

#[test]
fn a_missing_device_model_escalates_or_fails_clearly() {
    let server = FaultServer::start(vec![ok_stream(&["cloud"])]);
    let missing = || Err(Error::ModelNotFound { path: "/nowhere/model.gguf".into() });
    let mut chat = RoutedChat::new(missing(), router(RoutePolicy::PreferLocal, &server.url), greedy(8)).unwrap();
    let (reply, _) = send(&mut chat, "hi", &RouteOptions::default());
    let reply = reply.unwrap();
    assert_eq!((reply.route.answered_by, reply.route.reason), (AnsweredBy::Cloud, RouteReason::ModelUnavailable));
    assert!(!reply.cost.cloud_tokens_estimated, "the server reported usage");

    // Without the cloud allowed, the load error is the answer.
    let (result, _) = send(&mut chat, "hi", &RouteOptions { allow_cloud: false, ..Default::default() });
    assert!(matches!(result, Err(Error::ModelNotFound { .. })));
    assert_eq!(chat.messages().len(), 2, "a failed request leaves the history as it was");
}

#[test]
fn cloud_only_with_a_dead_endpoint_is_a_typed_error_and_keeps_history() {
    let mut chat = RoutedChat::new(device(512), router(RoutePolicy::CloudOnly, &FaultServer::refused_url()), greedy(8)).unwrap();
    let (result, _) = send(&mut chat, "hi", &RouteOptions::default());
    assert!(matches!(result, Err(Error::Cloud { kind: CloudErrorKind::Unreachable, .. })), "{result:?}");
    assert!(chat.messages().is_empty());
}

#[test]
fn every_fault_under_every_cloud_policy_falls_back_or_fails_typed_with_the_history_intact() {
    let cut = vec![(0, r#"{"choices":[{"index":0,"delta":{"content":"PARTIAL-CLOUD"},"finish_reason":null}]}"#.to_string())];
    let faults: Vec<(&str, Option<Behaviour>, CloudErrorKind)> = vec![
        ("refused", None, CloudErrorKind::Unreachable),
        ("hang", Some(Behaviour::Hang), CloudErrorKind::Timeout),
        ("500", Some(Behaviour::Status(500, vec![], "{}".into())), CloudErrorKind::Server),
        ("429 for a minute", Some(Behaviour::Status(429, vec![("Retry-After", "60".into())], "{}".into())), CloudErrorKind::RateLimited),
        ("401", Some(Behaviour::Status(401, vec![], "{}".into())), CloudErrorKind::Unauthorized),
        ("malformed", Some(Behaviour::Raw("data: {oops\n\n".into())), CloudErrorKind::MalformedStream),
        ("cut mid-stream", Some(Behaviour::Stream { events: cut, done: false }), CloudErrorKind::Interrupted),
    ];
    for (name, behaviour, kind) in faults {
        let server = behaviour.map(|b| FaultServer::start(vec![b]));
        let url = server.as_ref().map_or_else(FaultServer::refused_url, |s| s.url.clone());
        let config = |policy| RouterConfig {
            confidence: ConfidenceOptions { threshold: 0.9999, first_tokens: 2, window: 8 },
            cloud: Some(CloudConfig { max_retries: 1, ..config(&url) }),
            ..router(policy, &url)
        };

        // cloud-only: the typed error, and nothing added to the history.
        let mut chat = RoutedChat::new(device(512), config(RoutePolicy::CloudOnly), greedy(8)).unwrap();
        let (result, _) = send(&mut chat, "What is 2 + 2?", &RouteOptions::default());
        match result {
            Err(Error::Cloud { kind: got, .. }) => assert_eq!(got, kind, "{name}"),
            other => panic!("{name}: expected a cloud error, got {other:?}"),
        }
        assert!(chat.messages().is_empty(), "{name}");

        // prefer-cloud, and prefer-local escalating on low confidence: the device answers instead.
        for policy in [RoutePolicy::PreferCloud, RoutePolicy::PreferLocal] {
            let mut chat = RoutedChat::new(device(512), config(policy), greedy(8)).unwrap();
            let (reply, events) = send(&mut chat, "What is 2 + 2?", &RouteOptions::default());
            let reply = reply.unwrap_or_else(|e| panic!("{name} / {policy:?}: {e}"));
            assert_eq!(
                (reply.route.answered_by, reply.route.reason),
                (AnsweredBy::Device, RouteReason::CloudFailed),
                "{name} / {policy:?}"
            );
            assert!(events.contains(&"<restart:cloud_failed>".to_string()), "{name} / {policy:?}: {events:?}");
            assert!(!reply.text.contains("PARTIAL-CLOUD"), "a cut cloud answer is never passed off as the answer");
            assert_eq!(chat.messages().len(), 2, "{name} / {policy:?}");
            assert_eq!(chat.messages()[1].content, reply.text);
        }
    }
}

// ---- tools on the cloud path ----

fn weather_tool() -> pocketlm::Tool {
    pocketlm::Tool::new(
        "get_weather",
        "Get the current weather for a city.",
        serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    )
}

/// An OpenAI-style streamed answer that calls tools: each call's id and name
/// first, then its arguments' text in `pieces`, with usage.
fn calls_stream(calls: &[(&str, &str, &[&str])]) -> Behaviour {
    let mut events = vec![(0, r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}"#.to_string())];
    for (i, (id, name, pieces)) in calls.iter().enumerate() {
        let first = serde_json::json!({"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": ""}});
        events.push((0, serde_json::json!({"choices":[{"index":0,"delta":{"tool_calls":[first]},"finish_reason":null}]}).to_string()));
        for piece in *pieces {
            let delta = serde_json::json!({"index": i, "function": {"arguments": piece}});
            events.push((0, serde_json::json!({"choices":[{"index":0,"delta":{"tool_calls":[delta]},"finish_reason":null}]}).to_string()));
        }
    }
    events.push((0, r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#.to_string()));
    events.push((0, r#"{"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}"#.to_string()));
    Behaviour::Stream { events, done: true }
}

#[test]
fn cloud_tool_calls_arrive_in_fragments_and_come_back_whole_and_checked() {
    let server = FaultServer::start(vec![calls_stream(&[
        ("call_a", "get_weather", &[r#"{"ci"#, r#"ty": "Pa"#, r#"ris"}"#]),
        ("call_b", "get_weather", &[r#"{"city": "Oslo"}"#]),
    ])]);
    let client = CloudClient::new(config(&server.url)).unwrap();
    let tools = [weather_tool()];
    let choice = pocketlm::ToolChoice::Required;
    let request = pocketlm::CloudRequest { tools: &tools, tool_choice: Some(&choice), ..Default::default() };
    let mut streamed = String::new();
    let reply = client
        .chat_with(&[Message::user("Weather in Paris and Oslo?")], &SamplingParams::default(), &request, &CancelToken::new(), &mut |t| {
            streamed.push_str(t)
        })
        .unwrap();
    assert_eq!(reply.finish_reason, "tool_calls");
    assert!(streamed.is_empty() && reply.text.is_empty(), "no text: {streamed:?}");
    let calls: Vec<_> = reply.tool_calls.iter().map(|c| (c.id.as_str(), c.name.as_str(), c.arguments["city"].as_str())).collect();
    assert_eq!(calls, [("call_a", "get_weather", Some("Paris")), ("call_b", "get_weather", Some("Oslo"))]);

    let body: serde_json::Value = serde_json::from_str(&server.seen.lock().unwrap()[0].body).unwrap();
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tool_choice"], "required");
}

#[test]
fn a_cloud_call_to_an_undeclared_tool_or_with_broken_arguments_is_typed_and_not_retried() {
    for (name, pieces, expect) in
        [("launch_rockets", &[r#"{}"#][..], "not a declared tool"), ("get_weather", &[r#"{"city": "#][..], "not JSON")]
    {
        let server = FaultServer::start(vec![calls_stream(&[("call_x", name, pieces)])]);
        let client = CloudClient::new(config(&server.url)).unwrap();
        let tools = [weather_tool()];
        let request = pocketlm::CloudRequest { tools: &tools, ..Default::default() };
        let err =
            client.chat_with(&[Message::user("hi")], &SamplingParams::default(), &request, &CancelToken::new(), &mut |_| {}).unwrap_err();
        match &err {
            Error::ToolCallInvalid { name: n, detail } => assert!(n == name && detail.contains(expect), "{err:?}"),
            other => panic!("expected ToolCallInvalid, got {other:?}"),
        }
        assert_eq!(server.requests(), 1, "a bad call is not retried");
    }
}

#[test]
fn a_routed_tool_round_trip_in_the_cloud_sends_calls_and_results_in_openai_shape() {
    let server =
        FaultServer::start(vec![calls_stream(&[("call_7", "get_weather", &[r#"{"city": "Rome"}"#])]), ok_stream(&["Sunny, 24 C."])]);
    let missing = || Err(Error::ModelNotFound { path: "/nowhere/model.gguf".into() });
    let mut chat = RoutedChat::new(missing(), router(RoutePolicy::CloudOnly, &server.url), greedy(8)).unwrap();
    let options = RouteOptions { tools: vec![weather_tool()], ..RouteOptions::default() };
    let (reply, events) = send(&mut chat, "Weather in Rome?", &options);
    let reply = reply.unwrap();
    assert_eq!(reply.route.answered_by, AnsweredBy::Cloud);
    assert_eq!(reply.tool_calls.len(), 1);
    assert_eq!(events, ["<call:get_weather>"], "the call arrives as the same event as a device call");
    assert_eq!(chat.messages().last().unwrap().tool_calls, reply.tool_calls, "the history holds the call");

    // Results must answer the calls, one each; nothing is sent otherwise.
    let wrong = pocketlm::ToolResult { call_id: "call_9".into(), name: "get_weather".into(), content: "{}".into(), is_error: false };
    let err = chat.send_tool_results(&[wrong], &options, &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::InvalidOption { name: "tool_results", .. }), "{err:?}");
    assert_eq!(server.requests(), 1);

    let result = pocketlm::ToolResult {
        call_id: "call_7".into(),
        name: "get_weather".into(),
        content: r#"{"sky": "sunny", "celsius": 24}"#.into(),
        is_error: false,
    };
    let answer = chat.send_tool_results(&[result], &options, &mut |_| {}).unwrap();
    assert_eq!((answer.text.as_str(), answer.route.answered_by), ("Sunny, 24 C.", AnsweredBy::Cloud));
    let roles: Vec<_> = chat.messages().iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);

    // The second request carried the call (arguments as JSON text, as OpenAI
    // requires) and the result with its call's id.
    let body: serde_json::Value = serde_json::from_str(&server.seen.lock().unwrap()[1].body).unwrap();
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[1]["tool_calls"][0]["id"], "call_7");
    assert_eq!(messages[1]["tool_calls"][0]["function"]["arguments"], r#"{"city":"Rome"}"#);
    assert_eq!((messages[2]["role"].as_str(), messages[2]["tool_call_id"].as_str()), (Some("tool"), Some("call_7")));
    assert!(body["tools"].is_array(), "the tools are offered again");
}

#[test]
fn a_routed_tool_call_on_the_device_is_answered_on_the_device() {
    let server = FaultServer::start(vec![ok_stream(&["cloud"])]);
    let device = Conversation::new(
        qwen(),
        ConversationOptions { context_length: Some(1024), threads: Some(2), sampling: greedy(64), ..Default::default() },
    );
    let mut chat = RoutedChat::new(device, router(RoutePolicy::PreferLocal, &server.url), greedy(64)).unwrap();
    let options = RouteOptions { tools: vec![weather_tool()], tool_choice: pocketlm::ToolChoice::Required, ..RouteOptions::default() };
    let (reply, events) = send(&mut chat, "What is the weather in Paris?", &options);
    let reply = reply.unwrap();
    assert_eq!(reply.route.answered_by, AnsweredBy::Device);
    assert_eq!(reply.tool_calls.len(), 1, "{reply:?}");
    assert!(events.contains(&"<call:get_weather>".to_string()), "{events:?}");
    let call = &reply.tool_calls[0];
    let result =
        pocketlm::ToolResult { call_id: call.id.clone(), name: call.name.clone(), content: "18 C, cloudy".into(), is_error: false };
    let next = RouteOptions { tools: vec![weather_tool()], tool_choice: pocketlm::ToolChoice::None, ..RouteOptions::default() };
    let answer = chat.send_tool_results(&[result], &next, &mut |_| {}).unwrap();
    assert_eq!(answer.route.answered_by, AnsweredBy::Device, "the side that made the call continues");
    assert!(answer.tool_calls.is_empty() && !answer.text.is_empty(), "{answer:?}");
    assert_eq!(server.requests(), 0, "nothing left the device");
}
