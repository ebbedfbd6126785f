//! Chatting: `PocketConversation` streams answers through a listener and a
//! handle; beside it, its configuration, messages and replies.
//!
//! `send` returns at once and runs as a task (see `task.rs`).
//!
//! Reads never wait for a running answer: the engine's lock is held for a
//! whole answer, so what reads return (`messages`, `context_length`) lives
//! beside it, captured at creation or kept up to date by the running request
//! (see [`LiveHistory`]).

mod config;
mod message;
mod reply;
mod session;
mod structured;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use config::{ConversationConfig, SamplingConfig};
pub use message::{ChatMessage, Role};
use pocketlm::{ChatEvent, Conversation, PartialAnswer, SendOptions};
pub use reply::{Metrics, Reply, StopReason};
pub use session::{read_session_summary, RestoredSession, SavedSession, SessionSummary};
pub use structured::{OutputConstraint, RequestOptions, StructuredValue, ToolCall, ToolChoice, ToolResult, ToolSpec};

use crate::adapter::AdapterSetting;
use crate::convert::saturating_i32;
use crate::error::FfiError;
use crate::live::LiveHistory;
use crate::task::{lock, spawn_streaming, GenerationHandle};

/// Receives one answer as it is generated. Implemented in Kotlin or Swift.
/// Calls arrive in order on a PocketLM delivery thread: zero or more
/// `on_delta`, then exactly one `on_complete` or `on_error`. If a call fails
/// (a Kotlin exception), decoding stops as if cancelled, no further deltas
/// are delivered, and `on_error` reports the failure; the history keeps the
/// partial answer, as after a cancel.
#[uniffi::export(with_foreign)]
pub trait ReplyListener: Send + Sync {
    /// A new piece of the answer (valid UTF-8, never part of a stop sequence
    /// or of tool-call markup).
    fn on_delta(&self, text: String);
    /// A JSON answer as written so far (complete members, a string cut
    /// mid-way, open objects and arrays closed), as JSON text.
    fn on_snapshot(&self, json: String);
    /// The model decided to call a tool (arguments complete and valid).
    fn on_tool_call(&self, call: ToolCall);
    /// The answer is finished (also after cancellation: see `metrics.stop_reason`).
    fn on_complete(&self, reply: Reply);
    /// The request failed; the conversation is as it was before it.
    fn on_error(&self, error: FfiError);
}

/// A multi-turn chat with its own KV cache. Requests on one conversation run
/// one after another; use one conversation per concurrent chat.
#[derive(uniffi::Object)]
pub struct PocketConversation {
    /// The engine, locked for the whole of a request.
    inner: Arc<Mutex<Conversation>>,
    /// The history for reads that must not wait for a running request.
    messages: Arc<LiveHistory>,
    context_length: u32,
}

impl PocketConversation {
    pub(crate) fn new(conversation: Conversation) -> Self {
        let messages = Arc::new(LiveHistory::new(snapshot(&conversation)));
        let context_length = conversation.context_length();
        PocketConversation { inner: Arc::new(Mutex::new(conversation)), messages, context_length }
    }

    /// Runs `f` on the engine (waiting for a running request), then refreshes what reads see.
    fn with_engine<R>(&self, f: impl FnOnce(&mut Conversation) -> R) -> R {
        let mut conversation = lock(&self.inner);
        let result = f(&mut conversation);
        self.messages.set(snapshot(&conversation));
        result
    }
}

/// The history in FFI form.
fn snapshot(conversation: &Conversation) -> Vec<ChatMessage> {
    conversation.messages().iter().map(Into::into).collect()
}

#[uniffi::export]
impl PocketConversation {
    /// Sends a user message; the answer streams to `listener`. Returns at once.
    pub fn send(&self, text: String, listener: Arc<dyn ReplyListener>) -> Arc<GenerationHandle> {
        self.stream(Ok(SendOptions::default()), listener, move |conversation, options, on_event, messages| {
            messages.begin(&text);
            conversation.send_events(&text, options, on_event)
        })
    }

    /// Like `send`, with a constraint on the answer or tools the model may
    /// call. Bad JSON in `options` is reported to the listener's `on_error`.
    pub fn send_with(&self, text: String, options: RequestOptions, listener: Arc<dyn ReplyListener>) -> Arc<GenerationHandle> {
        self.stream(with_request(options), listener, move |conversation, options, on_event, messages| {
            messages.begin(&text);
            conversation.send_events(&text, options, on_event)
        })
    }

    /// Like `send_with`, with images the user sent along (JPEG or PNG bytes
    /// each, placed before the text, in order), decoded off the caller's
    /// thread. Needs a vision projector (`set_projector`): without one, or
    /// with a bad image (`InvalidImage`, with its position), the listener's
    /// `on_error` is called and the history is unchanged.
    pub fn send_with_images(
        &self,
        text: String,
        images: Vec<Vec<u8>>,
        options: RequestOptions,
        listener: Arc<dyn ReplyListener>,
    ) -> Arc<GenerationHandle> {
        self.stream(with_request(options), listener, move |conversation, options, on_event, messages| {
            let images = crate::vision::decode_images(&images)?;
            messages.begin(&text);
            conversation.send_with_images_events(&text, &images, options, on_event)
        })
    }

    /// Answers the last user message again, replacing its answer (if any);
    /// the new answer streams to `listener`. If it is stopped or fails before
    /// any text, the previous answer stays. A conversation that does not end
    /// with a user message or its answer reports `InvalidOption`.
    pub fn regenerate(&self, options: RequestOptions, listener: Arc<dyn ReplyListener>) -> Arc<GenerationHandle> {
        self.stream(with_request(options), listener, move |conversation, options, on_event, messages| {
            messages.restart();
            conversation.regenerate_events(options, on_event)
        })
    }

    /// Replaces the last user message with `text` (dropping its answer) and
    /// streams the answer to it: a chat app's "edit". The KV cache keeps
    /// everything before that message. Without a user message it is `send_with`.
    pub fn edit_last_message(&self, text: String, options: RequestOptions, listener: Arc<dyn ReplyListener>) -> Arc<GenerationHandle> {
        self.stream(with_request(options), listener, move |conversation, options, on_event, messages| {
            messages.edit_last(&text);
            conversation.edit_last_events(&text, options, on_event)
        })
    }

    /// Answers the last reply's tool calls with their results (one per
    /// call); the model's next step streams to `listener`.
    pub fn send_tool_results(
        &self,
        results: Vec<ToolResult>,
        options: RequestOptions,
        listener: Arc<dyn ReplyListener>,
    ) -> Arc<GenerationHandle> {
        self.stream(with_request(options), listener, move |conversation, options, on_event, _| {
            let results: Vec<pocketlm::ToolResult> = results.into_iter().map(Into::into).collect();
            conversation.send_tool_results(&results, options, on_event)
        })
    }
}

/// One streamed piece of an answer, in delivery order.
enum Streamed {
    Text(String),
    Snapshot(String),
    Call(ToolCall),
}

fn with_request(request: RequestOptions) -> pocketlm::Result<SendOptions> {
    let mut options = SendOptions::default();
    request.apply(&mut options)?;
    Ok(options)
}

impl PocketConversation {
    /// Runs `request` on the engine as a task streaming to `listener`.
    fn stream(
        &self,
        options: pocketlm::Result<SendOptions>,
        listener: Arc<dyn ReplyListener>,
        request: impl FnOnce(&mut Conversation, &SendOptions, &mut dyn FnMut(ChatEvent<'_>), &LiveHistory) -> pocketlm::Result<pocketlm::Reply>
            + Send
            + 'static,
    ) -> Arc<GenerationHandle> {
        let inner = Arc::clone(&self.inner);
        let messages = Arc::clone(&self.messages);
        let done = Arc::clone(&listener);
        spawn_streaming(
            move |cancel, emit: &dyn Fn(Streamed)| {
                let options = match options {
                    Ok(options) => SendOptions { cancel, on_cancel: PartialAnswer::Keep, ..options },
                    Err(e) => return Err(e),
                };
                let mut conversation = lock(&inner);
                let result = request(
                    &mut conversation,
                    &options,
                    &mut |event| match event {
                        ChatEvent::Text(delta) => {
                            messages.append(delta);
                            emit(Streamed::Text(delta.to_owned()));
                        }
                        ChatEvent::Snapshot(value) => emit(Streamed::Snapshot(value.to_string())),
                        ChatEvent::ToolCall(call) => emit(Streamed::Call(call.into())),
                        ChatEvent::ToolResult(_) => {}
                    },
                    &messages,
                );
                // Before completion is reported: `messages()` is then the engine's history.
                messages.set(snapshot(&conversation));
                drop(conversation);
                drop(inner);
                result
            },
            move |item| match item {
                Streamed::Text(text) => listener.on_delta(text),
                Streamed::Snapshot(json) => listener.on_snapshot(json),
                Streamed::Call(call) => listener.on_tool_call(call),
            },
            move |result| match result {
                Ok(reply) => done.on_complete(reply.into()),
                Err(e) => done.on_error(e.into()),
            },
        )
    }
}

#[uniffi::export]
impl PocketConversation {
    /// Sends a user message and blocks until the whole answer is ready.
    pub fn ask(&self, text: String) -> Result<Reply, FfiError> {
        Ok(self.with_engine(|c| c.ask(&text))?.into())
    }

    /// Forgets all messages but the system prompt (its KV cache is kept).
    /// Waits for a running answer.
    pub fn reset(&self) {
        self.with_engine(Conversation::reset);
    }

    /// The messages so far, system prompt first. Never waits: during an
    /// answer it includes the message being answered and the text generated
    /// so far (possibly a little ahead of what the listener has received).
    /// Once the answer ends, before the listener hears so, it is the
    /// engine's history: the partial answer stays after a cancel, and a
    /// failed request is rolled back. A request queued behind another appears
    /// when it starts.
    pub fn messages(&self) -> Vec<ChatMessage> {
        self.messages.get()
    }

    /// Keeps only the first `len` messages (the system prompt counts), e.g. to
    /// edit the last user message and send it again; the KV cache keeps the
    /// shared prefix. A `len` beyond the history changes nothing. Waits for a
    /// running answer.
    pub fn truncate(&self, len: u32) {
        self.with_engine(|c| c.truncate(len as usize));
    }

    /// Sets the LoRA adapters the next answers use, each with its scale,
    /// replacing those set before (an empty list detaches them all). The
    /// history is kept; when the adapters in effect change, the next answer
    /// re-reads it. Fails, changing nothing, for an adapter loaded onto
    /// another model (`AdapterMismatch`), a scale that is not a finite
    /// number or an adapter given twice (`InvalidOption`). Waits for a
    /// running answer.
    pub fn set_adapters(&self, adapters: Vec<AdapterSetting>) -> Result<(), FfiError> {
        let adapters: Vec<_> = adapters.iter().map(|a| (a.adapter.adapter.clone(), a.scale)).collect();
        Ok(self.with_engine(|c| c.set_adapters(&adapters))?)
    }

    /// Lets the conversation see images through `projector` (loaded for its
    /// model), or stops it with `null`. Fails, changing nothing, for a
    /// projector of another model (`ProjectorMismatch`) or a batch smaller
    /// than an image (`ImagesUnsupported`). Waits for a running answer.
    pub fn set_projector(&self, projector: Option<Arc<crate::vision::PocketProjector>>) -> Result<(), FfiError> {
        let projector = projector.map(|p| p.projector.clone());
        Ok(self.with_engine(|c| c.set_projector(projector))?)
    }

    /// Changes sampling for the next answers. Waits for a running answer.
    pub fn set_sampling(&self, sampling: SamplingConfig) -> Result<(), FfiError> {
        let sampling = sampling.try_into()?;
        Ok(self.with_engine(|c| c.set_sampling(sampling))?)
    }

    /// Saves the transcript and the KV cache to `path` (atomically). Waits
    /// for a running answer; call it from a background thread.
    pub fn save(&self, path: String) -> Result<SavedSession, FfiError> {
        Ok(self.with_engine(|c| c.save(Path::new(&path)))?.into())
    }

    /// Restores a conversation saved by `save`: its messages and its KV cache,
    /// so the next answer evaluates only the new tokens. A file from another
    /// model, template, context settings or engine build, or one damaged or
    /// cut short, is `FfiError.Session` and keeps the messages (the KV cache
    /// may have been cleared: the next answer re-reads them); with
    /// `fall_back_to_transcript` the messages are restored anyway when the
    /// file's transcript is intact (the next answer re-reads them), and
    /// `fallback_kind` and `fallback_reason` say why the cache was not.
    pub fn restore(&self, path: String, fall_back_to_transcript: bool) -> Result<RestoredSession, FfiError> {
        let path = PathBuf::from(path);
        let (restored, why) =
            self.with_engine(
                |c| {
                    if fall_back_to_transcript {
                        c.restore_or_transcript(&path)
                    } else {
                        c.restore(&path).map(|r| (r, None))
                    }
                },
            )?;
        Ok(RestoredSession::new(restored, why))
    }

    /// Restores only the messages of a session file (saved with any model or
    /// settings); the next answer re-reads them.
    pub fn restore_transcript(&self, path: String) -> Result<RestoredSession, FfiError> {
        let restored = self.with_engine(|c| c.restore_transcript(Path::new(&path)))?;
        Ok(RestoredSession::new(restored, None))
    }

    /// The context window in tokens (fixed at creation; never waits).
    pub fn context_length(&self) -> i32 {
        saturating_i32(self.context_length)
    }
}
