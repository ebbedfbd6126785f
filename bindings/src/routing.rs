//! `RoutedConversation`: hybrid routing (device first, opt-in cloud) for
//! Kotlin and Swift. Streams like `PocketConversation`: `send` returns a
//! handle at once and events reach a `RouteListener` in order. Reads never
//! wait for a running answer (which may include cloud I/O): see `LiveHistory`.

use std::sync::{Arc, Mutex};

use pocketlm::{RouteEvent, RoutedChat};

use crate::conversation::{lock, spawn_streaming, GenerationHandle};
use crate::error::PocketLmError;
use crate::live::LiveHistory;
use crate::model::PocketModel;
use crate::types::{ChatMessage, ConversationConfig, Metrics, ModelConfig};

/// Where requests go. Nothing leaves the device under `LocalOnly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RoutePolicy {
    /// Only the device (the safe default to pass).
    LocalOnly,
    /// The device, escalating when it cannot or should not answer.
    PreferLocal,
    /// The cloud, falling back to the device when it fails.
    PreferCloud,
    /// Only the cloud.
    CloudOnly,
}

impl From<RoutePolicy> for pocketlm::RoutePolicy {
    fn from(p: RoutePolicy) -> Self {
        match p {
            RoutePolicy::LocalOnly => pocketlm::RoutePolicy::LocalOnly,
            RoutePolicy::PreferLocal => pocketlm::RoutePolicy::PreferLocal,
            RoutePolicy::PreferCloud => pocketlm::RoutePolicy::PreferCloud,
            RoutePolicy::CloudOnly => pocketlm::RoutePolicy::CloudOnly,
        }
    }
}

/// Why an answer came from where it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RouteReason {
    /// The policy's first choice answered.
    Policy,
    /// The device model is missing or failed to load.
    ModelUnavailable,
    /// The device model would not fit the memory budget.
    MemoryBudget,
    /// The prompt is longer than the device context.
    PromptTooLong,
    /// The device's confidence fell below the threshold.
    LowConfidence,
    /// The device answer exceeded the latency budget.
    LatencyBudget,
    /// The request asked for the cloud.
    Requested,
    /// The cloud failed, so the device answered.
    CloudFailed,
}

impl From<pocketlm::RouteReason> for RouteReason {
    fn from(r: pocketlm::RouteReason) -> Self {
        match r {
            pocketlm::RouteReason::Policy => RouteReason::Policy,
            pocketlm::RouteReason::ModelUnavailable => RouteReason::ModelUnavailable,
            pocketlm::RouteReason::MemoryBudget => RouteReason::MemoryBudget,
            pocketlm::RouteReason::PromptTooLong => RouteReason::PromptTooLong,
            pocketlm::RouteReason::LowConfidence => RouteReason::LowConfidence,
            pocketlm::RouteReason::LatencyBudget => RouteReason::LatencyBudget,
            pocketlm::RouteReason::Requested => RouteReason::Requested,
            pocketlm::RouteReason::CloudFailed => RouteReason::CloudFailed,
        }
    }
}

/// An OpenAI-compatible endpoint. The key stays in memory and is never logged.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CloudEndpoint {
    /// Base URL ending in `/v1`.
    pub base_url: String,
    /// Model name to request.
    pub model: String,
    /// Bearer token, if the endpoint needs one.
    #[uniffi(default = None)]
    pub api_key: Option<String>,
    /// Longest silence while waiting for data, in ms.
    #[uniffi(default = 30000)]
    pub read_timeout_ms: u64,
    /// Retries after transient failures (before any text streamed).
    #[uniffi(default = 2)]
    pub max_retries: u32,
}

/// How a routed conversation routes.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RouterConfig {
    /// The default policy.
    pub policy: RoutePolicy,
    /// The cloud endpoint; without one nothing can leave the device.
    #[uniffi(default = None)]
    pub cloud: Option<CloudEndpoint>,
    /// Escalate (prefer-local) when the confidence score falls below this, in [0, 1].
    #[uniffi(default = 0.0)]
    pub confidence_threshold: f32,
    /// Escalate (prefer-local) when a device answer takes longer, in ms.
    #[uniffi(default = None)]
    pub latency_budget_ms: Option<u64>,
    /// Cloud price per million prompt tokens.
    #[uniffi(default = 0.0)]
    pub price_input_per_million: f64,
    /// Cloud price per million generated tokens.
    #[uniffi(default = 0.0)]
    pub price_output_per_million: f64,
}

/// Per-request routing.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RouteRequest {
    /// Overrides the conversation's policy for this request.
    #[uniffi(default = None)]
    pub policy: Option<RoutePolicy>,
    /// `false` keeps this request on the device whatever the policy.
    #[uniffi(default = true)]
    pub allow_cloud: bool,
    /// Ask for the cloud explicitly (when allowed).
    #[uniffi(default = false)]
    pub escalate: bool,
}

/// What one request cost.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Cost {
    /// Prompt tokens the device processed.
    pub device_input_tokens: u32,
    /// Tokens the device generated.
    pub device_output_tokens: u32,
    /// Prompt tokens billed by the cloud.
    pub cloud_input_tokens: u32,
    /// Tokens generated by the cloud.
    pub cloud_output_tokens: u32,
    /// Whether the cloud counts are estimates (no usage from the server).
    pub cloud_tokens_estimated: bool,
    /// Cloud money spent.
    pub cloud_cost: f64,
}

/// A routed answer.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RoutedReply {
    /// The answer text.
    pub text: String,
    /// `true` when the cloud answered, `false` for the device.
    pub answered_by_cloud: bool,
    /// Why.
    pub reason: RouteReason,
    /// What went wrong on the other side, if anything.
    pub detail: Option<String>,
    /// What it cost.
    pub cost: Cost,
    /// The device's metrics, when the device answered.
    pub metrics: Option<Metrics>,
}

impl From<pocketlm::RoutedReply> for RoutedReply {
    fn from(r: pocketlm::RoutedReply) -> Self {
        let c = r.cost;
        RoutedReply {
            answered_by_cloud: r.route.answered_by == pocketlm::AnsweredBy::Cloud,
            reason: r.route.reason.into(),
            detail: r.route.detail,
            cost: Cost {
                device_input_tokens: c.device_input_tokens,
                device_output_tokens: c.device_output_tokens,
                cloud_input_tokens: c.cloud_input_tokens,
                cloud_output_tokens: c.cloud_output_tokens,
                cloud_tokens_estimated: c.cloud_tokens_estimated,
                cloud_cost: c.cloud_cost,
            },
            metrics: r.metrics.as_ref().map(Into::into),
            text: r.text,
        }
    }
}

/// Sees, and may rewrite, every message before it leaves the device.
#[uniffi::export(with_foreign)]
pub trait Redactor: Send + Sync {
    /// Returns the content to send for a message with this role (`system`, `user`, `assistant`).
    fn redact(&self, role: String, content: String) -> String;
}

/// Receives one routed answer, in order: text, possibly a restart, then one
/// `on_complete` or `on_error`.
#[uniffi::export(with_foreign)]
pub trait RouteListener: Send + Sync {
    /// More answer text.
    fn on_text(&self, text: String);
    /// Drop the text shown so far: an answer from the other side follows.
    fn on_restart(&self, reason: RouteReason);
    /// The answer is finished.
    fn on_complete(&self, reply: RoutedReply);
    /// The request failed; the history is as it was.
    fn on_error(&self, error: PocketLmError);
}

fn router_config(config: RouterConfig, redactor: Option<Arc<dyn Redactor>>) -> pocketlm::RouterConfig {
    pocketlm::RouterConfig {
        policy: config.policy.into(),
        cloud: config.cloud.map(|c| pocketlm::CloudConfig {
            read_timeout_ms: c.read_timeout_ms,
            max_retries: c.max_retries,
            ..pocketlm::CloudConfig::new(c.base_url, c.model, c.api_key)
        }),
        pricing: pocketlm::Pricing {
            input_per_million: config.price_input_per_million,
            output_per_million: config.price_output_per_million,
        },
        confidence: pocketlm::ConfidenceOptions { threshold: config.confidence_threshold, ..Default::default() },
        latency_budget_ms: config.latency_budget_ms,
        redact: redactor.map(|r| -> pocketlm::Redactor {
            Arc::new(move |m: &pocketlm::Message| pocketlm::Message {
                role: m.role,
                content: r.redact(m.role.as_str().to_string(), m.content.clone()),
            })
        }),
    }
}

/// What a routed answer streams before it completes.
enum Streamed {
    Text(String),
    Restart(RouteReason),
}

/// A conversation answered on the device or in the cloud, by policy.
#[derive(uniffi::Object)]
pub struct RoutedConversation {
    /// The router, locked for the whole of a request.
    inner: Arc<Mutex<RoutedChat>>,
    /// The history for reads that must not wait for a running request.
    messages: Arc<LiveHistory>,
    /// Cloud money spent, as of the last finished request.
    total_cloud_cost: Arc<Mutex<f64>>,
    /// Why the device model is unavailable (fixed when opened).
    device_error: Option<String>,
}

/// The history in FFI form.
fn snapshot(chat: &RoutedChat) -> Vec<ChatMessage> {
    chat.messages().iter().map(Into::into).collect()
}

#[uniffi::export]
impl RoutedConversation {
    /// Loads the model at `model_path` and routes over it. A model that cannot
    /// load (missing, corrupt, over the memory budget) is not an error here:
    /// the router escalates with that reason when the policy allows, and
    /// reports the load error otherwise.
    #[uniffi::constructor]
    pub fn open(
        model_path: String,
        model_config: ModelConfig,
        conversation: ConversationConfig,
        router: RouterConfig,
        redactor: Option<Arc<dyn Redactor>>,
    ) -> Result<Arc<Self>, PocketLmError> {
        let sampling: pocketlm::SamplingParams = conversation.sampling.clone().into();
        let local = PocketModel::load_core(&model_path, model_config)
            .and_then(|model| pocketlm::Conversation::new(model.core(), model.conversation_options(conversation)));
        let chat = RoutedChat::new(local, router_config(router, redactor), sampling)?;
        let messages = Arc::new(LiveHistory::new(snapshot(&chat)));
        let total_cloud_cost = Arc::new(Mutex::new(chat.totals().cloud_cost));
        let device_error = chat.local_error().map(ToString::to_string);
        Ok(Arc::new(RoutedConversation { inner: Arc::new(Mutex::new(chat)), messages, total_cloud_cost, device_error }))
    }

    /// Sends a user message; the answer streams to `listener`. Returns at once.
    pub fn send(&self, text: String, request: RouteRequest, listener: Arc<dyn RouteListener>) -> Arc<GenerationHandle> {
        let inner = Arc::clone(&self.inner);
        let messages = Arc::clone(&self.messages);
        let total_cloud_cost = Arc::clone(&self.total_cloud_cost);
        let done = Arc::clone(&listener);
        spawn_streaming(
            move |cancel, emit: &dyn Fn(Streamed)| {
                let options = pocketlm::RouteOptions {
                    policy: request.policy.map(Into::into),
                    allow_cloud: request.allow_cloud,
                    escalate: request.escalate,
                    cancel,
                };
                let mut chat = lock(&inner);
                messages.begin(&text);
                let result = chat.send(&text, &options, &mut |event| {
                    emit(match event {
                        RouteEvent::Text(t) => {
                            messages.append(t);
                            Streamed::Text(t.to_owned())
                        }
                        RouteEvent::Restart(r) => {
                            messages.restart();
                            Streamed::Restart(r.into())
                        }
                    })
                });
                // Before completion is reported: reads then see the router's own state.
                messages.set(snapshot(&chat));
                *lock(&total_cloud_cost) = chat.totals().cloud_cost;
                drop(chat);
                drop(inner);
                result
            },
            move |event| match event {
                Streamed::Text(t) => listener.on_text(t),
                Streamed::Restart(r) => listener.on_restart(r),
            },
            move |result| match result {
                Ok(reply) => done.on_complete(reply.into()),
                Err(e) => done.on_error(e.into()),
            },
        )
    }

    /// The history, whichever side answered each turn. Never waits: during
    /// an answer it includes the message being answered and the text streamed
    /// so far (dropped on a restart); once the answer ends, before
    /// `on_complete`/`on_error`, it is the router's own history.
    pub fn messages(&self) -> Vec<ChatMessage> {
        self.messages.get()
    }

    /// Cloud money spent so far by this conversation. Never waits: a running
    /// request's cost is added when it ends, before `on_complete`.
    pub fn total_cloud_cost(&self) -> f64 {
        *lock(&self.total_cloud_cost)
    }

    /// Why the device model is unavailable, if it is (fixed when opened; never waits).
    pub fn device_error(&self) -> Option<String> {
        self.device_error.clone()
    }
}
