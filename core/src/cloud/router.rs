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
    /// gets JSON constraints as `response_format`; others stay on the device).
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
    Reason(RouteReason, Option<String>),
    Failed(Error),
}

impl RoutedChat {
    /// Routes over `local`, the device conversation, or the reason there is none
    /// (a load error such as [`Error::ModelNotFound`] or [`Error::InsufficientMemory`]).
    /// With no device conversation, `sampling` is used for the cloud.
    pub fn new(local: std::result::Result<Conversation, Error>, config: RouterConfig, sampling: SamplingParams) -> Result<RoutedChat> {
        config.confidence.validate()?;
        sampling.validate()?;
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
        let cloud_allowed = options.allow_cloud && policy != RoutePolicy::LocalOnly && self.cloud.is_some();
        let route = |answered_by, reason, detail| RouteInfo { answered_by, reason, policy, detail };

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
                    Err(e) if self.local.is_ok() => self.device_fallback(text, options, policy, e.to_string(), e, on_event),
                    other => other,
                }
            }
            _ => {
                // LocalOnly, PreferLocal, and PreferCloud without the cloud.
                let escalate = policy == RoutePolicy::PreferLocal && cloud_allowed;
                match self.answer_on_device(text, options, escalate, on_event)? {
                    Ok(reply) => {
                        Ok(self.finish_device(vec![Message::user(text)], reply, route(AnsweredBy::Device, RouteReason::Policy, None)))
                    }
                    Err(Escalation::Failed(e)) => Err(e),
                    Err(Escalation::Reason(reason, detail)) => {
                        on_event(RouteEvent::Restart(reason));
                        match self.answer_in_cloud(vec![Message::user(text)], options, route(AnsweredBy::Cloud, reason, detail), on_event) {
                            // The escalation failed but the device can still answer
                            // (unconfident or slow beats nothing): answer there, plainly.
                            Err(e @ Error::Cloud { .. })
                                if matches!(reason, RouteReason::LowConfidence | RouteReason::LatencyBudget)
                                    && !matches!(e, Error::Cloud { kind: CloudErrorKind::Cancelled, .. }) =>
                            {
                                let detail = format!("escalated for {}, then {e}", reason.as_str());
                                self.device_fallback(text, options, policy, detail, e, on_event)
                            }
                            other => other,
                        }
                    }
                }
            }
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
                return Ok(Err(Escalation::Reason(reason, Some(e.to_string()))));
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
                Ok(Err(Escalation::Reason(RouteReason::LowConfidence, Some(detail))))
            }
            Ok(reply) if escalate && reply.metrics.stop_reason == StopReason::Deadline => {
                let detail = format!("device answer unfinished after {:.0} ms", reply.metrics.total_ms);
                Ok(Err(Escalation::Reason(RouteReason::LatencyBudget, Some(detail))))
            }
            Ok(reply) => Ok(Ok(reply)),
            Err(e @ Error::ContextOverflow { .. }) if escalate => {
                Ok(Err(Escalation::Reason(RouteReason::PromptTooLong, Some(e.to_string()))))
            }
            Err(e) => Ok(Err(Escalation::Failed(e))),
        }
    }

    /// The cloud failed (`error`); answers on the device instead, reason `CloudFailed`.
    fn device_fallback(
        &mut self,
        text: &str,
        options: &RouteOptions,
        policy: RoutePolicy,
        detail: String,
        error: Error,
        on_event: &mut dyn FnMut(RouteEvent),
    ) -> Result<RoutedReply> {
        log::info!("cloud failed, answering on the device: {detail}");
        on_event(RouteEvent::Restart(RouteReason::CloudFailed));
        let route = RouteInfo { answered_by: AnsweredBy::Device, reason: RouteReason::CloudFailed, policy, detail: Some(detail) };
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
        let sampling = match &self.local {
            Ok(local) => local.sampling().clone(),
            Err(_) => self.sampling.clone(),
        };
        let constraint = options.constraint.as_ref();
        let request = CloudRequest {
            constraint,
            tools: if options.uses_tools() { &options.tools } else { &[] },
            tool_choice: Some(&options.tool_choice),
        };
        let mut shown = String::new();
        let result = cloud.chat_with(&outgoing, &sampling, &request, &options.cancel, &mut |delta| {
            shown.push_str(delta);
            on_event(RouteEvent::Text(delta))
        });
        let reply: CloudReply = match result {
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
            _ => None,
        };
        let (cloud_input_tokens, cloud_output_tokens, estimated) = match reply.usage {
            Some(u) => (u.prompt_tokens, u.completion_tokens, false),
            None => (self.count_tokens(&outgoing), self.count_tokens(&[Message::assistant(reply.text.clone())]), true),
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

    /// Tokens in `messages` when the server reports no usage: counted with the
    /// device model's tokenizer when there is one (an estimate for a different
    /// cloud model), else about four characters per token.
    fn count_tokens(&self, messages: &[Message]) -> u32 {
        let text: String = messages.iter().map(|m| format!("{}: {}\n", m.role.as_str(), m.content)).collect();
        match &self.local {
            Ok(local) => local.model().tokenize(&text).len() as u32,
            Err(_) => text.chars().count().div_ceil(4) as u32,
        }
    }
}

/// The device's send options for a routed request; with `escalate`, the
/// confidence threshold and latency budget that trigger escalation.
fn device_options(config: &RouterConfig, options: &RouteOptions, escalate: bool) -> SendOptions {
    let confidence = ConfidenceOptions { threshold: if escalate { config.confidence.threshold } else { 0.0 }, ..config.confidence };
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
