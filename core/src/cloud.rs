//! The opt-in cloud path: an OpenAI-compatible Chat Completions client
//! (HTTPS with rustls, or plain HTTP on loopback), streaming over
//! server-sent events.
//!
//! Robustness, in order: a connect timeout and a read timeout (longest
//! silence between bytes); bounded retries with exponential backoff that
//! honour `Retry-After`, only before any text was streamed; a circuit breaker
//! that stops trying for a cool-down after repeated failed requests;
//! cancellation that drops the connection; and a typed [`CloudErrorKind`] for
//! every failure. A stream cut mid-answer is [`CloudErrorKind::Interrupted`],
//! never a truncated answer presented as complete.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::cancel::CancelToken;
use crate::error::{CloudErrorKind, Error, Result};
use crate::sampling::SamplingParams;
use crate::template::Message;

/// Where and how to reach the cloud model.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CloudConfig {
    /// OpenAI-compatible base URL ending in `/v1`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Bearer token; never logged.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
    /// Longest wait for a TCP/TLS connection, in ms.
    pub connect_timeout_ms: u64,
    /// Longest silence while waiting for the response or the next bytes, in ms.
    pub read_timeout_ms: u64,
    /// Retries after a transient failure (unreachable, timeout, 429, 5xx).
    pub max_retries: u32,
    /// First backoff, doubled at each retry, in ms.
    pub retry_backoff_ms: u64,
    /// Longest `Retry-After` honoured, in ms (a longer one fails at once).
    pub max_retry_after_ms: u64,
    /// Consecutive failed requests that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses requests, in ms.
    pub breaker_cooldown_ms: u64,
}

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig {
            base_url: String::new(),
            model: String::new(),
            api_key: None,
            connect_timeout_ms: 5_000,
            read_timeout_ms: 30_000,
            max_retries: 2,
            retry_backoff_ms: 250,
            max_retry_after_ms: 10_000,
            breaker_failures: 3,
            breaker_cooldown_ms: 30_000,
        }
    }
}

impl std::fmt::Debug for CloudConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl CloudConfig {
    /// A configuration with default timeouts, retries and breaker.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>, api_key: Option<String>) -> Self {
        CloudConfig { base_url: base_url.into(), model: model.into(), api_key, ..Default::default() }
    }

    fn validate(&self) -> Result<()> {
        let url = self.base_url.trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://")) || !url.ends_with("/v1") {
            return Err(Error::InvalidOption {
                name: "cloud_url",
                value: self.base_url.clone(),
                expected: "an http(s) base URL ending in /v1, e.g. https://api.openai.com/v1".into(),
            });
        }
        if self.model.trim().is_empty() {
            return Err(Error::InvalidOption { name: "cloud_model", value: String::new(), expected: "a model name".into() });
        }
        if self.connect_timeout_ms == 0 || self.read_timeout_ms == 0 {
            return Err(Error::InvalidOption {
                name: "cloud_timeout",
                value: format!("connect {} ms, read {} ms", self.connect_timeout_ms, self.read_timeout_ms),
                expected: "both at least 1 ms".into(),
            });
        }
        Ok(())
    }
}

/// Token counts reported by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudUsage {
    /// Prompt tokens billed.
    pub prompt_tokens: u32,
    /// Generated tokens billed.
    pub completion_tokens: u32,
}

/// A complete cloud answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudReply {
    /// The answer text.
    pub text: String,
    /// Usage from the server, if it sent one.
    pub usage: Option<CloudUsage>,
    /// The server's finish reason (`stop`, `length`, ...).
    pub finish_reason: String,
    /// Attempts made (1 = no retry).
    pub attempts: u32,
    /// Time to the first streamed text, in ms.
    pub ttft_ms: f64,
    /// Wall time including retries, in ms.
    pub total_ms: f64,
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// An OpenAI-compatible client. Blocking calls; safe to share across threads.
pub struct CloudClient {
    config: CloudConfig,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    breaker: Mutex<Breaker>,
}

impl std::fmt::Debug for CloudClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudClient").field("config", &self.config).finish_non_exhaustive()
    }
}

fn cloud(kind: CloudErrorKind, detail: impl Into<String>) -> Error {
    Error::Cloud { kind, detail: detail.into() }
}

/// How one attempt failed, and whether text already reached the caller.
struct AttemptError {
    error: Error,
    retry_after: Option<Duration>,
    streamed: bool,
}

impl CloudClient {
    /// Checks the configuration and prepares the HTTP client (no request is made).
    pub fn new(config: CloudConfig) -> Result<CloudClient> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .user_agent(concat!("pocketlm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| cloud(CloudErrorKind::NotConfigured, format!("HTTP client: {e}")))?;
        // One worker thread drives connections between calls, so a cancelled
        // or failed stream's socket is closed at once, not at the next request.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pocketlm-cloud")
            .enable_all()
            .build()
            .map_err(|e| cloud(CloudErrorKind::NotConfigured, format!("async runtime: {e}")))?;
        Ok(CloudClient { config, http, runtime, breaker: Mutex::new(Breaker::default()) })
    }

    /// The configuration in use.
    pub fn config(&self) -> &CloudConfig {
        &self.config
    }

    /// Sends `messages` and streams the answer's text to `on_text`. Retries
    /// transient failures while nothing has been streamed yet.
    pub fn chat(
        &self,
        messages: &[Message],
        sampling: &SamplingParams,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<CloudReply> {
        let started = Instant::now();
        self.check_breaker()?;
        let body = request_body(&self.config.model, messages, sampling);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.runtime.block_on(self.attempt(&body, cancel, on_text, started)) {
                Ok(mut reply) => {
                    self.record(true);
                    reply.attempts = attempt;
                    reply.total_ms = started.elapsed().as_secs_f64() * 1000.0;
                    return Ok(reply);
                }
                Err(failed) => {
                    let kind = match &failed.error {
                        Error::Cloud { kind, .. } => *kind,
                        _ => CloudErrorKind::Unreachable,
                    };
                    let retry = kind.is_transient() && !failed.streamed && attempt <= self.config.max_retries;
                    let wait = failed.retry_after.unwrap_or_else(|| {
                        Duration::from_millis(self.config.retry_backoff_ms.saturating_mul(1 << (attempt - 1).min(16)))
                    });
                    if retry && wait <= Duration::from_millis(self.config.max_retry_after_ms) {
                        log::info!("cloud attempt {attempt} failed ({}); retrying in {} ms", kind.as_str(), wait.as_millis());
                        if sleep_unless_cancelled(wait, cancel) {
                            return Err(cloud(CloudErrorKind::Cancelled, "cancelled while waiting to retry"));
                        }
                        continue;
                    }
                    if !matches!(kind, CloudErrorKind::Cancelled | CloudErrorKind::BadRequest | CloudErrorKind::Unauthorized) {
                        self.record(false);
                    }
                    return Err(failed.error);
                }
            }
        }
    }

    fn check_breaker(&self) -> Result<()> {
        let mut b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        match b.open_until {
            Some(until) if Instant::now() < until => Err(cloud(
                CloudErrorKind::CircuitOpen,
                format!("{} requests failed in a row; next try in {} ms", b.failures, (until - Instant::now()).as_millis()),
            )),
            Some(_) => {
                // Half-open: let this request through; one more failure re-opens.
                b.open_until = None;
                b.failures = self.config.breaker_failures.saturating_sub(1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn record(&self, success: bool) {
        let mut b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        if success {
            *b = Breaker::default();
        } else {
            b.failures += 1;
            if b.failures >= self.config.breaker_failures.max(1) {
                b.open_until = Some(Instant::now() + Duration::from_millis(self.config.breaker_cooldown_ms));
                log::warn!("cloud circuit breaker open for {} ms after {} failures", self.config.breaker_cooldown_ms, b.failures);
            }
        }
    }

    async fn attempt(
        &self,
        body: &serde_json::Value,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str),
        started: Instant,
    ) -> std::result::Result<CloudReply, AttemptError> {
        let fail = |error: Error, streamed: bool| AttemptError { error, retry_after: None, streamed };
        let read_timeout = Duration::from_millis(self.config.read_timeout_ms);
        let url = format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'));
        let mut request = self.http.post(&url).json(body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = match cancellable(cancel, read_timeout, request.send()).await {
            Step::Done(Ok(r)) => r,
            Step::Done(Err(e)) if e.is_timeout() => return Err(fail(cloud(CloudErrorKind::Timeout, e.to_string()), false)),
            Step::Done(Err(e)) => return Err(fail(cloud(CloudErrorKind::Unreachable, describe(&e)), false)),
            Step::TimedOut => return Err(fail(cloud(CloudErrorKind::Timeout, "no response within the read timeout"), false)),
            Step::Cancelled => return Err(fail(cloud(CloudErrorKind::Cancelled, "cancelled before the response"), false)),
        };
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map(|s| Duration::from_secs_f64(s.max(0.0)));
            let text = match cancellable(cancel, read_timeout, response.text()).await {
                Step::Done(Ok(t)) => t,
                _ => String::new(),
            };
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.chars().take(200).collect());
            let kind = match status.as_u16() {
                401 | 403 => CloudErrorKind::Unauthorized,
                429 => CloudErrorKind::RateLimited,
                500..=599 => CloudErrorKind::Server,
                _ => CloudErrorKind::BadRequest,
            };
            return Err(AttemptError { error: cloud(kind, format!("HTTP {status}: {message}")), retry_after, streamed: false });
        }

        let mut stream = response.bytes_stream();
        let mut events = SseBuffer::default();
        let mut reply = CloudReply { text: String::new(), usage: None, finish_reason: String::new(), attempts: 0, ttft_ms: 0.0, total_ms: 0.0 };
        loop {
            let chunk = match cancellable(cancel, read_timeout, stream.next()).await {
                Step::Done(Some(Ok(bytes))) => bytes,
                Step::Done(Some(Err(e))) => {
                    let kind = if reply.text.is_empty() { CloudErrorKind::Unreachable } else { CloudErrorKind::Interrupted };
                    return Err(fail(cloud(kind, format!("connection failed mid-stream: {}", describe(&e))), !reply.text.is_empty()));
                }
                Step::Done(None) => {
                    return Err(fail(
                        cloud(CloudErrorKind::Interrupted, format!("the stream ended before [DONE] after {} characters", reply.text.len())),
                        !reply.text.is_empty(),
                    ))
                }
                Step::TimedOut => {
                    return Err(fail(cloud(CloudErrorKind::Timeout, "no data within the read timeout"), !reply.text.is_empty()))
                }
                Step::Cancelled => return Err(fail(cloud(CloudErrorKind::Cancelled, "cancelled mid-stream"), !reply.text.is_empty())),
            };
            for data in events.push(&chunk) {
                if data == "[DONE]" {
                    if reply.finish_reason.is_empty() {
                        reply.finish_reason = "stop".into();
                    }
                    return Ok(reply);
                }
                let event: serde_json::Value = serde_json::from_str(&data).map_err(|e| {
                    fail(cloud(CloudErrorKind::MalformedStream, format!("bad event {:?}: {e}", truncate(&data))), !reply.text.is_empty())
                })?;
                if let Some(message) = event["error"]["message"].as_str() {
                    return Err(fail(cloud(CloudErrorKind::Server, format!("error event: {message}")), !reply.text.is_empty()));
                }
                let Some(choices) = event.get("choices").and_then(|c| c.as_array()) else {
                    return Err(fail(
                        cloud(CloudErrorKind::MalformedStream, format!("event without choices: {}", truncate(&data))),
                        !reply.text.is_empty(),
                    ));
                };
                if let Some(choice) = choices.first() {
                    if let Some(text) = choice["delta"]["content"].as_str().filter(|t| !t.is_empty()) {
                        if reply.text.is_empty() {
                            reply.ttft_ms = started.elapsed().as_secs_f64() * 1000.0;
                        }
                        on_text(text);
                        reply.text.push_str(text);
                    }
                    if let Some(reason) = choice["finish_reason"].as_str() {
                        reply.finish_reason = reason.to_string();
                    }
                }
                if let (Some(p), Some(c)) = (event["usage"]["prompt_tokens"].as_u64(), event["usage"]["completion_tokens"].as_u64()) {
                    reply.usage = Some(CloudUsage { prompt_tokens: p as u32, completion_tokens: c as u32 });
                }
            }
        }
    }
}

/// The JSON body of a streaming Chat Completions request.
fn request_body(model: &str, messages: &[Message], sampling: &SamplingParams) -> serde_json::Value {
    let messages: Vec<serde_json::Value> =
        messages.iter().map(|m| serde_json::json!({ "role": m.role.as_str(), "content": m.content })).collect();
    let mut body = serde_json::json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
    });
    if !sampling.stop.is_empty() {
        body["stop"] = serde_json::json!(sampling.stop);
    }
    if let Some(seed) = sampling.seed {
        body["seed"] = serde_json::json!(seed);
    }
    body
}

enum Step<T> {
    Done(T),
    TimedOut,
    Cancelled,
}

/// Awaits `future` unless the read timeout passes or the caller cancels
/// (checked every 20 ms); dropping the future closes the connection.
async fn cancellable<T>(cancel: &CancelToken, timeout: Duration, future: impl std::future::Future<Output = T>) -> Step<T> {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(future, deadline);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            value = &mut future => return Step::Done(value),
            _ = &mut deadline => return Step::TimedOut,
            _ = tick.tick() => if cancel.is_cancelled() { return Step::Cancelled },
        }
    }
}

/// Sleeps `wait`, waking early when cancelled; returns whether it was cancelled.
fn sleep_unless_cancelled(wait: Duration, cancel: &CancelToken) -> bool {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if cancel.is_cancelled() {
            return true;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(20)));
    }
    cancel.is_cancelled()
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn truncate(s: &str) -> String {
    s.chars().take(120).collect()
}

/// Splits a server-sent event stream into the `data` of each event.
#[derive(Debug, Default)]
pub(crate) struct SseBuffer {
    pending: Vec<u8>,
}

impl SseBuffer {
    /// Adds bytes; returns the data of every event completed by them.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        // Lines may end in CRLF; dropping CR leaves LF-separated events.
        self.pending.extend(bytes.iter().copied().filter(|&b| b != b'\r'));
        let mut out = Vec::new();
        while let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = self.pending.drain(..end + 2).collect();
            let event = String::from_utf8_lossy(&event[..end]);
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|l| l.strip_prefix(' ').unwrap_or(l))
                .collect();
            if !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_crlf() {
        let mut sse = SseBuffer::default();
        assert!(sse.push(b"data: {\"a\":").is_empty());
        assert_eq!(sse.push(b"1}\n\ndata: [DO"), vec!["{\"a\":1}"]);
        assert_eq!(sse.push(b"NE]\r\n\r\n: comment\n\n"), vec!["[DONE]"]);
        assert!(sse.pending.is_empty());
    }

    #[test]
    fn bad_urls_are_rejected_before_any_request() {
        let err = CloudClient::new(CloudConfig::new("ftp://example.com", "m", None)).unwrap_err();
        assert!(matches!(err, Error::InvalidOption { name: "cloud_url", .. }));
        assert!(CloudClient::new(CloudConfig::new("http://127.0.0.1:1/v1", "m", None)).is_ok());
    }
}
