//! `pocketlm serve`: an OpenAI-compatible HTTP server over a local model.
//!
//! `POST /v1/chat/completions` (streaming as server-sent events, or not) and
//! `GET /v1/models`. Each request gets its own conversation (context and KV
//! cache) on the shared model, so concurrent clients never see each other's
//! history; at most `--parallel` requests generate at once, the rest wait.
//! Oversized, malformed or unauthorised requests get OpenAI-style error
//! bodies. A client that disconnects cancels its generation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pocketlm::{
    CancelToken, Constraint, Conversation, ConversationOptions, Error, Message, Metrics, Model, Role, SamplingParams, SendOptions,
    StopReason,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What the server needs.
pub struct ServeOptions {
    /// Address to bind (loopback by default).
    pub addr: SocketAddr,
    /// Required bearer token, if any.
    pub api_key: Option<String>,
    /// Context length of each request's conversation.
    pub context_length: u32,
    /// Requests generating at once.
    pub parallel: usize,
    /// Inference threads per request.
    pub threads: Option<u32>,
}

struct AppState {
    model: Model,
    model_id: String,
    api_key: Option<String>,
    context_length: u32,
    threads: Option<u32>,
    permits: Arc<Semaphore>,
}

/// Serves `model` until Ctrl-C. Prints the base URL once listening.
pub fn run(model: Model, options: ServeOptions) -> Result<(), Error> {
    let io_error = |what: &str, e: std::io::Error| Error::InvalidOption {
        name: "serve",
        value: format!("{what}: {e}"),
        expected: "a free port on an address of this machine".into(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| io_error("runtime", e))?;
    let model_id = model.path().file_stem().map_or_else(|| "local".to_string(), |s| s.to_string_lossy().into_owned());
    let state = Arc::new(AppState {
        model,
        model_id,
        api_key: options.api_key,
        context_length: options.context_length,
        threads: options.threads,
        permits: Arc::new(Semaphore::new(options.parallel.max(1))),
    });
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.addr).await.map_err(|e| io_error("bind", e))?;
        let addr = listener.local_addr().map_err(|e| io_error("address", e))?;
        println!("pocketlm serve: listening on http://{addr}/v1 (model {})", state.model_id);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| io_error("serve", e))
    })
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "not_found_error", "no such endpoint; try POST /v1/chat/completions") })
        .with_state(state)
}

/// An OpenAI-style error response.
fn api_error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let code = match status {
        StatusCode::UNAUTHORIZED => Some("invalid_api_key"),
        StatusCode::PAYLOAD_TOO_LARGE => Some("request_too_large"),
        _ => None,
    };
    (status, Json(json!({ "error": { "message": message.into(), "type": kind, "param": null, "code": code } }))).into_response()
}

fn authorised(state: &AppState, headers: &HeaderMap) -> bool {
    match &state.api_key {
        None => true,
        Some(key) => headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| given == key),
    }
}

async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !authorised(&state, &headers) {
        return api_error(StatusCode::UNAUTHORIZED, "invalid_request_error", "missing or wrong API key");
    }
    Json(json!({ "object": "list", "data": [{ "id": state.model_id, "object": "model", "created": 0, "owned_by": "pocketlm" }] }))
        .into_response()
}

#[derive(Deserialize)]
struct ChatRequest {
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<u32>,
    stop: Option<Stop>,
    stream_options: Option<StreamOptions>,
    response_format: Option<ResponseFormat>,
}

/// OpenAI's `response_format`: enforced at decode time, never "prompt and hope".
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Deserialize)]
struct JsonSchemaFormat {
    /// Absent: any JSON value. `strict: false` is enforced all the same.
    schema: Option<Value>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    content: Content,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

impl Content {
    fn text(self) -> Result<String, String> {
        match self {
            Content::Text(t) => Ok(t),
            Content::Parts(parts) => parts
                .into_iter()
                .map(|p| match (p.kind.as_str(), p.text) {
                    ("text", Some(t)) => Ok(t),
                    (kind, _) => Err(format!("content part type '{kind}' is not supported (text only)")),
                })
                .collect(),
        }
    }
}

/// A validated request: history, the last user message, and sampling.
struct Job {
    history: Vec<Message>,
    prompt: String,
    sampling: SamplingParams,
    stream: bool,
    include_usage: bool,
    constraint: Option<Constraint>,
}

// The error is the HTTP response a handler returns as is.
#[allow(clippy::result_large_err)]
fn parse(body: &[u8]) -> Result<Job, Response> {
    let bad = |m: String| api_error(StatusCode::BAD_REQUEST, "invalid_request_error", m);
    let request: ChatRequest = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))?;
    let mut messages = Vec::with_capacity(request.messages.len());
    for m in request.messages {
        let role = m.role.parse::<Role>().map_err(|e| bad(e.to_string()))?;
        messages.push(Message { role, content: m.content.text().map_err(bad)? });
    }
    let last = messages.pop().ok_or_else(|| bad("messages must not be empty".into()))?;
    if last.role != Role::User {
        return Err(bad("the last message must come from the user".into()));
    }
    let defaults = SamplingParams::default();
    let sampling = SamplingParams {
        temperature: request.temperature.unwrap_or(1.0),
        top_p: request.top_p.unwrap_or(1.0),
        top_k: 0,
        min_p: 0.0,
        seed: request.seed,
        max_tokens: request.max_completion_tokens.or(request.max_tokens).unwrap_or(defaults.max_tokens),
        stop: match request.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) => v,
        },
        ..defaults
    };
    sampling.validate().map_err(|e| bad(e.to_string()))?;
    let constraint = match request.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject) => Some(Constraint::JsonObject),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            Some(Constraint::JsonSchema { schema: json_schema.schema.unwrap_or(json!(true)) })
        }
    };
    if let Some(c) = &constraint {
        c.validate().map_err(|e| bad(e.to_string()))?;
    }
    Ok(Job {
        history: messages,
        prompt: last.content,
        sampling,
        stream: request.stream,
        include_usage: request.stream_options.is_some_and(|o| o.include_usage),
        constraint,
    })
}

/// How an answer ended, in OpenAI's terms.
struct Outcome {
    finish_reason: &'static str,
    prompt_tokens: u32,
    completion_tokens: u32,
}

impl Outcome {
    fn of(m: &Metrics) -> Outcome {
        let finish_reason = match m.stop_reason {
            StopReason::MaxTokens | StopReason::ContextFull => "length",
            _ => "stop",
        };
        Outcome { finish_reason, prompt_tokens: m.prompt_tokens_reused + m.prompt_tokens_evaluated, completion_tokens: m.generated_tokens }
    }

    fn usage(&self) -> Value {
        let (p, c) = (self.prompt_tokens, self.completion_tokens);
        json!({ "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c })
    }
}

fn error_response(e: &Error) -> Response {
    match e {
        Error::ContextOverflow { .. }
        | Error::InvalidSampling { .. }
        | Error::InvalidOption { .. }
        | Error::InvalidConstraint { .. }
        | Error::Template(_) => api_error(StatusCode::BAD_REQUEST, "invalid_request_error", e.to_string()),
        _ => api_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.to_string()),
    }
}

enum Update {
    Text(String),
    Done(Result<Outcome, Error>),
}

async fn chat_completions(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    if !authorised(&state, &headers) {
        return api_error(StatusCode::UNAUTHORIZED, "invalid_request_error", "missing or wrong API key");
    }
    let declared = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let too_large =
        || api_error(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", format!("request body larger than {MAX_BODY_BYTES} bytes"));
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        // Refuse from the headers, before reading (or waiting for) the body.
        return too_large();
    }
    let body = match read_body(body).await {
        Ok(Some(b)) => b,
        Ok(None) => return too_large(),
        Err(e) => return api_error(StatusCode::BAD_REQUEST, "invalid_request_error", format!("could not read the request body: {e}")),
    };
    let job = match parse(&body) {
        Ok(job) => job,
        Err(response) => return response,
    };
    let Ok(permit) = Arc::clone(&state.permits).acquire_owned().await else {
        return api_error(StatusCode::SERVICE_UNAVAILABLE, "server_error", "the server is shutting down");
    };
    let id = format!("chatcmpl-{:x}", SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (tx, mut rx) = mpsc::unbounded_channel::<Update>();
    let cancel = CancelToken::new();
    let (stream, include_usage) = (job.stream, job.include_usage);
    {
        let state = Arc::clone(&state);
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let result = generate(&state, job, &cancel, &tx);
            let _ = tx.send(Update::Done(result));
        });
    }

    if !stream {
        // Non-streaming: a dropped connection drops this future, and with it the
        // receiver, so the generation notices and stops.
        let _guard = CancelOnDrop(cancel);
        let mut text = String::new();
        while let Some(update) = rx.recv().await {
            match update {
                Update::Text(t) => text.push_str(&t),
                Update::Done(Err(e)) => return error_response(&e),
                Update::Done(Ok(o)) => {
                    return Json(json!({
                        "id": id, "object": "chat.completion", "created": created, "model": state.model_id,
                        "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": o.finish_reason }],
                        "usage": o.usage(),
                    }))
                    .into_response()
                }
            }
        }
        return api_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "generation ended without a result");
    }

    let model_id = state.model_id.clone();
    let chunk = move |delta: Value, finish: Value| {
        json!({ "id": id, "object": "chat.completion.chunk", "created": created, "model": model_id,
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
    };
    let first = chunk(json!({ "role": "assistant", "content": "" }), Value::Null);
    let guard = CancelOnDrop(cancel);
    let events = futures_util::stream::unfold((rx, Some(first), false, guard), move |(mut rx, first, done, guard)| {
        let chunk = chunk.clone();
        async move {
            if let Some(first) = first {
                return Some((Ok::<_, std::convert::Infallible>(vec![Event::default().data(first.to_string())]), (rx, None, false, guard)));
            }
            if done {
                return None;
            }
            match rx.recv().await {
                Some(Update::Text(t)) => Some((
                    Ok(vec![Event::default().data(chunk(json!({ "content": t }), Value::Null).to_string())]),
                    (rx, None, false, guard),
                )),
                Some(Update::Done(Ok(o))) => {
                    let mut out = vec![Event::default().data(chunk(json!({}), json!(o.finish_reason)).to_string())];
                    if include_usage {
                        let mut last = chunk(json!({}), Value::Null);
                        last["choices"] = json!([]);
                        last["usage"] = o.usage();
                        out.push(Event::default().data(last.to_string()));
                    }
                    out.push(Event::default().data("[DONE]"));
                    Some((Ok(out), (rx, None, true, guard)))
                }
                Some(Update::Done(Err(e))) => {
                    // Headers are sent: report in-stream the way OpenAI does, without [DONE].
                    let error = json!({ "error": { "message": e.to_string(), "type": "server_error" } });
                    Some((Ok(vec![Event::default().data(error.to_string())]), (rx, None, true, guard)))
                }
                None => None,
            }
        }
    });
    use futures_util::StreamExt;
    let flat = events.flat_map(|batch: Result<Vec<Event>, std::convert::Infallible>| {
        futures_util::stream::iter(batch.unwrap_or_default().into_iter().map(Ok::<_, std::convert::Infallible>))
    });
    Sse::new(flat).into_response()
}

/// Reads the body, or `None` once it exceeds [`MAX_BODY_BYTES`] (the rest is
/// not read). Any other failure (bad chunked framing, a client gone
/// mid-body) is an error, not "too large".
async fn read_body(body: Body) -> Result<Option<Vec<u8>>, axum::Error> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > MAX_BODY_BYTES {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

/// Cancels the generation when the response (or the client) goes away first.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn generate(state: &AppState, job: Job, cancel: &CancelToken, tx: &mpsc::UnboundedSender<Update>) -> Result<Outcome, Error> {
    let options = ConversationOptions {
        context_length: Some(state.context_length),
        threads: state.threads,
        sampling: job.sampling,
        ..ConversationOptions::default()
    };
    let mut conversation = Conversation::new(&state.model, options)?;
    conversation.set_messages(job.history);
    let send = SendOptions { cancel: cancel.clone(), constraint: job.constraint, ..SendOptions::default() };
    let result = conversation.send(&job.prompt, &send, &mut |delta| {
        if tx.send(Update::Text(delta.to_string())).is_err() {
            cancel.cancel();
        }
    });
    match result {
        Ok(reply) => Ok(Outcome::of(&reply.metrics)),
        // Cut by max_tokens inside the JSON value: OpenAI returns the text so far with
        // finish_reason "length" (the conversation is per request: nothing else to keep).
        Err(Error::StructuredOutputIncomplete { partial_text, .. }) => {
            let history = conversation.messages();
            let prompt = &history[..history.len().saturating_sub(1)];
            Ok(Outcome {
                finish_reason: "length",
                prompt_tokens: state.model.prompt_tokens(prompt).map_or(0, |t| t.len() as u32),
                completion_tokens: state.model.tokenize_plain(&partial_text).len() as u32,
            })
        }
        Err(e) => Err(e),
    }
}
