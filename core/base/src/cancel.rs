//! Cooperative cancellation of a running generation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A cloneable flag that stops a generation (or a model load) from any thread.
///
/// The engine checks it before every decode step, and llama.cpp checks it
/// between the graph nodes of a prompt batch (on the CPU backend), so a
/// cancelled generation ends within one step, even in the middle of a long
/// prompt. Give each request its own token.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh, not-yet-cancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation. Safe to call from any thread, any number of times.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// The flag itself, for llama.cpp's abort callback (the engine's
    /// `Session::prefill`). Not for apps.
    #[doc(hidden)]
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }
}
