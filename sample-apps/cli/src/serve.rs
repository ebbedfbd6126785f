//! `pocketlm serve`: an OpenAI-compatible HTTP server over a local model.
//!
//! `POST /v1/chat/completions` (streaming as server-sent events, or not),
//! `GET /v1/models`, and `POST /v1/embeddings` when an embedding model is
//! given (`input` a text or a list of texts; `encoding_format` float or base64). Structured output (`response_format`, and llama-server's
//! `grammar` field for GBNF) and tools (`tools`, `tool_choice`, `tool` messages,
//! `tool_calls` in answers and as streamed deltas) follow OpenAI's dialect;
//! non-streaming answers also carry llama-server's `timings` object. Each request gets its own conversation (context and KV
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
    CancelToken, ChatEvent, Constraint, Conversation, ConversationOptions, EmbedOptions, Embedder, Error, Image, Message, Metrics, Model,
    Reply, Role, SamplingParams, SendOptions, StopReason, Tool, ToolCall, ToolChoice, ToolResult,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Largest request body accepted when the server takes images (`--mmproj`):
/// a few photos as base64 `data:` URLs.
pub const MAX_IMAGE_BODY_BYTES: usize = 32 << 20;

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
    /// A router probe for the model: each answer carries its score in `confidence.probe`.
    pub probe: Option<Arc<pocketlm::Probe>>,
    /// An embedding model for `POST /v1/embeddings` (loaded with `Model::load_for_embeddings`).
    pub embedder: Option<Model>,
    /// A vision projector for the model: user messages may then carry images
    /// (`image_url` parts with `data:` URLs).
    pub projector: Option<pocketlm::Projector>,
}

/// The embedding model behind `POST /v1/embeddings`, and embedders kept
/// between requests (each has its own context; at most `--parallel` run).
struct EmbeddingService {
    model: Model,
    id: String,
    threads: Option<u32>,
    dimensions: usize,
    idle: std::sync::Mutex<Vec<Embedder>>,
}

impl EmbeddingService {
    /// The service, with its first embedder made now: a model that cannot
    /// embed stops the server at start, not at every request.
    fn start(model: Model, threads: Option<u32>) -> Result<EmbeddingService, Error> {
        let first = Embedder::new(&model, EmbedOptions { threads, ..Default::default() })?;
        Ok(EmbeddingService {
            id: model.path().file_stem().map_or_else(|| "embeddings".to_string(), |s| s.to_string_lossy().into_owned()),
            dimensions: first.dimensions(),
            model,
            threads,
            idle: std::sync::Mutex::new(vec![first]),
        })
    }
}

/// Most texts one embeddings request may carry (OpenAI's limit).
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

struct AppState {
    model: Model,
    model_id: String,
    api_key: Option<String>,
    context_length: u32,
    threads: Option<u32>,
    permits: Arc<Semaphore>,
    probe: Option<Arc<pocketlm::Probe>>,
    embeddings: Option<EmbeddingService>,
    projector: Option<pocketlm::Projector>,
    /// [`MAX_BODY_BYTES`], or [`MAX_IMAGE_BODY_BYTES`] with a projector.
    max_body: usize,
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
    let embeddings = options.embedder.map(|m| EmbeddingService::start(m, options.threads)).transpose()?;
    let state = Arc::new(AppState {
        model,
        model_id,
        api_key: options.api_key,
        context_length: options.context_length,
        threads: options.threads,
        permits: Arc::new(Semaphore::new(options.parallel.max(1))),
        probe: options.probe.clone(),
        max_body: if options.projector.is_some() { MAX_IMAGE_BODY_BYTES } else { MAX_BODY_BYTES },
        projector: options.projector,
        embeddings,
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
        .route("/v1/embeddings", post(embeddings))
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
    let mut data = vec![json!({ "id": state.model_id, "object": "model", "created": 0, "owned_by": "pocketlm" })];
    if let Some(e) = &state.embeddings {
        data.push(json!({ "id": e.id, "object": "model", "created": 0, "owned_by": "pocketlm" }));
    }
    Json(json!({ "object": "list", "data": data })).into_response()
}

/// The body of an authorised request within the server's limit, or the error response to send.
async fn read_request(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Response> {
    if !authorised(state, headers) {
        return Err(api_error(StatusCode::UNAUTHORIZED, "invalid_request_error", "missing or wrong API key"));
    }
    let declared = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let too_large =
        || api_error(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", format!("request body larger than {} bytes", state.max_body));
    if declared.is_some_and(|n| n > state.max_body) {
        // Refuse from the headers, before reading (or waiting for) the body.
        return Err(too_large());
    }
    match read_body(body, state.max_body).await {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(too_large()),
        Err(e) => Err(api_error(StatusCode::BAD_REQUEST, "invalid_request_error", format!("could not read the request body: {e}"))),
    }
}

#[derive(Deserialize)]
struct EmbeddingRequest {
    input: Value,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<u64>,
}

/// The texts of an embeddings request's `input` (a text or a list of texts).
fn embedding_inputs(input: Value) -> Result<Vec<String>, String> {
    let texts = match input {
        Value::String(s) => vec![s],
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.into_iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
        }
        Value::Array(_) => return Err("`input` must be a text or a list of texts (token arrays are not accepted)".into()),
        _ => return Err("`input` must be a text or a list of texts".into()),
    };
    match texts.len() {
        0 => Err("`input` holds no text".into()),
        n if n > MAX_EMBEDDING_INPUTS => Err(format!("`input` holds {n} texts; at most {MAX_EMBEDDING_INPUTS} per request")),
        _ => Ok(texts),
    }
}

async fn embeddings(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_request(&state, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let bad = |message: String| api_error(StatusCode::BAD_REQUEST, "invalid_request_error", message);
    let Some(service) = &state.embeddings else {
        let message = "this server has no embedding model; start it with --embedding-model FILE (or `default`)";
        return api_error(StatusCode::NOT_FOUND, "not_found_error", message);
    };
    let request: EmbeddingRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(format!("invalid JSON body: {e}")),
    };
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => return bad(format!("encoding_format {other:?} is not float or base64")),
    };
    let texts = match embedding_inputs(request.input) {
        Ok(texts) => texts,
        Err(message) => return bad(message),
    };
    let width = service.dimensions;
    if request.dimensions.is_some_and(|d| d != width as u64) {
        return bad(format!("this model's vectors have {width} dimensions and cannot be shortened"));
    }
    let Ok(permit) = Arc::clone(&state.permits).acquire_owned().await else {
        return api_error(StatusCode::SERVICE_UNAVAILABLE, "server_error", "the server is shutting down");
    };
    let worker = Arc::clone(&state);
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let service = worker.embeddings.as_ref().expect("checked above");
        let idle = service.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut embedder = match idle {
            Some(e) => e,
            None => Embedder::new(&service.model, EmbedOptions { threads: service.threads, ..Default::default() })?,
        };
        let out = embedder.embed(&texts);
        service.idle.lock().unwrap_or_else(|p| p.into_inner()).push(embedder);
        out
    })
    .await;
    let out = match result {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return error_response(&e),
        Err(e) => return api_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", format!("the embedding task failed: {e}")),
    };
    let data: Vec<Value> = out
        .vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                use base64::Engine;
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    Json(json!({
        "object": "list", "data": data, "model": service.id,
        "usage": { "prompt_tokens": out.tokens, "total_tokens": out.tokens },
    }))
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
    /// llama-server's extension: a GBNF grammar the answer must follow.
    grammar: Option<String>,
    #[serde(default)]
    tools: Vec<Value>,
    tool_choice: Option<Value>,
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
    /// Null for an assistant message that only calls tools.
    content: Option<Content>,
    /// An assistant message's calls, OpenAI's shape (arguments as a JSON string).
    #[serde(default)]
    tool_calls: Vec<Value>,
    /// A tool message's call id.
    tool_call_id: Option<String>,
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
    image_url: Option<ImageUrl>,
}

/// OpenAI's `image_url` part: here always a `data:` URL (the server fetches nothing).
#[derive(Deserialize)]
struct ImageUrl {
    url: String,
}

impl Content {
    /// The text parts joined, and the images decoded (in order; image `first`
    /// is the request's first image, for error messages).
    fn parse(self, first: usize) -> Result<(String, Vec<Image>), String> {
        match self {
            Content::Text(t) => Ok((t, Vec::new())),
            Content::Parts(parts) => {
                let (mut text, mut images) = (String::new(), Vec::new());
                for p in parts {
                    match (p.kind.as_str(), p.text, p.image_url) {
                        ("text", Some(t), _) => text.push_str(&t),
                        ("image_url", _, Some(image)) => {
                            images.push(data_url_image(&image.url).map_err(|reason| format!("image {}: {reason}", first + images.len()))?)
                        }
                        (kind, _, _) => return Err(format!("content part type '{kind}' is not supported (text and image_url only)")),
                    }
                }
                Ok((text, images))
            }
        }
    }
}

/// The image in a `data:image/png;base64,...` or `data:image/jpeg;base64,...` URL.
fn data_url_image(url: &str) -> Result<Image, String> {
    use base64::Engine;
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(
            "only data: URLs are taken (data:image/jpeg;base64,... or data:image/png;base64,...); the server fetches nothing".into()
        );
    };
    let Some((kind, data)) = rest.split_once(";base64,") else {
        return Err("the data: URL is not base64 (expected data:image/...;base64,...)".into());
    };
    if !matches!(kind, "image/jpeg" | "image/jpg" | "image/png") {
        return Err(format!("the data: URL holds {kind}; send image/jpeg or image/png"));
    }
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|e| format!("the data: URL's base64 is invalid ({e})"))?;
    Image::decode(&bytes)
}

/// What the request asks to answer.
enum Ask {
    /// A new user message, with its images.
    Message(String, Vec<Image>),
    /// Results for the last answer's tool calls.
    ToolResults(Vec<ToolResult>),
}

/// A validated request: history, what to answer, and sampling.
struct Job {
    history: Vec<Message>,
    ask: Ask,
    tools: Vec<Tool>,
    tool_choice: ToolChoice,
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
        let seen: usize = messages.iter().map(|m: &Message| m.images.len()).sum();
        let (content, images) = m.content.map(|c| c.parse(seen)).transpose().map_err(bad)?.unwrap_or_default();
        if !images.is_empty() && role != Role::User {
            return Err(bad("only user messages may carry images".into()));
        }
        let tool_calls = serde_json::from_value::<Message>(json!({"role": "assistant", "tool_calls": m.tool_calls}))
            .map_err(|e| bad(format!("invalid tool_calls: {e}")))?
            .tool_calls;
        messages.push(Message { tool_calls, tool_call_id: m.tool_call_id, images, ..Message::new(role, content) });
    }
    let ask = match messages.last().map(|m| m.role) {
        Some(Role::User) => {
            let last = messages.pop().unwrap_or_else(|| Message::user(""));
            Ask::Message(last.content, last.images)
        }
        Some(Role::Tool) => {
            let first = messages.iter().rposition(|m| m.role != Role::Tool).unwrap_or(0);
            let results = messages.split_off(first + 1);
            let calls = match messages.last() {
                Some(m) if m.role == Role::Assistant && !m.tool_calls.is_empty() => &m.tool_calls,
                _ => return Err(bad("tool messages must follow an assistant message with tool_calls".into())),
            };
            let results = results
                .into_iter()
                .map(|r| {
                    let id = r.tool_call_id.ok_or_else(|| bad("a tool message needs tool_call_id".into()))?;
                    let call = calls.iter().find(|c| c.id == id).ok_or_else(|| bad(format!("tool_call_id {id:?} matches no call")))?;
                    Ok(ToolResult { call_id: id, name: call.name.clone(), content: r.content, is_error: false })
                })
                .collect::<Result<Vec<_>, Response>>()?;
            Ask::ToolResults(results)
        }
        Some(_) => return Err(bad("the last message must come from the user or a tool".into())),
        None => return Err(bad("messages must not be empty".into())),
    };
    let tools = request.tools.iter().map(Tool::from_openai).collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
    let tool_choice = match &request.tool_choice {
        None => ToolChoice::Auto,
        Some(v) => ToolChoice::from_openai(v).map_err(|e| bad(e.to_string()))?,
    };
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
        None | Some(ResponseFormat::Text) if request.grammar.is_some() => request.grammar.map(|grammar| Constraint::Gbnf { grammar }),
        Some(_) if request.grammar.is_some() => return Err(bad("give response_format or grammar, not both".into())),
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
        ask,
        tools,
        tool_choice,
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
    tool_calls: Vec<ToolCall>,
    /// llama-server's `timings` object (absent for a cut-short structured answer).
    timings: Value,
    /// PocketLM's confidence signals (score, answer probability and margin,
    /// the probe's score), an extension field; null when there are none.
    confidence: Value,
}

impl Outcome {
    fn of(reply: Reply, probe: Option<&pocketlm::Probe>) -> Outcome {
        let mut confidence = reply.metrics.confidence;
        if let (Some(c), Some(p)) = (confidence.as_mut(), probe) {
            c.probe = reply.probe_score(p);
        }
        let m: &Metrics = &reply.metrics;
        let finish_reason = match m.stop_reason {
            _ if !reply.tool_calls.is_empty() => "tool_calls",
            StopReason::MaxTokens | StopReason::ContextFull => "length",
            _ => "stop",
        };
        let timings = json!({
            "prompt_n": m.prompt_tokens_evaluated,
            "prompt_per_second": m.prefill_tokens_per_s,
            "predicted_n": m.generated_tokens,
            "predicted_per_second": m.decode_tokens_per_s,
            "constraint_ms": m.constraint_ms,
        });
        Outcome {
            finish_reason,
            prompt_tokens: m.prompt_tokens_reused + m.prompt_tokens_evaluated,
            completion_tokens: m.generated_tokens,
            tool_calls: reply.tool_calls,
            timings,
            confidence: serde_json::to_value(confidence).unwrap_or(Value::Null),
        }
    }

    /// The answer's message: its text (null when it only calls tools) and its calls.
    fn message(&self, text: String) -> Value {
        let mut message = json!({ "role": "assistant", "content": text });
        if !self.tool_calls.is_empty() {
            message["tool_calls"] = self.tool_calls.iter().map(|c| c.to_openai(true)).collect();
            if text.is_empty() {
                message["content"] = Value::Null;
            }
        }
        message
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
        | Error::ToolCallInvalid { .. }
        | Error::EmbeddingInputTooLong { .. }
        | Error::InvalidImage { .. }
        | Error::ImagesUnsupported { .. }
        | Error::Template(_) => api_error(StatusCode::BAD_REQUEST, "invalid_request_error", e.to_string()),
        _ => api_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.to_string()),
    }
}

enum Update {
    Text(String),
    ToolCall(ToolCall),
    Done(Result<Outcome, Error>),
}

async fn chat_completions(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_request(&state, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
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
                Update::ToolCall(_) => {}
                Update::Done(Err(e)) => return error_response(&e),
                Update::Done(Ok(o)) => {
                    return Json(json!({
                        "id": id, "object": "chat.completion", "created": created, "model": state.model_id,
                        "choices": [{ "index": 0, "message": o.message(text), "finish_reason": o.finish_reason }],
                        "usage": o.usage(),
                        "timings": o.timings,
                        "confidence": o.confidence,
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
    // State: the receiver, the first chunk still to send, whether [DONE] was sent, calls streamed so far.
    let events = futures_util::stream::unfold((rx, Some(first), false, guard, 0usize), move |(mut rx, first, done, guard, calls)| {
        let chunk = chunk.clone();
        async move {
            if let Some(first) = first {
                return Some((
                    Ok::<_, std::convert::Infallible>(vec![Event::default().data(first.to_string())]),
                    (rx, None, false, guard, calls),
                ));
            }
            if done {
                return None;
            }
            match rx.recv().await {
                Some(Update::Text(t)) => Some((
                    Ok(vec![Event::default().data(chunk(json!({ "content": t }), Value::Null).to_string())]),
                    (rx, None, false, guard, calls),
                )),
                Some(Update::ToolCall(call)) => {
                    // As OpenAI streams a call: its id and name first, then the arguments' text.
                    let head = json!({ "tool_calls": [{ "index": calls, "id": call.id, "type": "function",
                                       "function": { "name": call.name, "arguments": "" } }] });
                    let args = json!({ "tool_calls": [{ "index": calls, "function": { "arguments": call.arguments.to_string() } }] });
                    let out = [head, args].into_iter().map(|d| Event::default().data(chunk(d, Value::Null).to_string())).collect();
                    Some((Ok(out), (rx, None, false, guard, calls + 1)))
                }
                Some(Update::Done(Ok(o))) => {
                    let mut done = chunk(json!({}), json!(o.finish_reason));
                    done["confidence"] = o.confidence.clone();
                    let mut out = vec![Event::default().data(done.to_string())];
                    if include_usage {
                        let mut last = chunk(json!({}), Value::Null);
                        last["choices"] = json!([]);
                        last["usage"] = o.usage();
                        out.push(Event::default().data(last.to_string()));
                    }
                    out.push(Event::default().data("[DONE]"));
                    Some((Ok(out), (rx, None, true, guard, calls)))
                }
                Some(Update::Done(Err(e))) => {
                    // Headers are sent: report in-stream the way OpenAI does, without [DONE].
                    let error = json!({ "error": { "message": e.to_string(), "type": "server_error" } });
                    Some((Ok(vec![Event::default().data(error.to_string())]), (rx, None, true, guard, calls)))
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

/// Reads the body, or `None` once it exceeds `limit` bytes (the rest is
/// not read). Any other failure (bad chunked framing, a client gone
/// mid-body) is an error, not "too large".
async fn read_body(body: Body, limit: usize) -> Result<Option<Vec<u8>>, axum::Error> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > limit {
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
        hidden_states: state.probe.is_some(),
        ..ConversationOptions::default()
    };
    let mut conversation = Conversation::new(&state.model, options)?;
    if let Some(projector) = &state.projector {
        conversation.set_projector(Some(projector.clone()))?;
    }
    conversation.set_messages(job.history);
    let send = SendOptions {
        cancel: cancel.clone(),
        constraint: job.constraint,
        tools: job.tools,
        tool_choice: job.tool_choice,
        // Signals cost a pass over the vocabulary per token: gathered for a probe only.
        confidence: state.probe.as_ref().map(|_| pocketlm::ConfidenceOptions::default()),
        ..SendOptions::default()
    };
    let on_event = &mut |event: ChatEvent<'_>| {
        let update = match event {
            ChatEvent::Text(delta) => Update::Text(delta.to_string()),
            ChatEvent::ToolCall(call) => Update::ToolCall(call.clone()),
            _ => return,
        };
        if tx.send(update).is_err() {
            cancel.cancel();
        }
    };
    let result = match &job.ask {
        Ask::Message(text, images) => conversation.send_with_images_events(text, images, &send, on_event),
        Ask::ToolResults(results) => conversation.send_tool_results(results, &send, on_event),
    };
    match result {
        Ok(reply) => Ok(Outcome::of(reply, state.probe.as_deref())),
        // Cut by max_tokens inside the JSON value: OpenAI returns the text so far with
        // finish_reason "length" (the conversation is per request: nothing else to keep).
        Err(Error::StructuredOutputIncomplete { partial_text, .. }) => {
            let history = conversation.messages();
            let prompt = &history[..history.len().saturating_sub(1)];
            Ok(Outcome {
                finish_reason: "length",
                prompt_tokens: state.model.prompt_tokens(prompt).map_or(0, |t| t.len() as u32),
                completion_tokens: state.model.tokenize_plain(&partial_text).len() as u32,
                tool_calls: Vec::new(),
                timings: Value::Null,
                confidence: Value::Null,
            })
        }
        Err(e) => Err(e),
    }
}
