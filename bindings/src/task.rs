//! Running one request on its own threads, and the handle that controls it
//! (shared by conversations and routed conversations).
//!
//! One thread runs the decode loop and queues what it emits; another delivers
//! the queue to the listener. A slow listener therefore never stalls decoding
//! and never loses text, and the handle's `cancel()` (or dropping it) stops
//! the engine within one decode step.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use pocketlm::CancelToken;

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
