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

enum Event {
    Delta(String),
    Done(Result<pocketlm::Reply, pocketlm::Error>),
}

#[uniffi::export]
impl PocketConversation {
    /// Sends a user message; the answer streams to `listener`. Returns at once.
    pub fn send(&self, text: String, listener: Arc<dyn ReplyListener>) -> Arc<GenerationHandle> {
        let cancel = CancelToken::new();
        let finished = Arc::new(AtomicBool::new(false));
        let handle = Arc::new(GenerationHandle { cancel: cancel.clone(), finished: Arc::clone(&finished) });
        let (tx, rx) = mpsc::channel::<Event>();
        let inner = Arc::clone(&self.inner);
        std::thread::Builder::new()
            .name("pocketlm-decode".into())
            .spawn(move || {
                let options = SendOptions { cancel, on_cancel: PartialAnswer::Keep, ..SendOptions::default() };
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    lock(&inner).send(&text, &options, &mut |delta| {
                        let _ = tx.send(Event::Delta(delta.to_owned()));
                    })
                }));
                // A panic must still end the stream, or the caller would wait forever.
                // Release the conversation (and with it, possibly, the model)
                // before reporting completion, so a caller that frees its objects
                // on completion sees the memory go at once.
                drop(inner);
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
                for event in rx {
                    match event {
                        Event::Delta(text) => listener.on_delta(text),
                        Event::Done(result) => {
                            finished.store(true, Ordering::Release);
                            match result {
                                Ok(reply) => listener.on_complete(reply.into()),
                                Err(e) => listener.on_error(e.into()),
                            }
                        }
                    }
                }
            })
            .expect("spawning the delivery thread");
        handle
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
