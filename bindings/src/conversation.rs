//! `PocketConversation`: streaming answers through a listener and a handle.
//!
//! `send` returns at once. One thread runs the decode loop and queues each
//! delta; another delivers the queue to the listener. A slow listener
//! therefore never stalls decoding and never loses text, and the handle's
//! `cancel()` (or dropping it) stops the engine within one decode step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use pocketlm::{CancelToken, Conversation, PartialAnswer, SendOptions};

use crate::error::PocketLmError;
use crate::types::{ChatMessage, Reply, SamplingConfig};

/// Receives one answer as it is generated. Implemented in Kotlin or Swift.
/// Calls arrive in order on a PocketLM delivery thread: zero or more
/// `on_delta`, then exactly one `on_complete` or `on_error`.
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
    inner: Arc<Mutex<Conversation>>,
}

impl PocketConversation {
    pub(crate) fn new(conversation: Conversation) -> Self {
        PocketConversation { inner: Arc::new(Mutex::new(conversation)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Conversation> {
        lock(&self.inner)
    }
}

fn lock(inner: &Mutex<Conversation>) -> std::sync::MutexGuard<'_, Conversation> {
    // A panic while holding the lock cannot leave the conversation torn: its
    // methods restore the history on every error path.
    inner.lock().unwrap_or_else(|p| p.into_inner())
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
    let (tx, rx) = mpsc::channel::<Event<T, R>>();
    std::thread::Builder::new()
        .name("pocketlm-decode".into())
        .spawn(move || {
            let emit = |item: T| {
                let _ = tx.send(Event::Item(item));
            };
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || work(cancel, &emit)));
            let result = run.unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown");
                Err(pocketlm::Error::Inference(format!("internal error while generating: {what}")))
            });
            let _ = tx.send(Event::Done(result));
        })
        .expect("spawning the decode thread");
    std::thread::Builder::new()
        .name("pocketlm-deliver".into())
        .spawn(move || {
            let mut complete = Some(complete);
            for event in rx {
                match event {
                    Event::Item(item) => deliver(item),
                    Event::Done(result) => {
                        finished.store(true, Ordering::Release);
                        if let Some(complete) = complete.take() {
                            complete(result);
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
        let done = Arc::clone(&listener);
        spawn_streaming(
            move |cancel, emit: &dyn Fn(String)| {
                let options = SendOptions { cancel, on_cancel: PartialAnswer::Keep, ..SendOptions::default() };
                let result = lock(&inner).send(&text, &options, &mut |delta| emit(delta.to_owned()));
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
        Ok(self.lock().ask(&text)?.into())
    }

    /// Forgets all messages but the system prompt (its KV cache is kept).
    pub fn reset(&self) {
        self.lock().reset();
    }

    /// The messages so far, system prompt first.
    pub fn messages(&self) -> Vec<ChatMessage> {
        self.lock().messages().iter().map(Into::into).collect()
    }

    /// Changes sampling for the next answers.
    pub fn set_sampling(&self, sampling: SamplingConfig) -> Result<(), PocketLmError> {
        Ok(self.lock().set_sampling(sampling.into())?)
    }

    /// The context window in tokens.
    pub fn context_length(&self) -> u32 {
        self.lock().context_length()
    }
}
