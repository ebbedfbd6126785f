//! One HTTP attempt at a file: the request (with `Range` and `If-Range`
//! when resuming, redirects followed by hand), the answer classified, and
//! the body's bytes handed to the waiting thread through a bounded queue.

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use futures_util::FutureExt;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, LOCATION, RANGE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::DownloadControl;
use crate::error::DownloadErrorKind;

/// Batches in flight between the socket and the disk.
const QUEUE_BATCHES: usize = 16;
/// Bytes gathered into one batch from what the socket already holds
/// (never waited for: a slow network still sends each chunk at once).
const BATCH_BYTES: usize = 256 << 10;
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 10;

/// What is known about a part on disk, kept beside it so a later process can resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PartInfo {
    /// The URL it comes from (a part from another URL is not resumed).
    pub(super) url: String,
    /// The server's strong `ETag` or its `Last-Modified`, for `If-Range`.
    pub(super) validator: Option<String>,
    /// The whole file's size, when the server said.
    pub(super) total: Option<u64>,
}

impl PartInfo {
    pub(super) fn new(url: &str) -> PartInfo {
        PartInfo { url: url.to_string(), validator: None, total: None }
    }

    pub(super) fn load(path: &Path) -> Option<PartInfo> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    /// Whether a part of this file can be resumed for `request`: the server can
    /// guard the range (`If-Range`), or the expected hash will catch a file
    /// that changed; otherwise it starts over.
    pub(super) fn resumable(&self, request: &super::DownloadRequest) -> bool {
        self.validator.is_some() || request.sha256.is_some()
    }

    pub(super) fn save(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, serde_json::to_string(self).unwrap_or_default())
    }
}

/// One attempt's parameters.
pub(super) struct Fetch {
    pub(super) http: reqwest::Client,
    pub(super) url: String,
    pub(super) token: Option<String>,
    /// Bytes already on disk: asked for from here.
    pub(super) offset: u64,
    /// Sent as `If-Range` with the range.
    pub(super) validator: Option<String>,
    pub(super) read_timeout: Duration,
}

/// What an attempt reports, in order.
pub(super) enum Event {
    /// The whole file follows (a 200): the part starts over.
    Restart { total: Option<u64>, validator: Option<String>, linked_sha256: Option<String> },
    /// The rest of the file follows (a 206 from the right byte).
    Resume { total: Option<u64>, linked_sha256: Option<String> },
    /// More of the body: the chunks that had arrived, in order.
    Data(Vec<bytes::Bytes>),
    /// The body ended.
    Complete,
    /// The app paused or cancelled: the connection was closed.
    Stopped,
    /// A 416: nothing to send from that byte (the part may be whole already).
    RangeNotSatisfiable { total: Option<u64> },
    /// The attempt failed.
    Failed { kind: DownloadErrorKind, detail: String, retry_after: Option<Duration> },
}

/// An attempt running on the shared runtime; dropping it closes the connection.
pub(super) struct Events {
    rx: mpsc::Receiver<Event>,
    credits: Arc<Semaphore>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Events {
    /// The next event, waiting for it; [`Event::Stopped`] as soon as the app pauses or cancels.
    pub(super) fn next(&mut self, control: &DownloadControl) -> Event {
        loop {
            if control.is_paused() || control.is_cancelled() {
                self.task.abort();
                return Event::Stopped;
            }
            match self.rx.recv_timeout(Duration::from_millis(20)) {
                Ok(event) => {
                    if matches!(event, Event::Data(_)) {
                        self.credits.add_permits(1);
                    }
                    return event;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Event::Failed {
                        kind: DownloadErrorKind::Interrupted,
                        detail: "the transfer stopped without a result".into(),
                        retry_after: None,
                    }
                }
            }
        }
    }
}

/// Starts `fetch` on `runtime`.
pub(super) fn start(runtime: &tokio::runtime::Runtime, fetch: Fetch) -> Events {
    let (tx, rx) = mpsc::channel();
    let credits = Arc::new(Semaphore::new(QUEUE_BATCHES));
    let task_credits = Arc::clone(&credits);
    let task = runtime.spawn(async move {
        let last = match run(fetch, &tx, &task_credits).await {
            Ok(()) => Event::Complete,
            Err(failed) => failed,
        };
        let _ = tx.send(last);
    });
    Events { rx, credits, task }
}

fn failed(kind: DownloadErrorKind, detail: impl Into<String>) -> Event {
    Event::Failed { kind, detail: detail.into(), retry_after: None }
}

async fn run(f: Fetch, tx: &mpsc::Sender<Event>, credits: &Semaphore) -> Result<(), Event> {
    let origin = reqwest::Url::parse(&f.url).map_err(|e| failed(DownloadErrorKind::InvalidRequest, e.to_string()))?;
    let mut url = origin.clone();
    let mut linked_sha256 = None;
    let mut response = None;
    for _ in 0..=MAX_REDIRECTS {
        let mut request = f.http.get(url.clone());
        if f.offset > 0 {
            request = request.header(RANGE, format!("bytes={}-", f.offset));
            if let Some(v) = &f.validator {
                request = request.header(IF_RANGE, v);
            }
        }
        // The token goes to the host it was given for, never to a CDN a redirect points at.
        if let (Some(token), true) = (&f.token, url.host_str() == origin.host_str()) {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let answer = match tokio::time::timeout(f.read_timeout, request.send()).await {
            Err(_) => return Err(failed(DownloadErrorKind::Timeout, "no response within the read timeout")),
            Ok(Err(e)) if e.is_timeout() => return Err(failed(DownloadErrorKind::Timeout, describe(&e))),
            Ok(Err(e)) => return Err(failed(DownloadErrorKind::Unreachable, describe(&e))),
            Ok(Ok(r)) => r,
        };
        if let Some(hash) = linked_hash(answer.headers()) {
            linked_sha256 = Some(hash);
        }
        if answer.status().is_redirection() {
            let next = answer.headers().get(LOCATION).and_then(|v| v.to_str().ok()).and_then(|l| url.join(l).ok());
            match next {
                Some(next) => {
                    url = next;
                    continue;
                }
                None => return Err(failed(DownloadErrorKind::Http, format!("HTTP {} without a usable Location", answer.status()))),
            }
        }
        response = Some(answer);
        break;
    }
    let Some(mut response) = response else {
        return Err(failed(DownloadErrorKind::Http, format!("more than {MAX_REDIRECTS} redirects")));
    };
    let status = response.status();
    let headers = response.headers().clone();
    match status {
        StatusCode::OK => {
            let validator = validator(&headers);
            let total = response.content_length();
            send(tx, Event::Restart { total, validator, linked_sha256 })?;
        }
        StatusCode::PARTIAL_CONTENT => {
            let (start, total) = content_range(&headers).unwrap_or((u64::MAX, None));
            if start != f.offset {
                return Err(failed(DownloadErrorKind::Http, format!("asked for bytes from {}, got a range from {start}", f.offset)));
            }
            send(tx, Event::Resume { total, linked_sha256 })?;
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let total = headers
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes */"))
                .and_then(|t| t.trim().parse().ok());
            send(tx, Event::RangeNotSatisfiable { total })?;
            return Ok(());
        }
        s => {
            let retry_after = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .map(|v| Duration::from_secs_f64(v.clamp(0.0, 1e6)));
            let (kind, detail) = match s.as_u16() {
                401 | 403 if f.token.is_some() => (DownloadErrorKind::Unauthorized, format!("HTTP {s}: the host refused the token")),
                401 | 403 => (DownloadErrorKind::Unauthorized, format!("HTTP {s}: the host wants an access token")),
                404 | 410 => (DownloadErrorKind::NotFound, format!("HTTP {s} for {}", f.url)),
                429 => (DownloadErrorKind::RateLimited, format!("HTTP {s}")),
                500..=599 => (DownloadErrorKind::Server, format!("HTTP {s}")),
                _ => (DownloadErrorKind::Http, format!("HTTP {s}")),
            };
            return Err(Event::Failed { kind, detail, retry_after });
        }
    }
    loop {
        let first = match tokio::time::timeout(f.read_timeout, response.chunk()).await {
            Err(_) => return Err(failed(DownloadErrorKind::Timeout, "no data within the read timeout")),
            Ok(Err(e)) => return Err(interrupted(&e)),
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(bytes))) => bytes,
        };
        // One hand-over per batch, not per socket read (tens of thousands per GiB).
        // `chunk()` is cancel-safe: a poll that finds nothing loses nothing.
        let mut len = first.len();
        let (mut batch, mut end) = (vec![first], None);
        while len < BATCH_BYTES {
            match response.chunk().now_or_never() {
                None => break,
                Some(Ok(Some(bytes))) => {
                    len += bytes.len();
                    batch.push(bytes);
                }
                Some(Ok(None)) => {
                    end = Some(Ok(()));
                    break;
                }
                Some(Err(e)) => {
                    end = Some(Err(interrupted(&e)));
                    break;
                }
            }
        }
        // Waits while the disk side is behind: memory stays bounded.
        let permit = credits.acquire().await.map_err(|_| failed(DownloadErrorKind::Interrupted, "stopped"))?;
        permit.forget();
        send(tx, Event::Data(batch))?;
        if let Some(end) = end {
            return end;
        }
    }
}

fn interrupted(e: &reqwest::Error) -> Event {
    failed(DownloadErrorKind::Interrupted, format!("the connection failed mid-file: {}", describe(e)))
}

fn send(tx: &mpsc::Sender<Event>, event: Event) -> Result<(), Event> {
    tx.send(event).map_err(|_| Event::Stopped)
}

/// A strong `ETag`, else `Last-Modified`: what `If-Range` accepts.
fn validator(headers: &HeaderMap) -> Option<String> {
    let etag = headers.get(ETAG).and_then(|v| v.to_str().ok()).filter(|e| !e.starts_with("W/"));
    etag.or_else(|| headers.get(LAST_MODIFIED).and_then(|v| v.to_str().ok())).map(str::to_string)
}

/// `Content-Range: bytes START-END/TOTAL` as (START, TOTAL).
fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?.strip_prefix("bytes ")?;
    let (range, total) = value.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

/// Hugging Face's SHA-256 of an LFS file, from `X-Linked-Etag: "HEX"`.
fn linked_hash(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-linked-etag")?.to_str().ok()?.trim().trim_start_matches("W/").trim_matches('"').to_ascii_lowercase();
    (value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit())).then_some(value)
}

fn describe(e: &reqwest::Error) -> String {
    // Without the URL: a signed CDN URL carries credentials.
    let text = crate::net::error_chain(e);
    match e.url() {
        Some(url) => text.replace(url.as_str(), "<url>"),
        None => text,
    }
}
