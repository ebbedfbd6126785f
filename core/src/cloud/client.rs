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
//!
//! Bounded under load: the event stream is parsed incrementally (each byte
//! is looked at once) and a single line or event over
//! [`MAX_SSE_EVENT_BYTES`](super::sse::MAX_SSE_EVENT_BYTES) is [`CloudErrorKind::MalformedStream`]; at most
//! [`MAX_ERROR_BODY_BYTES`] of an HTTP error body are read, the rest is
//! dropped with the connection.
//!
//! The calls are blocking, and safe from inside async code: every request
//! runs as a task on one process-wide runtime ([`runtime`]), and the calling
//! thread waits on a plain channel (never `block_on`, which panics inside
//! another runtime). Streamed text is handed to the caller's callback on the
//! caller's thread.

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::cancel::CancelToken;
use crate::constraint::Constraint;
use crate::error::{CloudErrorKind, Error, Result};
use crate::sampling::SamplingParams;
use crate::template::Message;
use crate::tool::{self, Tool, ToolCall, ToolChoice};

use super::sse::SseBuffer;

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
    /// The server's finish reason (`stop`, `length`, `tool_calls`, ...).
    pub finish_reason: String,
    /// The tools the model called, checked against the declared tools.
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
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

/// What a cloud request carries besides its messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloudRequest<'a> {
    /// Sent as OpenAI's `response_format`; see [`CloudClient::chat_with`].
    pub constraint: Option<&'a Constraint>,
    /// Tools the model may call, sent as OpenAI's `tools`.
    pub tools: &'a [Tool],
    /// Sent as `tool_choice` when there are tools.
    pub tool_choice: Option<&'a ToolChoice>,
}

/// Most calls, and most bytes of one call's arguments, accepted in one answer.
const MAX_CALLS: usize = 64;
const MAX_CALL_BYTES: usize = 1 << 20;

/// Most of an HTTP error body read for the error's detail; the rest is never read.
pub(crate) const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// The process-wide async runtime (see [`crate::net::runtime`]), or why it could not start.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    crate::net::runtime().map_err(|e| cloud(CloudErrorKind::NotConfigured, format!("async runtime: {e}")))
}

/// An OpenAI-compatible client. Blocking calls, safe from any thread,
/// including one that is running async code; safe to share across threads.
pub struct CloudClient {
    config: CloudConfig,
    http: reqwest::Client,
    runtime: &'static tokio::runtime::Runtime,
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

/// Everything one attempt needs, owned, so it can run as a task on the shared runtime.
#[derive(Clone)]
struct Attempt {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
    body: Arc<serde_json::Value>,
    read_timeout: Duration,
    cancel: CancelToken,
    started: Instant,
}

/// What an attempt's task tells the waiting caller, in order.
enum Progress {
    Text(String),
    Done(std::result::Result<CloudReply, AttemptError>),
}

/// Stops a request's task (closing its connection) when the caller stops
/// waiting for it, including by unwinding out of its callback.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
        Ok(CloudClient { config, http, runtime: runtime()?, breaker: Mutex::new(Breaker::default()) })
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
        self.chat_with(messages, sampling, &CloudRequest::default(), cancel, on_text)
    }

    /// [`CloudClient::chat`] with a constraint or tools. A constraint is sent
    /// as OpenAI's `response_format` (JSON object or JSON Schema with
    /// `strict`); one the Chat Completions API cannot express (a choice, a
    /// grammar) is [`Error::InvalidConstraint`], never sent unconstrained.
    /// Tools go as `tools` and `tool_choice`; the calls that come back are
    /// checked against them ([`Error::ToolCallInvalid`] otherwise).
    pub fn chat_with(
        &self,
        messages: &[Message],
        sampling: &SamplingParams,
        request: &CloudRequest<'_>,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<CloudReply> {
        let mut body = request_body(&self.config.model, messages, sampling);
        if let Some(constraint) = request.constraint {
            body["response_format"] = response_format(constraint)?;
        }
        if !request.tools.is_empty() {
            tool::validate(request.tools, request.tool_choice.unwrap_or(&ToolChoice::Auto))?;
            body["tools"] = request.tools.iter().map(Tool::to_openai).collect();
            if let Some(choice) = request.tool_choice {
                body["tool_choice"] = choice.to_openai();
            }
        }
        let started = Instant::now();
        self.check_breaker()?;
        let tools = request.tools;
        let job = Attempt {
            http: self.http.clone(),
            url: format!("{}/chat/completions", self.config.base_url.trim_end_matches('/')),
            api_key: self.config.api_key.clone(),
            body: Arc::new(body),
            read_timeout: Duration::from_millis(self.config.read_timeout_ms),
            cancel: cancel.clone(),
            started,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.run(job.clone(), on_text) {
                Ok(mut reply) => {
                    self.record(true);
                    if !reply.tool_calls.is_empty() {
                        reply.tool_calls = reply.tool_calls.iter().map(|c| tool::check_call(c, tools)).collect::<Result<_>>()?;
                    }
                    reply.attempts = attempt;
                    reply.total_ms = started.elapsed().as_secs_f64() * 1000.0;
                    return Ok(reply);
                }
                Err(failed) => {
                    let kind = match &failed.error {
                        Error::Cloud { kind, .. } => *kind,
                        // Not a transport failure (a malformed tool call): not retried.
                        _ => CloudErrorKind::BadRequest,
                    };
                    let retry = kind.is_transient() && !failed.streamed && attempt <= self.config.max_retries;
                    let wait = failed
                        .retry_after
                        .unwrap_or_else(|| Duration::from_millis(self.config.retry_backoff_ms.saturating_mul(1 << (attempt - 1).min(16))));
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

    /// Runs one attempt as a task on the shared runtime and waits for it on
    /// this thread, passing its text to `on_text` as it arrives.
    fn run(&self, request: Attempt, on_text: &mut dyn FnMut(&str)) -> std::result::Result<CloudReply, AttemptError> {
        let (tx, rx) = mpsc::channel();
        let task = self.runtime.spawn(async move {
            let result = attempt(request, &tx).await;
            let _ = tx.send(Progress::Done(result));
        });
        let _stop = AbortOnDrop(task);
        let mut streamed = false;
        loop {
            match rx.recv() {
                Ok(Progress::Text(text)) => {
                    streamed = true;
                    on_text(&text);
                }
                Ok(Progress::Done(result)) => return result,
                Err(_) => {
                    let kind = if streamed { CloudErrorKind::Interrupted } else { CloudErrorKind::Unreachable };
                    return Err(AttemptError {
                        error: cloud(kind, "the request task ended without a result"),
                        retry_after: None,
                        streamed,
                    });
                }
            }
        }
    }
}

/// One request: sends `request`, and streams its text to `tx`.
async fn attempt(request: Attempt, tx: &mpsc::Sender<Progress>) -> std::result::Result<CloudReply, AttemptError> {
    let Attempt { http, url, api_key, body, read_timeout, cancel, started } = request;
    let cancel = &cancel;
    let fail = |error: Error, streamed: bool| AttemptError { error, retry_after: None, streamed };
    let mut request = http.post(&url).json(&*body);
    if let Some(key) = &api_key {
        request = request.bearer_auth(key);
    }
    let mut response = match cancellable(cancel, read_timeout, request.send()).await {
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
            .filter(|s| !s.is_nan())
            // Clamped: `from_secs_f64` panics on infinite or huge values (`Retry-After: inf`).
            .map(|s| Duration::from_secs_f64(s.clamp(0.0, 1e9)));
        let text = error_body(&mut response, cancel, read_timeout).await;
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        let kind = match status.as_u16() {
            401 | 403 => CloudErrorKind::Unauthorized,
            429 => CloudErrorKind::RateLimited,
            500..=599 => CloudErrorKind::Server,
            _ => CloudErrorKind::BadRequest,
        };
        return Err(AttemptError { error: cloud(kind, format!("HTTP {status}: {}", clip(&message, 300))), retry_after, streamed: false });
    }

    let mut stream = response.bytes_stream();
    let mut events = SseBuffer::default();
    let mut reply = CloudReply {
        text: String::new(),
        usage: None,
        finish_reason: String::new(),
        tool_calls: Vec::new(),
        attempts: 0,
        ttft_ms: 0.0,
        total_ms: 0.0,
    };
    let mut calls = CallDeltas::default();
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
            Step::TimedOut => return Err(fail(cloud(CloudErrorKind::Timeout, "no data within the read timeout"), !reply.text.is_empty())),
            Step::Cancelled => return Err(fail(cloud(CloudErrorKind::Cancelled, "cancelled mid-stream"), !reply.text.is_empty())),
        };
        let datas = events.push(&chunk).map_err(|e| fail(e, !reply.text.is_empty()))?;
        for data in datas {
            if data == "[DONE]" {
                if reply.finish_reason.is_empty() {
                    reply.finish_reason = "stop".into();
                }
                reply.tool_calls = calls.finish().map_err(|e| fail(e, !reply.text.is_empty()))?;
                return Ok(reply);
            }
            let event: serde_json::Value = serde_json::from_str(&data).map_err(|e| {
                fail(cloud(CloudErrorKind::MalformedStream, format!("bad event {:?}: {e}", clip(&data, 120))), !reply.text.is_empty())
            })?;
            if let Some(message) = event["error"]["message"].as_str() {
                return Err(fail(cloud(CloudErrorKind::Server, format!("error event: {}", clip(message, 300))), !reply.text.is_empty()));
            }
            let Some(choices) = event.get("choices").and_then(|c| c.as_array()) else {
                return Err(fail(
                    cloud(CloudErrorKind::MalformedStream, format!("event without choices: {}", clip(&data, 120))),
                    !reply.text.is_empty(),
                ));
            };
            if let Some(choice) = choices.first() {
                if let Some(text) = choice["delta"]["content"].as_str().filter(|t| !t.is_empty()) {
                    if reply.text.is_empty() {
                        reply.ttft_ms = started.elapsed().as_secs_f64() * 1000.0;
                    }
                    if tx.send(Progress::Text(text.to_string())).is_err() {
                        return Err(fail(cloud(CloudErrorKind::Cancelled, "the caller stopped waiting"), true));
                    }
                    reply.text.push_str(text);
                }
                if let Some(deltas) = choice["delta"]["tool_calls"].as_array() {
                    calls.push(deltas).map_err(|e| fail(e, !reply.text.is_empty()))?;
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

/// Tool calls assembled from streamed `delta.tool_calls` fragments: each
/// carries its call's `index`, and its id and name once, then pieces of the
/// arguments' JSON text. Bounded: [`MAX_CALLS`] calls of [`MAX_CALL_BYTES`].
#[derive(Debug, Default)]
struct CallDeltas {
    calls: Vec<(String, String, String)>,
}

impl CallDeltas {
    fn push(&mut self, deltas: &[serde_json::Value]) -> Result<()> {
        for delta in deltas {
            let index = delta["index"].as_u64().map_or(self.calls.len().saturating_sub(1), |i| i as usize);
            if index >= MAX_CALLS {
                return Err(cloud(CloudErrorKind::MalformedStream, format!("tool call index {index} (at most {MAX_CALLS} calls)")));
            }
            if self.calls.len() <= index {
                self.calls.resize_with(index + 1, Default::default);
            }
            let (id, name, arguments) = &mut self.calls[index];
            if let Some(v) = delta["id"].as_str().filter(|v| !v.is_empty()) {
                *id = v.to_string();
            }
            // The name comes whole, once; some servers repeat it in every fragment.
            if let Some(v) = delta["function"]["name"].as_str().filter(|v| !v.is_empty()) {
                *name = v.to_string();
            }
            if let Some(v) = delta["function"]["arguments"].as_str() {
                if arguments.len() + v.len() > MAX_CALL_BYTES {
                    return Err(cloud(CloudErrorKind::MalformedStream, format!("a tool call's arguments over {MAX_CALL_BYTES} bytes")));
                }
                arguments.push_str(v);
            }
        }
        Ok(())
    }

    /// The calls, with their arguments parsed (an id is made for a call without one).
    fn finish(&mut self) -> Result<Vec<ToolCall>> {
        std::mem::take(&mut self.calls)
            .into_iter()
            .map(|(id, name, arguments)| {
                let bad = |detail: String| Error::ToolCallInvalid { name: name.clone(), detail };
                if name.is_empty() {
                    return Err(bad("the cloud sent a tool call without a name".into()));
                }
                let arguments = match arguments.trim() {
                    "" => serde_json::json!({}),
                    text => serde_json::from_str(text).map_err(|e| bad(format!("the cloud's arguments are not JSON: {e}")))?,
                };
                let id = if id.is_empty() { tool::new_call_id() } else { id };
                Ok(ToolCall { id, name, arguments })
            })
            .collect()
    }
}

/// Reads at most [`MAX_ERROR_BODY_BYTES`] of an error response, in chunks,
/// within one read timeout in all (or until cancelled); what arrived by then
/// is the text. The rest is never read: the connection is dropped with it.
async fn error_body(response: &mut reqwest::Response, cancel: &CancelToken, timeout: Duration) -> String {
    let mut body = Vec::new();
    let read = async {
        while body.len() < MAX_ERROR_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(MAX_ERROR_BODY_BYTES - body.len())]),
                Ok(None) | Err(_) => break,
            }
        }
    };
    let _ = cancellable(cancel, timeout, read).await;
    String::from_utf8_lossy(&body).into_owned()
}

/// The JSON body of a streaming Chat Completions request.
fn request_body(model: &str, messages: &[Message], sampling: &SamplingParams) -> serde_json::Value {
    let messages: Vec<serde_json::Value> = messages.iter().map(wire_message).collect();
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

/// A message as the Chat Completions API takes it: an assistant's calls with
/// their arguments as JSON text, a tool result with its call's id.
fn wire_message(m: &Message) -> serde_json::Value {
    let mut v = serde_json::json!({ "role": m.role.as_str(), "content": m.content });
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = m.tool_calls.iter().map(|c| c.to_openai(true)).collect();
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = serde_json::json!(id);
    }
    v
}

/// The option a cloud answer to a choice picked: `{"choice": option}` as
/// asked, or (from a server that ignored the format) the bare option.
pub(crate) fn choice_from_cloud(text: &str, options: &[String]) -> Option<usize> {
    let picked = match serde_json::from_str::<serde_json::Value>(text.trim()) {
        Ok(serde_json::Value::Object(map)) => map.get("choice").and_then(|v| v.as_str()).map(str::to_string),
        Ok(serde_json::Value::String(s)) => Some(s),
        _ => Some(text.trim().to_string()),
    }?;
    options.iter().position(|o| *o == picked)
}

/// OpenAI's `response_format` for a constraint it can express.
fn response_format(constraint: &Constraint) -> Result<serde_json::Value> {
    constraint.validate()?;
    match constraint {
        Constraint::JsonObject => Ok(serde_json::json!({ "type": "json_object" })),
        Constraint::JsonSchema { schema } => Ok(serde_json::json!({
            "type": "json_schema",
            "json_schema": { "name": "answer", "schema": schema, "strict": true },
        })),
        // A choice as an object holding one of the options (OpenAI's strict
        // schemas need an object at the root); see `choice_from_cloud`.
        Constraint::Choice { options } => Ok(serde_json::json!({
            "type": "json_schema",
            "json_schema": {
                "name": "answer",
                "schema": {
                    "type": "object",
                    "properties": { "choice": { "type": "string", "enum": options } },
                    "required": ["choice"],
                    "additionalProperties": false,
                },
                "strict": true,
            },
        })),
        other => Err(Error::InvalidConstraint {
            detail: format!("a cloud endpoint cannot enforce a {} constraint; answer this request on the device", other.kind()),
        }),
    }
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
    crate::net::error_chain(e)
}

/// At most `max` characters of `s`, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_on_characters() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("hé", 2), "hé");
    }

    #[test]
    fn bad_urls_are_rejected_before_any_request() {
        let err = CloudClient::new(CloudConfig::new("ftp://example.com", "m", None)).unwrap_err();
        assert!(matches!(err, Error::InvalidOption { name: "cloud_url", .. }));
        assert!(CloudClient::new(CloudConfig::new("http://127.0.0.1:1/v1", "m", None)).is_ok());
    }
}
