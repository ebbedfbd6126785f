//! Hybrid routing: answer on the device first and, only when the app allows
//! it, escalate to an OpenAI-compatible cloud model.
//!
//! Nothing leaves the device unless a cloud endpoint is configured, the
//! policy is not [`RoutePolicy::LocalOnly`] (the default) and the request
//! allows it. Every message bound for the cloud passes through the app's
//! redaction hook first. Every answer says where it was produced and why, and
//! what it cost. The conversation history is the same whichever path answered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::client::{CloudClient, CloudConfig, CloudReply, CloudRequest};
use super::cost::{Cost, CostTotals, Pricing};
use crate::cancel::CancelToken;
use crate::chat::{ChatEvent, Conversation, Metrics, PartialAnswer, SendOptions, StopReason};
use crate::confidence::{Confidence, ConfidenceOptions};
use crate::constraint::{Constraint, Structured};
use crate::error::{CloudErrorKind, Error, Result};
use crate::probe::Probe;
use crate::sampling::SamplingParams;
use crate::template::{Message, Role};
use crate::tool::{self, Tool, ToolCall, ToolChoice, ToolResult};

/// Where requests go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoutePolicy {
    /// Only the device; nothing ever leaves it (the default).
    #[default]
    LocalOnly,
    /// The device, escalating when it cannot or should not answer.
    PreferLocal,
    /// The cloud, falling back to the device when it fails or is unreachable.
    PreferCloud,
    /// Only the cloud.
    CloudOnly,
}

impl RoutePolicy {
    /// The stable name (`local-only`, `prefer-local`, `prefer-cloud`, `cloud-only`).
    pub fn as_str(self) -> &'static str {
        match self {
            RoutePolicy::LocalOnly => "local-only",
            RoutePolicy::PreferLocal => "prefer-local",
            RoutePolicy::PreferCloud => "prefer-cloud",
            RoutePolicy::CloudOnly => "cloud-only",
        }
    }
}

impl std::str::FromStr for RoutePolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "local-only" => Ok(RoutePolicy::LocalOnly),
            "prefer-local" => Ok(RoutePolicy::PreferLocal),
            "prefer-cloud" => Ok(RoutePolicy::PreferCloud),
            "cloud-only" => Ok(RoutePolicy::CloudOnly),
            other => Err(Error::InvalidOption {
                name: "route",
                value: other.to_string(),
                expected: "one of local-only, prefer-local, prefer-cloud, cloud-only".into(),
            }),
        }
    }
}

/// Which side produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    /// The on-device model.
    Device,
    /// The cloud model.
    Cloud,
}

/// Why the answer came from where it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteReason {
    /// The policy's first choice answered.
    Policy,
    /// Escalated: the local model is missing or failed to load.
    ModelUnavailable,
    /// Escalated: loading the local model would exceed the memory budget.
    MemoryBudget,
    /// Escalated: the prompt is longer than the local context.
    PromptTooLong,
    /// Escalated: the local answer's confidence fell below the threshold.
    LowConfidence,
    /// Escalated: the local answer took longer than the latency budget.
    LatencyBudget,
    /// Escalated: the request asked for the cloud explicitly.
    Requested,
    /// Fell back to the device: the cloud failed or was unreachable.
    CloudFailed,
    /// Stayed on the device: the cloud answer would exceed the cloud budget.
    CloudBudget,
}

impl RouteReason {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteReason::Policy => "policy",
            RouteReason::ModelUnavailable => "model_unavailable",
            RouteReason::MemoryBudget => "memory_budget",
            RouteReason::PromptTooLong => "prompt_too_long",
            RouteReason::LowConfidence => "low_confidence",
            RouteReason::LatencyBudget => "latency_budget",
            RouteReason::Requested => "requested",
            RouteReason::CloudFailed => "cloud_failed",
            RouteReason::CloudBudget => "cloud_budget",
        }
    }
}

/// Where an answer came from, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteInfo {
    /// The side that produced the answer.
    pub answered_by: AnsweredBy,
    /// Why.
    pub reason: RouteReason,
    /// The policy in force for this request.
    pub policy: RoutePolicy,
    /// What went wrong on the other side, if anything (e.g. the cloud error behind a fallback).
    pub detail: Option<String>,
}

/// Rewrites (or passes through) each message before it leaves the device.
pub type Redactor = Arc<dyn Fn(&Message) -> Message + Send + Sync>;

/// How a [`RoutedChat`] routes.
#[derive(Clone, Default)]
pub struct RouterConfig {
    /// The default policy.
    pub policy: RoutePolicy,
    /// The cloud endpoint; without one nothing can leave the device.
    pub cloud: Option<CloudConfig>,
    /// Cloud prices for cost accounting.
    pub pricing: Pricing,
    /// Low-confidence escalation (threshold 0 disables it). Signals are
    /// always gathered and reported for device answers.
    pub confidence: ConfidenceOptions,
    /// Escalate when a device answer is not finished within this many ms.
    pub latency_budget_ms: Option<u64>,
    /// Sees, and may rewrite, every message before it is sent to the cloud.
    pub redact: Option<Redactor>,
    /// A probe trained for the device model (`pocketlm train-router`): its
    /// calibrated probability replaces the token score as the confidence
    /// that `confidence.threshold` is compared with, for the answers it was
    /// trained on. Answers are then judged when they finish, not mid-stream.
    pub probe: Option<Arc<Probe>>,
    /// Limits on cloud spending.
    pub budget: CloudBudget,
    /// The cloud model's tokenizer, for exact cost estimates; without it the
    /// device tokenizer counts (an estimate for another model).
    pub cloud_tokenizer: Option<Arc<CloudTokenizer>>,
}

/// Limits on cloud money, in the currency of [`Pricing`]. A request whose
/// worst-case cost (its prompt, plus `max_tokens` generated) would pass a
/// limit stays on the device, with [`RouteReason::CloudBudget`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CloudBudget {
    /// Most one request may cost.
    pub per_request: Option<f64>,
    /// Most this conversation may spend in total.
    pub total: Option<f64>,
}

/// What a cloud answer would cost at most, before sending it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CloudEstimate {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// The most tokens the answer may have (`max_tokens`).
    pub max_output_tokens: u32,
    /// Worst-case cost.
    pub cost: f64,
    /// Whether the tokens were counted with another model's tokenizer (no cloud tokenizer given).
    pub estimated: bool,
}

/// A cloud model's tokenizer (a Hugging Face `tokenizer.json`).
pub struct CloudTokenizer(tokenizers::Tokenizer);

impl std::fmt::Debug for CloudTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CloudTokenizer")
    }
}

impl CloudTokenizer {
    /// Reads a `tokenizer.json`; an unreadable or invalid file is [`Error::InvalidOption`].
    pub fn from_file(path: &std::path::Path) -> Result<CloudTokenizer> {
        const MAX_BYTES: u64 = 64 << 20;
        let bad = |why: String| Error::InvalidOption { name: "cloud_tokenizer", value: path.display().to_string(), expected: why };
        let size = std::fs::metadata(path).map_err(|e| bad(format!("a readable tokenizer.json ({e})")))?.len();
        if size > MAX_BYTES {
            return Err(bad(format!("a tokenizer.json of at most {MAX_BYTES} bytes, not {size}")));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(format!("a readable tokenizer.json ({e})")))?;
        tokenizers::Tokenizer::from_bytes(&bytes).map(CloudTokenizer).map_err(|e| bad(format!("a Hugging Face tokenizer.json ({e})")))
    }

    /// Tokens in `text` (special tokens not added).
    pub fn count(&self, text: &str) -> u32 {
        self.0.encode(text, false).map_or_else(|_| text.chars().count().div_ceil(4), |e| e.len()) as u32
    }
}

impl std::fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterConfig")
            .field("policy", &self.policy)
            .field("cloud", &self.cloud)
            .field("pricing", &self.pricing)
            .field("confidence", &self.confidence)
            .field("latency_budget_ms", &self.latency_budget_ms)
            .field("redact", &self.redact.as_ref().map(|_| "<hook>"))
            .field("probe", &self.probe.as_ref().map(|p| p.source.clone()))
            .field("budget", &self.budget)
            .field("cloud_tokenizer", &self.cloud_tokenizer.is_some())
            .finish()
    }
}

/// Per-request routing options.
#[derive(Debug, Clone)]
pub struct RouteOptions {
    /// Overrides the chat's policy for this request.
    pub policy: Option<RoutePolicy>,
    /// `false` keeps this request on the device whatever the policy (always wins).
    pub allow_cloud: bool,
    /// Ask for the cloud explicitly (when allowed).
    pub escalate: bool,
    /// Cancels this request from any thread.
    pub cancel: CancelToken,
    /// What the answer must look like, on whichever side answers (the cloud
    /// gets JSON constraints and choices as `response_format`; grammars stay
    /// on the device).
    pub constraint: Option<Constraint>,
    /// Tools the model may call, on whichever side answers (the cloud gets
    /// them as OpenAI `tools`). Not together with a constraint.
    pub tools: Vec<Tool>,
    /// Whether and which tools must be called.
    pub tool_choice: ToolChoice,
}

impl Default for RouteOptions {
    fn default() -> Self {
        RouteOptions {
            policy: None,
            allow_cloud: true,
            escalate: false,
            cancel: CancelToken::new(),
            constraint: None,
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
        }
    }
}

impl RouteOptions {
    /// Whether the model is offered tools.
    fn uses_tools(&self) -> bool {
        !self.tools.is_empty() && self.tool_choice != ToolChoice::None
    }
}

/// What a [`RoutedChat`] streams while answering.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteEvent<'a> {
    /// More answer text.
    Text(&'a str),
    /// The text streamed so far is abandoned (drop it from the screen); an
    /// answer from the other side follows, for this reason.
    Restart(RouteReason),
    /// The model called a tool (its arguments are complete and checked).
    ToolCall(&'a ToolCall),
}

/// A routed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutedReply {
    /// The answer text.
    pub text: String,
    /// Where it came from and why.
    pub route: RouteInfo,
    /// What it cost.
    pub cost: Cost,
    /// The device's metrics, when the device answered or attempted.
    pub metrics: Option<Metrics>,
    /// The device's confidence signals, when the device answered or attempted.
    pub confidence: Option<Confidence>,
    /// The parsed value or chosen option, for a request with a constraint.
    pub structured: Option<Structured>,
    /// The tools the model called; answer them with [`RoutedChat::send_tool_results`].
    pub tool_calls: Vec<ToolCall>,
}

/// A conversation that answers on the device or in the cloud by policy.
pub struct RoutedChat {
    local: std::result::Result<Conversation, Error>,
    cloud: Option<CloudClient>,
    config: RouterConfig,
    sampling: SamplingParams,
    messages: Vec<Message>,
    totals: CostTotals,
    /// Which side gave the last answer (tool results go back to it).
    last_side: Option<AnsweredBy>,
}

impl std::fmt::Debug for RoutedChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedChat").field("config", &self.config).field("messages", &self.messages.len()).finish()
    }
}

/// A device attempt that did not produce the answer.
enum Escalation {
    /// Escalate for this reason; the device answer, when it was finished
    /// (judged after the fact) and can stand if the cloud may not be used.
    Reason(RouteReason, Option<String>, Option<Box<crate::chat::Reply>>),
    Failed(Error),
}

impl RoutedChat {
    /// Routes over `local`, the device conversation, or the reason there is none
    /// (a load error such as [`Error::ModelNotFound`] or [`Error::InsufficientMemory`]).
    /// With no device conversation, `sampling` is used for the cloud.
    pub fn new(mut local: std::result::Result<Conversation, Error>, config: RouterConfig, sampling: SamplingParams) -> Result<RoutedChat> {
        config.confidence.validate()?;
        sampling.validate()?;
        for (name, limit) in [("budget_per_request", config.budget.per_request), ("budget_total", config.budget.total)] {
            if limit.is_some_and(|l| !(l >= 0.0 && l.is_finite())) {
                return Err(Error::InvalidOption { name, value: format!("{limit:?}"), expected: "a cloud budget of 0 or more".into() });
            }
        }
        if let (Some(probe), Ok(local)) = (&config.probe, local.as_mut()) {
            probe.check_model(local.model().identity())?;
            local.keep_hidden_states()?;
        }
        let cloud = config.cloud.clone().map(CloudClient::new).transpose()?;
        let messages = match &local {
            Ok(c) => c.messages().to_vec(),
            Err(_) => Vec::new(),
        };
        Ok(RoutedChat { local, cloud, config, sampling, messages, totals: CostTotals::default(), last_side: None })
    }

    /// The history, whichever side answered each turn.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Replaces the history.
    pub fn set_messages(&mut self, messages: Vec<Message>) {
        self.messages = messages;
    }

    /// Saves the history and the device's KV cache to `path` (see
    /// [`Conversation::save`]). Without a device model, only the history is
    /// kept in memory, and this is the load error.
    pub fn save(&mut self, path: &std::path::Path) -> Result<crate::SavedSession> {
        let local = self.local.as_mut().map_err(|e| e.clone())?;
        local.set_messages(self.messages.clone());
        local.save(path)
    }

    /// Restores a conversation saved by [`RoutedChat::save`]: the history, and
    /// the device's KV cache when the file matches (see
    /// [`Conversation::restore_or_transcript`]; the error says why the cache
    /// was not used). Without a device model, the transcript alone.
    pub fn restore(&mut self, path: &std::path::Path) -> Result<(crate::RestoredSession, Option<Error>)> {
        let restored = match self.local.as_mut() {
            Ok(local) => {
                let restored = local.restore_or_transcript(path)?;
                self.messages = local.messages().to_vec();
                restored
            }
            Err(_) => {
                self.messages = crate::read_session_summary(path)?.messages;
                (crate::RestoredSession { messages: self.messages.len() as u32, cached_tokens: 0 }, None)
            }
        };
        self.last_side = None;
        Ok(restored)
    }

    /// Running cost totals.
    pub fn totals(&self) -> CostTotals {
        self.totals
    }

    /// Whether the device model is available, and if not, why.
    pub fn local_error(&self) -> Option<&Error> {
        self.local.as_ref().err()
    }

    /// Answers `text`, streaming events to `on_event`. On error the history is
    /// unchanged, except that a cloud answer stopped by `options.cancel` after
    /// text was shown keeps the user's turn and that text. A device answer
    /// stopped before any text leaves the history unchanged too.
    pub fn send(&mut self, text: &str, options: &RouteOptions, on_event: &mut dyn FnMut(RouteEvent)) -> Result<RoutedReply> {
        let policy = options.policy.unwrap_or(self.config.policy);
        if options.uses_tools() && options.constraint.is_some() {
            return Err(Error::InvalidConstraint { detail: "tools and an output constraint cannot be combined in one request".into() });
        }
        let wants_cloud = options.allow_cloud && policy != RoutePolicy::LocalOnly && self.cloud.is_some();
        // The budget is checked before anything is sent.
        let over_budget = if wants_cloud { self.budget_refusal(&[Message::user(text)]) } else { None };
        let cloud_allowed = wants_cloud && over_budget.is_none();
        let route = |answered_by, reason, detail| RouteInfo { answered_by, reason, policy, detail };

        if let Some(budget) = &over_budget {
            if options.escalate || matches!(policy, RoutePolicy::CloudOnly | RoutePolicy::PreferCloud) {
                // The cloud was the choice: the device answers instead, when it can.
                let refused = Error::Cloud { kind: CloudErrorKind::BudgetExceeded, detail: budget.clone() };
                if self.local.is_err() {
                    return Err(refused);
                }
                return self.device_instead(
                    text,
                    options,
                    route(AnsweredBy::Device, RouteReason::CloudBudget, Some(budget.clone())),
                    refused,
                    on_event,
                );
            }
        }
        if options.escalate && cloud_allowed {
            on_event(RouteEvent::Restart(RouteReason::Requested));
            return self.answer_in_cloud(
                vec![Message::user(text)],
                options,
                route(AnsweredBy::Cloud, RouteReason::Requested, None),
                on_event,
            );
        }
        match policy {
            RoutePolicy::CloudOnly if cloud_allowed => {
                self.answer_in_cloud(vec![Message::user(text)], options, route(AnsweredBy::Cloud, RouteReason::Policy, None), on_event)
            }
            RoutePolicy::CloudOnly => Err(Error::Cloud {
                kind: CloudErrorKind::NotConfigured,
                detail: if self.cloud.is_none() { "no cloud endpoint is configured" } else { "this request does not allow the cloud" }
                    .into(),
            }),
            RoutePolicy::PreferCloud if cloud_allowed => {
                let info = route(AnsweredBy::Cloud, RouteReason::Policy, None);
                match self.answer_in_cloud(vec![Message::user(text)], options, info, on_event) {
                    Err(Error::Cloud { kind: CloudErrorKind::Cancelled, detail }) => {
                        Err(Error::Cloud { kind: CloudErrorKind::Cancelled, detail })
                    }
                    Err(e) if self.local.is_ok() => {
                        let info = route(AnsweredBy::Device, RouteReason::CloudFailed, Some(e.to_string()));
                        self.device_instead(text, options, info, e, on_event)
                    }
                    other => other,
                }
            }
            _ => {
                // LocalOnly, PreferLocal, and PreferCloud without the cloud.
                if let Some(budget) = over_budget.filter(|_| policy == RoutePolicy::PreferLocal) {
                    return self.device_over_budget(text, options, budget, on_event);
                }
                let escalate = policy == RoutePolicy::PreferLocal && cloud_allowed;
                match self.answer_on_device(text, options, escalate, on_event)? {
                    Ok(reply) => {
                        Ok(self.finish_device(vec![Message::user(text)], reply, route(AnsweredBy::Device, RouteReason::Policy, None)))
                    }
                    Err(Escalation::Failed(e)) => Err(e),
                    Err(Escalation::Reason(reason, detail, finished)) => {
                        on_event(RouteEvent::Restart(reason));
                        match self.answer_in_cloud(vec![Message::user(text)], options, route(AnsweredBy::Cloud, reason, detail), on_event) {
                            // The escalation failed but the device can still answer
                            // (unconfident or slow beats nothing): answer there, plainly.
                            // A choice the cloud could not make counts as a failure too.
                            Err(e)
                                if (matches!(e, Error::Cloud { .. })
                                    && matches!(reason, RouteReason::LowConfidence | RouteReason::LatencyBudget)
                                    && !matches!(e, Error::Cloud { kind: CloudErrorKind::Cancelled, .. }))
                                    || (matches!(e, Error::StructuredOutputIncomplete { .. }) && finished.is_some()) =>
                            {
                                let detail = format!("escalated for {}, then {e}", reason.as_str());
                                let info = route(AnsweredBy::Device, RouteReason::CloudFailed, Some(detail));
                                match finished {
                                    // Judged after it finished: that answer stands, shown again.
                                    Some(reply) => {
                                        on_event(RouteEvent::Restart(RouteReason::CloudFailed));
                                        on_event(RouteEvent::Text(&reply.text));
                                        Ok(self.finish_device(vec![Message::user(text)], *reply, info))
                                    }
                                    None => self.device_instead(text, options, info, e, on_event),
                                }
                            }
                            other => other,
                        }
                    }
                }
            }
        }
    }

    /// Prefer-local when the cloud budget would be passed: the device answers
    /// in full, and the reason says whether the budget is what kept it there
    /// (the answer would have escalated). Without a device model, the budget error.
    fn device_over_budget(
        &mut self,
        text: &str,
        options: &RouteOptions,
        budget: String,
        on_event: &mut dyn FnMut(RouteEvent),
    ) -> Result<RoutedReply> {
        let refused = Error::Cloud { kind: CloudErrorKind::BudgetExceeded, detail: budget.clone() };
        if self.local.is_err() {
            return Err(refused);
        }
        let mut reply = match self.answer_on_device(text, options, false, on_event)? {
            Ok(reply) => reply,
            Err(Escalation::Failed(e)) => return Err(e),
            Err(Escalation::Reason(..)) => return Err(refused),
        };
        let threshold = self.config.confidence.threshold;
        let slow = self.config.latency_budget_ms.is_some_and(|ms| reply.metrics.total_ms > ms as f64);
        let unsure = match judge(&mut reply, self.config.probe.as_deref()) {
            Some((_, score)) => score < threshold,
            None => reply.metrics.confidence.is_some_and(|c| c.score < threshold),
        };
        let policy = RoutePolicy::PreferLocal;
        let route = match (unsure, slow) {
            (false, false) => RouteInfo { answered_by: AnsweredBy::Device, reason: RouteReason::Policy, policy, detail: None },
            (unsure, _) => {
                let why = if unsure { RouteReason::LowConfidence } else { RouteReason::LatencyBudget };
                let detail = Some(format!("would escalate ({}), but {budget}", why.as_str()));
                RouteInfo { answered_by: AnsweredBy::Device, reason: RouteReason::CloudBudget, policy, detail }
            }
        };
        Ok(self.finish_device(vec![Message::user(text)], reply, route))
    }

    /// What answering `new` after the history in the cloud would cost at most:
    /// its prompt tokens (counted with the cloud tokenizer when one is given)
    /// plus `max_tokens` generated, at the configured prices.
    pub fn estimate_cloud_cost(&self, new: &[Message]) -> CloudEstimate {
        let outgoing: Vec<Message> = self.messages.iter().chain(new).cloned().collect();
        let (input_tokens, estimated) = self.count_tokens(&outgoing);
        let max_output_tokens = self.cloud_sampling().max_tokens;
        let p = self.config.pricing;
        let cost = (f64::from(input_tokens) * p.input_per_million + f64::from(max_output_tokens) * p.output_per_million) / 1e6;
        CloudEstimate { input_tokens, max_output_tokens, cost, estimated }
    }

    /// Why the budget refuses sending `new` to the cloud, if it does.
    fn budget_refusal(&self, new: &[Message]) -> Option<String> {
        let budget = self.config.budget;
        if budget.per_request.is_none() && budget.total.is_none() {
            return None;
        }
        let estimate = self.estimate_cloud_cost(new);
        let counted = if estimate.estimated { " (tokens estimated with the device tokenizer)" } else { "" };
        if let Some(limit) = budget.per_request.filter(|&l| estimate.cost > l) {
            return Some(format!("the cloud answer could cost {:.6}{counted}, over the per-request budget of {limit:.6}", estimate.cost));
        }
        if let Some(limit) = budget.total.filter(|&l| self.totals.cloud_cost + estimate.cost > l) {
            return Some(format!(
                "the cloud answer could cost {:.6}{counted}; with {:.6} spent that passes the total budget of {limit:.6}",
                estimate.cost, self.totals.cloud_cost
            ));
        }
        None
    }

    fn cloud_sampling(&self) -> &SamplingParams {
        match &self.local {
            Ok(local) => local.sampling(),
            Err(_) => &self.sampling,
        }
    }

    /// Answers the last user message again by the policy, replacing its
    /// answer (if any). Stopped or failed before any text, the previous answer
    /// stays. A history without a user message is [`Error::InvalidOption`].
    pub fn regenerate(&mut self, options: &RouteOptions, on_event: &mut dyn FnMut(RouteEvent)) -> Result<RoutedReply> {
        let before = self.messages.clone();
        let Some(last) = before.iter().rposition(|m| m.role == Role::User) else {
            return Err(Error::InvalidOption {
                name: "regenerate",
                value: "no user message".into(),
                expected: "a conversation with a user message to answer again".into(),
            });
        };
        let text = before[last].content.clone();
        self.messages.truncate(last);
        let result = self.send(&text, options, on_event);
        let nothing_new = match &result {
            Ok(reply) => reply.text.is_empty() && reply.tool_calls.is_empty(),
            Err(_) => self.messages.len() <= last,
        };
        if nothing_new {
            self.messages = before;
        }
        result
    }

    /// Replaces the last user message with `text` (dropping its answer) and
    /// answers it by the policy. Failed or stopped before any text, the
    /// history is as it was. Without a user message it is [`RoutedChat::send`].
    pub fn edit_last(&mut self, text: &str, options: &RouteOptions, on_event: &mut dyn FnMut(RouteEvent)) -> Result<RoutedReply> {
        let before = self.messages.clone();
        let last = before.iter().rposition(|m| m.role == Role::User);
        if let Some(last) = last {
            self.messages.truncate(last);
        }
        let result = self.send(text, options, on_event);
        if self.messages.len() <= last.unwrap_or(before.len()) {
            self.messages = before;
        }
        result
    }

    /// Tries the device. `Ok(Err(Escalation))` means the cloud should answer
    /// instead (only when `escalate`); `Err` is a failure to report as is.
    #[allow(clippy::type_complexity)]
    fn answer_on_device(
        &mut self,
        text: &str,
        options: &RouteOptions,
        escalate: bool,
        on_event: &mut dyn FnMut(RouteEvent),
    ) -> Result<std::result::Result<crate::chat::Reply, Escalation>> {
        let local = match &mut self.local {
            Ok(local) => local,
            Err(e) if escalate => {
                let reason =
                    if matches!(e, Error::InsufficientMemory { .. }) { RouteReason::MemoryBudget } else { RouteReason::ModelUnavailable };
                return Ok(Err(Escalation::Reason(reason, Some(e.to_string()), None)));
            }
            Err(e) => return Err(e.clone()),
        };
        local.set_messages(self.messages.clone());
        let send = device_options(&self.config, options, escalate);
        let confidence = send.confidence.unwrap_or_default();
        // The device conversation's own history is reset from ours before every attempt.
        let result = local.send_events(text, &send, &mut device_event(on_event));
        match result {
            Ok(reply) if escalate && reply.metrics.stop_reason == StopReason::LowConfidence => {
                let score = reply.metrics.confidence.map_or(0.0, |c| c.score);
                let detail = format!("device confidence {score:.3} < threshold {:.3}", confidence.threshold);
                Ok(Err(Escalation::Reason(RouteReason::LowConfidence, Some(detail), None)))
            }
            Ok(reply) if escalate && reply.metrics.stop_reason == StopReason::Deadline => {
                let detail = format!("device answer unfinished after {:.0} ms", reply.metrics.total_ms);
                Ok(Err(Escalation::Reason(RouteReason::LatencyBudget, Some(detail), None)))
            }
            Ok(mut reply) => {
                // Only a finished answer is judged (not one cancelled or cut by the context).
                let finished = matches!(reply.metrics.stop_reason, StopReason::Eos | StopReason::StopSequence | StopReason::MaxTokens);
                let judged = if finished { judge(&mut reply, self.config.probe.as_deref()) } else { None };
                match judged {
                    Some((signal, score)) if escalate && score < self.config.confidence.threshold => {
                        let detail = format!("device {signal} {score:.3} < threshold {:.3}", self.config.confidence.threshold);
                        Ok(Err(Escalation::Reason(RouteReason::LowConfidence, Some(detail), Some(Box::new(reply)))))
                    }
                    _ => Ok(Ok(reply)),
                }
            }
            Err(e @ Error::ContextOverflow { .. }) if escalate => {
                Ok(Err(Escalation::Reason(RouteReason::PromptTooLong, Some(e.to_string()), None)))
            }
            Err(e) => Ok(Err(Escalation::Failed(e))),
        }
    }

    /// The cloud failed or may not be used (`error`); answers on the device
    /// instead, routed as `route` says. If the device cannot, `error` stands.
    fn device_instead(
        &mut self,
        text: &str,
        options: &RouteOptions,
        route: RouteInfo,
        error: Error,
        on_event: &mut dyn FnMut(RouteEvent),
    ) -> Result<RoutedReply> {
        log::info!("answering on the device ({}): {}", route.reason.as_str(), route.detail.as_deref().unwrap_or(""));
        on_event(RouteEvent::Restart(route.reason));
        match self.answer_on_device(text, options, false, on_event)? {
            Ok(reply) => Ok(self.finish_device(vec![Message::user(text)], reply, route)),
            Err(Escalation::Failed(e)) => Err(e),
            Err(Escalation::Reason(..)) => Err(error),
        }
    }

    /// Answers the tool calls of the last answer with their results and
    /// returns what comes next (more calls, or the answer). The side that
    /// made the calls continues: the device, or the cloud (under the
    /// request's cloud permission; if it is refused or fails, the error is
    /// returned and the history is unchanged). Every call needs exactly one
    /// result ([`Error::InvalidOption`] otherwise).
    pub fn send_tool_results(
        &mut self,
        results: &[ToolResult],
        options: &RouteOptions,
        on_event: &mut dyn FnMut(RouteEvent),
    ) -> Result<RoutedReply> {
        tool::check_results(&self.messages, results)?;
        let policy = options.policy.unwrap_or(self.config.policy);
        let new: Vec<Message> = results.iter().map(Message::tool_result).collect();
        if self.last_side == Some(AnsweredBy::Cloud) {
            if !options.allow_cloud || policy == RoutePolicy::LocalOnly {
                return Err(Error::Cloud {
                    kind: CloudErrorKind::NotConfigured,
                    detail: "the calls were made in the cloud, and this request does not allow the cloud".into(),
                });
            }
            if let Some(budget) = self.budget_refusal(&new) {
                return Err(Error::Cloud { kind: CloudErrorKind::BudgetExceeded, detail: budget });
            }
            let route = RouteInfo { answered_by: AnsweredBy::Cloud, reason: RouteReason::Policy, policy, detail: None };
            return self.answer_in_cloud(new, options, route, on_event);
        }
        let local = self.local.as_mut().map_err(|e| e.clone())?;
        local.set_messages(self.messages.clone());
        let send = device_options(&self.config, options, false);
        let reply = local.send_tool_results(results, &send, &mut device_event(on_event))?;
        let route = RouteInfo { answered_by: AnsweredBy::Device, reason: RouteReason::Policy, policy, detail: None };
        Ok(self.finish_device(new, reply, route))
    }

    /// Records a device answer to `new` (the user's message, or tool results).
    fn finish_device(&mut self, new: Vec<Message>, reply: crate::chat::Reply, route: RouteInfo) -> RoutedReply {
        let m = &reply.metrics;
        let cost = Cost {
            device_input_tokens: m.prompt_tokens_reused + m.prompt_tokens_evaluated,
            device_output_tokens: m.generated_tokens,
            ..Cost::default()
        };
        // A cancelled answer keeps its partial text, as Conversation does by default;
        // one stopped before any text adds nothing (no empty answer).
        let nothing = reply.text.is_empty() && reply.tool_calls.is_empty() && reply.metrics.stop_reason == StopReason::Cancelled;
        if !nothing {
            self.messages.extend(new);
            self.messages.push(Message::assistant_calls(reply.text.clone(), reply.tool_calls.clone()));
        }
        self.last_side = Some(AnsweredBy::Device);
        self.totals.requests += 1;
        self.totals.device_answers += 1;
        let confidence = reply.metrics.confidence;
        RoutedReply {
            text: reply.text,
            route,
            cost,
            metrics: Some(reply.metrics),
            confidence,
            structured: reply.structured,
            tool_calls: reply.tool_calls,
        }
    }

    /// Answers in the cloud after the history and `new` (the user's message, or tool results).
    fn answer_in_cloud(
        &mut self,
        new: Vec<Message>,
        options: &RouteOptions,
        route: RouteInfo,
        on_event: &mut dyn FnMut(RouteEvent),
    ) -> Result<RoutedReply> {
        let Some(cloud) = &self.cloud else {
            return Err(Error::Cloud { kind: CloudErrorKind::NotConfigured, detail: "no cloud endpoint is configured".into() });
        };
        let mut outgoing: Vec<Message> = self.messages.iter().chain(&new).cloned().collect();
        if let Some(redact) = &self.config.redact {
            outgoing = outgoing.iter().map(|m| redact(m)).collect();
        }
        let sampling = self.cloud_sampling().clone();
        let constraint = options.constraint.as_ref();
        let request = CloudRequest {
            constraint,
            tools: if options.uses_tools() { &options.tools } else { &[] },
            tool_choice: Some(&options.tool_choice),
        };
        let mut shown = String::new();
        // A choice arrives as JSON around the option: only the option is shown, once parsed.
        let is_choice = matches!(constraint, Some(Constraint::Choice { .. }));
        let result = cloud.chat_with(&outgoing, &sampling, &request, &options.cancel, &mut |delta| {
            if !is_choice {
                shown.push_str(delta);
                on_event(RouteEvent::Text(delta))
            }
        });
        let mut reply: CloudReply = match result {
            Ok(reply) => reply,
            // Stopped by the caller after text was shown: keep the turn and what was
            // shown, as a device answer keeps its partial text. Before any text, as before.
            Err(e @ Error::Cloud { kind: CloudErrorKind::Cancelled, .. }) if !shown.is_empty() => {
                self.messages.extend(new);
                self.messages.push(Message::assistant(shown));
                self.last_side = Some(AnsweredBy::Cloud);
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        for call in &reply.tool_calls {
            on_event(RouteEvent::ToolCall(call));
        }
        let structured = match constraint {
            Some(c) if c.is_json() => match serde_json::from_str(&reply.text) {
                Ok(value) => Some(Structured::Json { value }),
                Err(e) => {
                    return Err(Error::StructuredOutputIncomplete {
                        partial_text: reply.text,
                        stop_reason: format!("the cloud's answer is not valid JSON: {e}"),
                    })
                }
            },
            Some(Constraint::Choice { options }) => match super::client::choice_from_cloud(&reply.text, options) {
                // The cloud gives no probabilities: the option it chose gets 1.
                Some(index) => {
                    reply.text = options[index].clone();
                    on_event(RouteEvent::Text(&reply.text));
                    let probabilities = (0..options.len()).map(|i| if i == index { 1.0 } else { 0.0 }).collect();
                    Some(Structured::Choice { index, probabilities })
                }
                None => {
                    return Err(Error::StructuredOutputIncomplete {
                        partial_text: reply.text,
                        stop_reason: "the cloud's answer is not one of the options".into(),
                    })
                }
            },
            _ => None,
        };
        let (cloud_input_tokens, cloud_output_tokens, estimated) = match reply.usage {
            Some(u) => (u.prompt_tokens, u.completion_tokens, false),
            None => {
                let (prompt, estimated) = self.count_tokens(&outgoing);
                (prompt, self.count_tokens(&[Message::assistant(reply.text.clone())]).0, estimated)
            }
        };
        let p = self.config.pricing;
        let cloud_cost =
            (f64::from(cloud_input_tokens) * p.input_per_million + f64::from(cloud_output_tokens) * p.output_per_million) / 1e6;
        let cost = Cost { cloud_input_tokens, cloud_output_tokens, cloud_tokens_estimated: estimated, cloud_cost, ..Cost::default() };
        self.messages.extend(new);
        self.messages.push(Message::assistant_calls(reply.text.clone(), reply.tool_calls.clone()));
        self.last_side = Some(AnsweredBy::Cloud);
        self.totals.requests += 1;
        self.totals.cloud_answers += 1;
        self.totals.cloud_input_tokens += u64::from(cloud_input_tokens);
        self.totals.cloud_output_tokens += u64::from(cloud_output_tokens);
        self.totals.cloud_cost += cloud_cost;
        Ok(RoutedReply { text: reply.text, route, cost, metrics: None, confidence: None, structured, tool_calls: reply.tool_calls })
    }

    /// Tokens in `messages`, and whether that is an estimate: counted with
    /// the cloud model's tokenizer when the app gave one (exact), else with
    /// the device model's (an estimate for a different cloud model), else
    /// about four characters per token.
    fn count_tokens(&self, messages: &[Message]) -> (u32, bool) {
        let text: String = messages.iter().map(|m| format!("{}: {}\n", m.role.as_str(), m.content)).collect();
        if let Some(tokenizer) = &self.config.cloud_tokenizer {
            return (tokenizer.count(&text), false);
        }
        match &self.local {
            Ok(local) => (local.model().tokenize(&text).len() as u32, true),
            Err(_) => (text.chars().count().div_ceil(4) as u32, true),
        }
    }
}

/// The device's send options for a routed request; with `escalate`, the
/// confidence threshold and latency budget that trigger escalation. With a
/// probe the token score never stops an answer: the probe judges it at the end.
fn device_options(config: &RouterConfig, options: &RouteOptions, escalate: bool) -> SendOptions {
    let probed = config.probe.as_ref().is_some_and(|p| Some(p.answer_form) == probe_form(options));
    let mid_stream = escalate && !probed;
    let confidence = ConfidenceOptions { threshold: if mid_stream { config.confidence.threshold } else { 0.0 }, ..config.confidence };
    SendOptions {
        cancel: options.cancel.clone(),
        on_cancel: PartialAnswer::Discard,
        confidence: Some(confidence),
        deadline: if escalate { config.latency_budget_ms.map(|ms| Instant::now() + Duration::from_millis(ms)) } else { None },
        constraint: options.constraint.clone(),
        tools: options.tools.clone(),
        tool_choice: options.tool_choice.clone(),
        ..SendOptions::default()
    }
}

/// The kind of answer a request asks for, as probes are trained on; `None`
/// for a request with tools (no probe judges tool calls).
fn probe_form(options: &RouteOptions) -> Option<crate::probe::AnswerForm> {
    use crate::probe::AnswerForm;
    match &options.constraint {
        _ if options.uses_tools() => None,
        Some(Constraint::Choice { .. }) => Some(AnswerForm::Choice),
        _ => Some(AnswerForm::FreeText),
    }
}

/// Scores a finished device answer with `probe` (when it fits the answer's
/// kind and features were kept; the score goes into its confidence), and
/// returns the signal the threshold judges after the fact: the probe's
/// score, else a choice's probability. Free text without a probe was
/// judged while it streamed.
fn judge(reply: &mut crate::chat::Reply, probe: Option<&Probe>) -> Option<(&'static str, f32)> {
    let probed = probe.and_then(|p| reply.probe_score(p));
    let confidence = reply.metrics.confidence.as_mut()?;
    confidence.probe = probed;
    match (probed, confidence.answer_probability) {
        (Some(p), _) => Some(("probe score", p)),
        (None, Some(p)) => Some(("answer probability", p)),
        (None, None) => None,
    }
}

/// Passes a device answer's text and tool calls on as route events.
fn device_event<'a>(on_event: &'a mut dyn FnMut(RouteEvent)) -> impl FnMut(ChatEvent<'_>) + 'a {
    move |event| match event {
        ChatEvent::Text(delta) => on_event(RouteEvent::Text(delta)),
        ChatEvent::ToolCall(call) => on_event(RouteEvent::ToolCall(call)),
        ChatEvent::Snapshot(_) | ChatEvent::ToolResult(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip() {
        for p in [RoutePolicy::LocalOnly, RoutePolicy::PreferLocal, RoutePolicy::PreferCloud, RoutePolicy::CloudOnly] {
            assert_eq!(p.as_str().parse::<RoutePolicy>().unwrap(), p);
        }
        assert!(matches!("anywhere".parse::<RoutePolicy>(), Err(Error::InvalidOption { name: "route", .. })));
        assert_eq!(crate::Role::User.as_str(), "user");
    }
}
