//! What the network layers (the `cloud` and `download` features) share: one
//! async runtime for the whole process.

use std::sync::OnceLock;

/// The one async runtime every cloud request and download in the process
/// runs on, created at first use. Its worker thread keeps driving
/// connections between calls, so a cancelled or failed transfer's socket is
/// closed at once, not at the next request. A runtime per client would also
/// panic when a client is dropped inside async code. Callers wait for their
/// task on a plain channel, never with `block_on`, so blocking calls are safe
/// from inside an app's own async code.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("pocketlm-net")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A reqwest error with every cause behind it (`error: cause: cause …`).
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
