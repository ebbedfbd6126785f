//! Hybrid routing (device first, opt-in cloud; the `cloud` feature):
//! `RoutedConversation` for Kotlin and Swift, with its configuration and replies beside it. Streams like `PocketConversation`: `send` returns a
//! handle at once and events reach a `RouteListener` in order. Reads never
//! wait for a running answer (which may include cloud I/O): see `LiveHistory`.

mod config;
mod reply;

use std::path::Path;
use std::sync::{Arc, Mutex};

pub use config::{CloudEndpoint, RoutePolicy, RouteRequest, RouterConfig};
use pocketlm::{RouteEvent, RoutedChat};
pub use reply::{Cost, RouteReason, RoutedReply};

use crate::chat::{ChatMessage, ConversationConfig, RestoredSession, SavedSession, ToolCall, ToolResult};
use crate::convert::{amount, count, opt_amount};
use crate::error::FfiError;
use crate::live::LiveHistory;
use crate::model::{ModelConfig, PocketModel};
use crate::task::{lock, spawn_streaming, GenerationHandle};

/// Sees, and may rewrite, every message before it leaves the device.
#[uniffi::export(with_foreign)]
pub trait Redactor: Send + Sync {
    /// Returns the content to send for a message with this role (`system`, `user`, `assistant`).
    fn redact(&self, role: String, content: String) -> String;
}

/// Receives one routed answer, in order: text and tool calls, possibly a
/// restart, then one `on_complete` or `on_error`.
#[uniffi::export(with_foreign)]
pub trait RouteListener: Send + Sync {
    /// More answer text.
    fn on_text(&self, text: String);
    /// Drop the text shown so far: an answer from the other side follows.
    fn on_restart(&self, reason: RouteReason);
    /// The model called a tool (its arguments are complete and checked).
    fn on_tool_call(&self, call: ToolCall);
    /// The answer is finished.
    fn on_complete(&self, reply: RoutedReply);
    /// The request failed; the history is as it was, except after a cloud
    /// answer stopped by `cancel` once text was shown: that text is kept.
    fn on_error(&self, error: FfiError);
}

fn router_config(config: RouterConfig, redactor: Option<Arc<dyn Redactor>>) -> Result<pocketlm::RouterConfig, pocketlm::Error> {
    let cloud = match config.cloud {
        Some(c) => Some(pocketlm::CloudConfig {
            read_timeout_ms: amount("read_timeout_ms", c.read_timeout_ms)?,
            max_retries: count("max_retries", c.max_retries)?,
            ..pocketlm::CloudConfig::new(c.base_url, c.model, c.api_key)
        }),
        None => None,
    };
    Ok(pocketlm::RouterConfig {
        policy: config.policy.into(),
        cloud,
        pricing: pocketlm::Pricing {
            input_per_million: config.price_input_per_million,
            output_per_million: config.price_output_per_million,
        },
        confidence: pocketlm::ConfidenceOptions { threshold: config.confidence_threshold, ..Default::default() },
        latency_budget_ms: opt_amount("latency_budget_ms", config.latency_budget_ms)?,
        redact: redactor.map(|r| -> pocketlm::Redactor {
            Arc::new(move |m: &pocketlm::Message| m.with_content(r.redact(m.role.as_str().to_string(), m.content.clone())))
        }),
        probe: config.probe_path.map(|p| pocketlm::Probe::load(std::path::Path::new(&p))).transpose()?.map(Arc::new),
        budget: pocketlm::CloudBudget { per_request: config.budget_per_request, total: config.budget_total },
        cloud_tokenizer: config
            .cloud_tokenizer_path
            .map(|p| pocketlm::CloudTokenizer::from_file(std::path::Path::new(&p)))
            .transpose()?
            .map(Arc::new),
    })
}

/// What a routed answer streams before it completes.
enum Streamed {
    Text(String),
    Restart(RouteReason),
    Call(ToolCall),
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
    ) -> Result<Arc<Self>, FfiError> {
        let sampling: pocketlm::SamplingParams = conversation.sampling.clone().try_into()?;
        let router = router_config(router, redactor)?;
        // A probe reads hidden states: the context keeps them from the start.
        let hidden_states = router.probe.is_some();
        let local = PocketModel::load_core(&model_path, model_config).and_then(|model| {
            let options = pocketlm::ConversationOptions { hidden_states, ..model.conversation_options(conversation)? };
            pocketlm::Conversation::new(model.core(), options)
        });
        Ok(Self::wrap(RoutedChat::new(local, router, sampling)?))
    }

    /// Routes a new conversation over an already loaded `model` (several
    /// conversations can share one model, as with `PocketModel::conversation`).
    #[uniffi::constructor]
    pub fn over(
        model: Arc<PocketModel>,
        conversation: ConversationConfig,
        router: RouterConfig,
        redactor: Option<Arc<dyn Redactor>>,
    ) -> Result<Arc<Self>, FfiError> {
        let sampling: pocketlm::SamplingParams = conversation.sampling.clone().try_into()?;
        let router = router_config(router, redactor)?;
        // A bad option is the caller's to fix; only a device that cannot run the conversation escalates.
        let options = pocketlm::ConversationOptions { hidden_states: router.probe.is_some(), ..model.conversation_options(conversation)? };
        let local = pocketlm::Conversation::new(model.core(), options);
        Ok(Self::wrap(RoutedChat::new(local, router, sampling)?))
    }

    /// Sends a user message; the answer streams to `listener`. Returns at once.
    pub fn send(&self, text: String, request: RouteRequest, listener: Arc<dyn RouteListener>) -> Arc<GenerationHandle> {
        self.stream(request, listener, move |chat, options, on_event, messages| {
            messages.begin(&text);
            chat.send(&text, options, on_event)
        })
    }

    /// Answers the last reply's tool calls with their results (one per
    /// call); the side that made the calls goes on, streaming to `listener`.
    pub fn send_tool_results(
        &self,
        results: Vec<ToolResult>,
        request: RouteRequest,
        listener: Arc<dyn RouteListener>,
    ) -> Arc<GenerationHandle> {
        self.stream(request, listener, move |chat, options, on_event, _| {
            let results: Vec<pocketlm::ToolResult> = results.into_iter().map(Into::into).collect();
            chat.send_tool_results(&results, options, on_event)
        })
    }

    /// Answers the last user message again, replacing its answer (if any),
    /// by the policy; streams to `listener`. If it is stopped before any
    /// text, the previous answer stays. A conversation without a user message
    /// reports `InvalidOption`.
    pub fn regenerate(&self, request: RouteRequest, listener: Arc<dyn RouteListener>) -> Arc<GenerationHandle> {
        self.stream(request, listener, move |chat, options, on_event, messages| {
            messages.restart();
            chat.regenerate(options, on_event)
        })
    }

    /// Replaces the last user message with `text` (dropping its answer) and
    /// answers it by the policy, streaming to `listener`. Without a user
    /// message it is `send`.
    pub fn edit_last_message(&self, text: String, request: RouteRequest, listener: Arc<dyn RouteListener>) -> Arc<GenerationHandle> {
        self.stream(request, listener, move |chat, options, on_event, messages| {
            messages.edit_last(&text);
            chat.edit_last(&text, options, on_event)
        })
    }

    /// Saves the history and the device model's KV cache to `path`
    /// (atomically; see `PocketConversation::save`). Waits for a running
    /// answer. Without a device model there is nothing to save it with: the
    /// load error.
    pub fn save(&self, path: String) -> Result<SavedSession, FfiError> {
        Ok(lock(&self.inner).save(Path::new(&path))?.into())
    }

    /// Restores a conversation saved by `save` (or by a `PocketConversation`):
    /// the history, and the device's KV cache when the file matches the
    /// device model and settings (else `fallback_kind` says why not, and the
    /// next device answer re-reads the history). Waits for a running answer.
    pub fn restore(&self, path: String) -> Result<RestoredSession, FfiError> {
        let mut chat = lock(&self.inner);
        let (restored, why) = chat.restore(Path::new(&path))?;
        self.messages.set(snapshot(&chat));
        Ok(RestoredSession::new(restored, why))
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

impl RoutedConversation {
    fn wrap(chat: RoutedChat) -> Arc<Self> {
        let messages = Arc::new(LiveHistory::new(snapshot(&chat)));
        let total_cloud_cost = Arc::new(Mutex::new(chat.totals().cloud_cost));
        let device_error = chat.local_error().map(ToString::to_string);
        Arc::new(RoutedConversation { inner: Arc::new(Mutex::new(chat)), messages, total_cloud_cost, device_error })
    }

    /// Runs `call` on the router as a task streaming to `listener`.
    fn stream(
        &self,
        request: RouteRequest,
        listener: Arc<dyn RouteListener>,
        call: impl FnOnce(
                &mut RoutedChat,
                &pocketlm::RouteOptions,
                &mut dyn FnMut(RouteEvent<'_>),
                &LiveHistory,
            ) -> pocketlm::Result<pocketlm::RoutedReply>
            + Send
            + 'static,
    ) -> Arc<GenerationHandle> {
        let inner = Arc::clone(&self.inner);
        let messages = Arc::clone(&self.messages);
        let total_cloud_cost = Arc::clone(&self.total_cloud_cost);
        let done = Arc::clone(&listener);
        spawn_streaming(
            move |cancel, emit: &dyn Fn(Streamed)| {
                let (constraint, tools, tool_choice) = match request.options {
                    Some(options) => options.parse()?,
                    None => Default::default(),
                };
                let options = pocketlm::RouteOptions {
                    policy: request.policy.map(Into::into),
                    allow_cloud: request.allow_cloud,
                    escalate: request.escalate,
                    cancel,
                    constraint,
                    tools,
                    tool_choice,
                };
                let mut chat = lock(&inner);
                let result = call(
                    &mut chat,
                    &options,
                    &mut |event| {
                        emit(match event {
                            RouteEvent::Text(t) => {
                                messages.append(t);
                                Streamed::Text(t.to_owned())
                            }
                            RouteEvent::Restart(r) => {
                                messages.restart();
                                Streamed::Restart(r.into())
                            }
                            RouteEvent::ToolCall(c) => Streamed::Call(c.into()),
                        })
                    },
                    &messages,
                );
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
                Streamed::Call(c) => listener.on_tool_call(c),
            },
            move |result| match result {
                Ok(reply) => done.on_complete(reply.into()),
                Err(e) => done.on_error(e.into()),
            },
        )
    }
}
