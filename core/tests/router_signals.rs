//! The router's signals, probe and budgets with the real device model
//! (Qwen2.5 0.5B) and a real HTTP "cloud" on loopback.

mod common;

use std::sync::Arc;

use common::http::{ok_stream, FaultServer};
use common::{gemma, greedy, model_path, qwen, QWEN_FILE};
use pocketlm::probe::{LOGIT_FEATURES, PROBE_FORMAT, PROBE_VERSION};
use pocketlm::{
    AnswerForm, AnsweredBy, CloudBudget, CloudConfig, CloudErrorKind, CloudTokenizer, ConfidenceOptions, Constraint, Conversation,
    ConversationOptions, Error, Message, Pricing, Probe, RouteOptions, RoutePolicy, RouteReason, RoutedChat, RouterConfig, SendOptions,
    Structured,
};

const QUESTION: &str = "Which planet is known as the Red Planet? A. Venus B. Mars C. Jupiter D. Saturn. Reply with the letter only.";

fn device(hidden_states: bool) -> Conversation {
    Conversation::new(
        qwen(),
        ConversationOptions { context_length: Some(1024), threads: Some(2), sampling: greedy(8), hidden_states, ..Default::default() },
    )
    .unwrap()
}

fn choice() -> Option<Constraint> {
    Some(Constraint::Choice { options: ["A", "B", "C", "D"].map(String::from).to_vec() })
}

fn cloud(url: &str) -> CloudConfig {
    CloudConfig { read_timeout_ms: 2000, max_retries: 0, ..CloudConfig::new(url, "test-model", None) }
}

fn config(policy: RoutePolicy, url: &str) -> RouterConfig {
    RouterConfig {
        policy,
        cloud: Some(cloud(url)),
        pricing: Pricing { input_per_million: 1.0, output_per_million: 2.0 },
        ..RouterConfig::default()
    }
}

/// A probe for the Qwen test model that always says `bias` (weights zero), saved and loaded.
fn constant_probe(bias: f32, dir: &std::path::Path) -> Arc<Probe> {
    let n_embd = 896;
    let probe = Probe {
        format: PROBE_FORMAT.into(),
        version: PROBE_VERSION,
        model: qwen().identity().clone(),
        answer_form: AnswerForm::Choice,
        n_embd,
        logit_features: LOGIT_FEATURES.iter().map(|s| s.to_string()).collect(),
        weights: vec![0.0; 2 * n_embd as usize + LOGIT_FEATURES.len()],
        bias,
        training: pocketlm::probe::TrainingReport {
            examples: 0,
            correct: 0,
            folds: 0,
            l2: 0.0,
            cv_auroc: 0.5,
            cv_auroc_ci: [0.5, 0.5],
            dataset: "hand-made".into(),
        },
        source: String::new(),
    };
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("probe-{bias}.json"));
    probe.save(&path).unwrap();
    Arc::new(Probe::load(&path).unwrap())
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pocketlm-{name}-{}", std::process::id()))
}

#[test]
fn hidden_states_leave_answers_unchanged_and_carry_the_probe_inputs() {
    let ask = |hidden: bool, constraint: Option<Constraint>| {
        let mut chat = device(hidden);
        let options = SendOptions { constraint, confidence: Some(ConfidenceOptions::default()), ..SendOptions::default() };
        chat.send(QUESTION, &options, &mut |_| {}).unwrap()
    };
    let (plain, kept) = (ask(false, choice()), ask(true, choice()));
    let (Some(Structured::Choice { index: a, probabilities: p }), Some(Structured::Choice { index: b, probabilities: q })) =
        (&plain.structured, &kept.structured)
    else {
        panic!("choice answers")
    };
    assert_eq!(a, b);
    assert!(p.iter().zip(q).all(|(x, y)| (x - y).abs() < 1e-4), "{p:?} vs {q:?}: the logits do not change");
    assert!(plain.features.is_none(), "no states unless asked");
    let f = kept.features.expect("states kept");
    assert_eq!((f.decision_state.len(), f.answer_state.len(), f.logits.len()), (896, 896, LOGIT_FEATURES.len()));
    assert_ne!(f.decision_state, f.answer_state, "the answer token's state is its own");
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(f.decision_state.iter().all(|x| x.is_finite()) && norm(&f.decision_state) > 1.0, "a real state, not zeros");
    let c = kept.metrics.confidence.expect("a choice reports its signals");
    let (prob, margin) = (c.answer_probability.unwrap(), c.answer_margin.unwrap());
    assert!((f64::from(prob) - q[*b]).abs() < 1e-6 && margin >= 0.0 && margin <= prob, "{c:?}");

    // Free text: content-token signals, and the same text with states kept.
    let (plain, kept) = (ask(false, None), ask(true, None));
    assert_eq!(plain.text, kept.text);
    let content = kept.metrics.confidence.unwrap().content.expect("the answer has content tokens");
    assert!(content.tokens >= 1 && content.min_logprob <= content.logprob_median && content.mean_margin <= 1.0, "{content:?}");
    assert!(kept.features.is_some());
}

#[test]
fn a_probe_judges_finished_device_answers_against_the_threshold() {
    let dir = temp_dir("probe-route");
    let server = FaultServer::start(vec![ok_stream(&["B"]), ok_stream(&["Hello."])]);
    let routed = |probe: Arc<Probe>| {
        let config = RouterConfig {
            probe: Some(probe),
            confidence: ConfidenceOptions { threshold: 0.5, ..Default::default() },
            ..config(RoutePolicy::PreferLocal, &server.url)
        };
        RoutedChat::new(Ok(device(false)), config, greedy(8)).unwrap()
    };
    let options = RouteOptions { constraint: choice(), ..RouteOptions::default() };

    // A confident probe keeps the answer on the device, and its score is reported.
    let mut sure = routed(constant_probe(4.0, &dir));
    let reply = sure.send(QUESTION, &options, &mut |_| {}).unwrap();
    assert_eq!(reply.route.answered_by, AnsweredBy::Device);
    let p = reply.confidence.unwrap().probe.expect("the probe scored the answer");
    assert!((p - 0.982).abs() < 0.001, "{p}");
    assert_eq!(server.requests(), 0);

    // An unsure one escalates after the fact, with its reason.
    let mut unsure = routed(constant_probe(-4.0, &dir));
    let reply = unsure.send(QUESTION, &options, &mut |_| {}).unwrap();
    assert_eq!((reply.route.answered_by, reply.route.reason), (AnsweredBy::Cloud, RouteReason::LowConfidence));
    assert!(reply.route.detail.as_deref().unwrap().contains("probe score 0.018"), "{:?}", reply.route.detail);
    assert_eq!(unsure.messages().len(), 2, "one turn: the abandoned device answer is not kept");

    // Free text is not what it was trained on: no probe score, and it is judged by its
    // token score as it streams (a threshold no answer reaches escalates it).
    let reply = sure.send("Say hello.", &RouteOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(reply.confidence.unwrap().probe, None);
    let strict = RouterConfig {
        probe: Some(constant_probe(4.0, &dir)),
        confidence: ConfidenceOptions { threshold: 0.999_999, ..Default::default() },
        ..config(RoutePolicy::PreferLocal, &server.url)
    };
    let mut chat = RoutedChat::new(Ok(device(false)), strict, greedy(8)).unwrap();
    let reply = chat.send("Say hello.", &RouteOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(reply.route.reason, RouteReason::LowConfidence);
    assert!(reply.route.detail.unwrap().contains("device confidence"), "the token score judged it mid-stream");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_probe_for_another_model_or_a_damaged_one_is_refused_typed() {
    let dir = temp_dir("probe-bad");
    let probe = constant_probe(0.0, &dir);
    let mut other = (*probe).clone();
    other.model = gemma().identity().clone();
    let config = RouterConfig { probe: Some(Arc::new(other)), ..RouterConfig::default() };
    let e = RoutedChat::new(Ok(device(false)), config, greedy(8)).unwrap_err();
    assert!(matches!(e, Error::RouterProbe { .. }) && e.to_string().contains("train one for this model"), "{e}");

    let damaged = dir.join("damaged.json");
    std::fs::write(&damaged, &std::fs::read(dir.join("probe-0.json")).unwrap()[..500]).unwrap();
    assert!(matches!(Probe::load(&damaged), Err(Error::RouterProbe { .. })));
    let weights = dir.join("weights.json");
    std::fs::write(&weights, model_path(QWEN_FILE).display().to_string()).unwrap();
    assert!(matches!(Probe::load(&weights), Err(Error::RouterProbe { .. })));
    assert!(matches!(Probe::load(&dir.join("missing.json")), Err(Error::RouterProbe { .. })));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_choice_is_judged_by_its_probability_without_a_probe() {
    let server = FaultServer::start(vec![ok_stream(&["B"])]);
    let config = RouterConfig {
        confidence: ConfidenceOptions { threshold: 0.999_999, ..Default::default() },
        ..config(RoutePolicy::PreferLocal, &server.url)
    };
    let mut chat = RoutedChat::new(Ok(device(false)), config, greedy(8)).unwrap();
    let reply = chat.send(QUESTION, &RouteOptions { constraint: choice(), ..RouteOptions::default() }, &mut |_| {}).unwrap();
    assert_eq!(reply.route.reason, RouteReason::LowConfidence);
    assert!(reply.route.detail.unwrap().contains("answer probability"));
}

#[test]
fn the_cloud_budget_keeps_requests_on_the_device_and_says_so() {
    let server = FaultServer::start(vec![ok_stream(&["From the cloud."]), ok_stream(&["Again."])]);
    let budget =
        |per_request, total| RouterConfig { budget: CloudBudget { per_request, total }, ..config(RoutePolicy::PreferCloud, &server.url) };
    // Per request: the worst case (prompt + max_tokens) is over it.
    let mut chat = RoutedChat::new(Ok(device(false)), budget(Some(1e-9), None), greedy(8)).unwrap();
    let reply = chat.send("Say hello.", &RouteOptions::default(), &mut |_| {}).unwrap();
    assert_eq!((reply.route.answered_by, reply.route.reason), (AnsweredBy::Device, RouteReason::CloudBudget));
    assert!(reply.route.detail.unwrap().contains("per-request budget"));
    assert_eq!(server.requests(), 0);

    // In total: the first request fits, the second would pass it.
    let probe = RoutedChat::new(Ok(device(false)), budget(None, None), greedy(8)).unwrap();
    let estimate = probe.estimate_cloud_cost(&[Message::user("Say hello.")]);
    assert!(estimate.estimated, "counted with the device tokenizer");
    assert_eq!(estimate.max_output_tokens, 8);
    let mut chat = RoutedChat::new(Ok(device(false)), budget(None, Some(estimate.cost + 1e-6)), greedy(8)).unwrap();
    let first = chat.send("Say hello.", &RouteOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(first.route.answered_by, AnsweredBy::Cloud);
    let second = chat.send("Say hello.", &RouteOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(second.route.reason, RouteReason::CloudBudget);
    assert!(second.route.detail.unwrap().contains("total budget"));
    assert_eq!(server.requests(), 1);

    // Cloud-only without a device: a typed error, nothing sent.
    let missing = Err(Error::ModelNotFound { path: "missing.gguf".into() });
    let config = RouterConfig { policy: RoutePolicy::CloudOnly, ..budget(Some(0.0), None) };
    let mut chat = RoutedChat::new(missing, config, greedy(8)).unwrap();
    let e = chat.send("Say hello.", &RouteOptions::default(), &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::Cloud { kind: CloudErrorKind::BudgetExceeded, .. }), "{e}");
    assert!(chat.messages().is_empty());

    // Prefer-local: an answer that would have escalated stays, finished, with the budget as the reason.
    let config = RouterConfig {
        policy: RoutePolicy::PreferLocal,
        confidence: ConfidenceOptions { threshold: 0.999_999, ..Default::default() },
        ..budget(Some(1e-9), None)
    };
    let mut chat = RoutedChat::new(Ok(device(false)), config, greedy(8)).unwrap();
    let reply = chat.send(QUESTION, &RouteOptions { constraint: choice(), ..RouteOptions::default() }, &mut |_| {}).unwrap();
    assert_eq!((reply.route.answered_by, reply.route.reason), (AnsweredBy::Device, RouteReason::CloudBudget));
    assert!(reply.route.detail.unwrap().contains("would escalate (low_confidence"));
    assert_eq!(server.requests(), 1);

    let negative = RouterConfig { budget: CloudBudget { per_request: Some(-1.0), total: None }, ..RouterConfig::default() };
    assert!(matches!(
        RoutedChat::new(Ok(device(false)), negative, greedy(8)),
        Err(Error::InvalidOption { name: "budget_per_request", .. })
    ));
}

#[test]
fn the_cloud_models_tokenizer_makes_the_estimate_exact() {
    let dir = temp_dir("tokenizer");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokenizer.json");
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": { "type": "Whitespace" }, "post_processor": null, "decoder": null,
        "model": { "type": "WordLevel", "vocab": { "[UNK]": 0, "user": 1, ":": 2, "hello": 3 }, "unk_token": "[UNK]" }
    });
    std::fs::write(&path, tokenizer.to_string()).unwrap();
    let config = RouterConfig { cloud_tokenizer: Some(Arc::new(CloudTokenizer::from_file(&path).unwrap())), ..RouterConfig::default() };
    let chat = RoutedChat::new(Ok(device(false)), config, greedy(8)).unwrap();
    let estimate = chat.estimate_cloud_cost(&[Message::user("hello there")]);
    assert_eq!((estimate.input_tokens, estimate.estimated), (4, false), "user, :, hello, there");

    std::fs::write(&path, "{\"model\": 1}").unwrap();
    assert!(matches!(CloudTokenizer::from_file(&path), Err(Error::InvalidOption { name: "cloud_tokenizer", .. })));
    let _ = std::fs::remove_dir_all(&dir);
}
