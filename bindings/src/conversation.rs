//! `PocketConversation`: streaming answers through a listener and a handle.
//!
//! `send` returns at once. One thread runs the decode loop and queues each
//! delta; another delivers the queue to the listener. A slow listener
//! therefore never stalls decoding and never loses text, and the handle's
//! `cancel()` (or dropping it) stops the engine within one decode step.
//!
//! Reads never wait for a running answer: the engine's lock is held for a
//! whole answer, so what reads return (`messages`, `context_length`) lives
//! beside it, captured at creation or kept up to date by the running request
//! (see [`LiveHistory`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use pocketlm::{CancelToken, Conversation, PartialAnswer, SendOptions};

use crate::error::PocketLmError;
use crate::live::LiveHistory;
use crate::types::{ChatMessage, Reply, SamplingConfig};

/// Receives one answer as it is generated. Implemented in Kotlin or Swift.
/// Calls arrive in order on a PocketLM delivery thread: zero or more
/// `on_delta`, then exactly one `on_complete` or `on_error`. If a call fails
/// (a Kotlin exception), decoding stops as if cancelled, no further deltas
/// are delivered, and `on_error` reports the failure; the history keeps the
/// partial answer, as after a cancel.
#[uniffi::export(with_foreign)]
pub trait ReplyListener: Send + Sync {
    /// A new piece of the answer (valid UTF-8, never part of a stop sequence).
    fn on_delta(&self, text: String);
    /// The answer is finished (also after cancellation: see `metrics.stop_reason`).
    fn on_complete(&self, reply: Reply);
    /// The request failed; the conversation is as it was before it.
    fn on_error(&self, error: PocketLmError);
}

/// Controls one running answer. Cancelling, or dropping the handle, stops
/// generation within one decode step.
#[derive(uniffi::Object)]
pub struct GenerationHandle {
    cancel: CancelToken,
    finished: Arc<AtomicBool>,
}

#[uniffi::export]
impl GenerationHandle {
    /// Stops the answer; safe from any thread, any number of times.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether the listener has received its final call.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

impl GenerationHandle {
    pub(crate) fn new(cancel: CancelToken, finished: Arc<AtomicBool>) -> Self {
        GenerationHandle { cancel, finished }
    }
}

impl Drop for GenerationHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
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

/// Locks `inner`, even after a panic elsewhere: a panic while holding the lock
/// cannot leave a conversation torn (its methods restore the history on every
/// error path), and snapshots are replaced whole.
pub(crate) fn lock<T>(inner: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

/// The text of a caught panic (uniffi panics with the foreign exception's text).
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied()).unwrap_or("unknown")
}

/// What the decode thread sends the delivery thread.
enum Event<T, R> {
    Item(T),
    Done(Result<R, pocketlm::Error>),
}

/// Runs `work` on a decode thread and hands what it emits, then its result,
/// to `deliver` and `complete` on a delivery thread, in order. A slow
/// listener never stalls decoding; a panic still ends the stream with an
/// error. `work` (and what it holds, such as the conversation) is dropped
/// before completion is reported, so a caller that frees its objects on
/// completion sees the memory go at once.
///
/// A failing listener (uniffi turns a foreign exception in a callback into a
/// panic) cancels `work`, gets no further items, and `complete` receives an
/// error instead of the result: the stream always ends, and decoding stops
/// instead of running on to `max_tokens` holding the engine's lock.
/// Returns the handle that cancels `work` (through the token it is given).
pub(crate) fn spawn_streaming<T, R>(
    work: impl FnOnce(CancelToken, &dyn Fn(T)) -> Result<R, pocketlm::Error> + Send + 'static,
    deliver: impl Fn(T) + Send + 'static,
    complete: impl FnOnce(Result<R, pocketlm::Error>) + Send + 'static,
) -> Arc<GenerationHandle>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let cancel = CancelToken::new();
    let finished = Arc::new(AtomicBool::new(false));
    let handle = Arc::new(GenerationHandle::new(cancel.clone(), Arc::clone(&finished)));
    let stop = cancel.clone();
    let (tx, rx) = mpsc::channel::<Event<T, R>>();
    std::thread::Builder::new()
        .name("pocketlm-decode".into())
        .spawn(move || {
            let emit = |item: T| {
                let _ = tx.send(Event::Item(item));
            };
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || work(cancel, &emit)));
            let result = run.unwrap_or_else(|panic| {
                let what = panic_text(&*panic);
                Err(pocketlm::Error::Inference(format!("internal error while generating: {what}")))
            });
            let _ = tx.send(Event::Done(result));
        })
        .expect("spawning the decode thread");
    std::thread::Builder::new()
        .name("pocketlm-deliver".into())
        .spawn(move || {
            let mut complete = Some(complete);
            let mut failed: Option<String> = None;
            for event in rx {
                match event {
                    Event::Item(_) if failed.is_some() => {}
                    Event::Item(item) => {
                        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| deliver(item))) {
                            let what = panic_text(&*panic).to_owned();
                            log::warn!("the listener failed, stopping the answer: {what}");
                            failed = Some(what);
                            stop.cancel();
                        }
                    }
                    Event::Done(result) => {
                        let result = match failed.take() {
                            Some(what) => {
                                Err(pocketlm::Error::Inference(format!("the listener failed, so the answer was stopped: {what}")))
                            }
                            None => result,
                        };
                        finished.store(true, Ordering::Release);
                        if let Some(complete) = complete.take() {
                            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| complete(result))) {
                                log::warn!("the listener failed on completion: {}", panic_text(&*panic));
                            }
                        }
                    }
                }
            }
        })
        .expect("spawning the delivery thread");
    handle
}

#[uniffi::export]
impl PocketConversation {
    /// Sends a user message; the answer streams to `listener`. Returns at once.
    pub fn send(&self, text: String, listener: Arc<dyn ReplyListener>) -> Arc<GenerationHandle> {
        let inner = Arc::clone(&self.inner);
        let messages = Arc::clone(&self.messages);
        let done = Arc::clone(&listener);
        spawn_streaming(
            move |cancel, emit: &dyn Fn(String)| {
                let options = SendOptions { cancel, on_cancel: PartialAnswer::Keep, ..SendOptions::default() };
                let mut conversation = lock(&inner);
                messages.begin(&text);
                let result = conversation.send(&text, &options, &mut |delta| {
                    messages.append(delta);
                    emit(delta.to_owned());
                });
                // Before completion is reported: `messages()` is then the engine's history.
                messages.set(snapshot(&conversation));
                drop(conversation);
                drop(inner);
                result
            },
            move |delta| listener.on_delta(delta),
            move |result| match result {
                Ok(reply) => done.on_complete(reply.into()),
                Err(e) => done.on_error(e.into()),
            },
        )
    }

    /// Sends a user message and blocks until the whole answer is ready.
    pub fn ask(&self, text: String) -> Result<Reply, PocketLmError> {
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

    /// Changes sampling for the next answers. Waits for a running answer.
    pub fn set_sampling(&self, sampling: SamplingConfig) -> Result<(), PocketLmError> {
        Ok(self.with_engine(|c| c.set_sampling(sampling.into()))?)
    }

    /// The context window in tokens (fixed at creation; never waits).
    pub fn context_length(&self) -> u32 {
        self.context_length
    }
}
