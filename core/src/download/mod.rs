//! Resumable, verified model downloads (cargo feature `download`).
//!
//! A file is streamed to a hidden `.NAME.part` beside its final place, its
//! SHA-256 computed while it is written, and renamed into place only after
//! the hash matches. A download that stops (network, pause, cancel, process
//! death) resumes from the bytes on disk: they are hashed again, then the
//! rest is asked for with HTTP `Range`, guarded by `If-Range` so a file that
//! changed on the server restarts instead of splicing two versions.
//!
//! The calls block (run them off the UI thread: the Kotlin and Swift SDKs
//! do); pause, resume and cancel work from any thread through a
//! [`DownloadControl`]. Memory stays constant whatever the file size: bytes
//! go from the socket to the disk through a small bounded queue.

mod hash;
mod progress;
mod store;
mod transfer;

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use hash::{hash_file, BackgroundHash};

use crate::cancel::CancelToken;
use crate::catalog::CatalogFile;
use crate::error::{DownloadErrorKind, Error, Result};

use progress::ProgressMeter;
pub use progress::{DownloadProgress, DownloadState};
pub use store::{InstalledModel, ModelStore};
use transfer::{Event, Fetch, PartInfo};

/// One file to download.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadRequest {
    /// `https://` (or `http://` on loopback and test servers) URL of the file.
    pub url: String,
    /// The name the file gets in the store, e.g. `qwen2.5-0.5b-instruct-q4_k_m.gguf`.
    pub file_name: String,
    /// The expected SHA-256 (64 hex digits). Without it, the host's own
    /// (Hugging Face's `X-Linked-Etag`) is checked when it sends one.
    pub sha256: Option<String>,
    /// The expected size in bytes, when known (checked before and after).
    pub size: Option<u64>,
    /// A bearer token for gated models (sent only to the URL's own host; never logged).
    #[serde(skip_serializing)]
    pub token: Option<String>,
}

impl std::fmt::Debug for DownloadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadRequest")
            .field("url", &self.url)
            .field("file_name", &self.file_name)
            .field("sha256", &self.sha256)
            .field("size", &self.size)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl DownloadRequest {
    /// A request for `url`, stored as `file_name`.
    pub fn new(url: impl Into<String>, file_name: impl Into<String>) -> DownloadRequest {
        DownloadRequest { url: url.into(), file_name: file_name.into(), ..Default::default() }
    }

    /// A request for a catalog file (its URL, name, size and hash).
    pub fn for_file(file: &CatalogFile) -> DownloadRequest {
        DownloadRequest {
            url: file.url.clone(),
            file_name: file.file_name.clone(),
            sha256: file.sha256.clone(),
            size: file.size,
            token: None,
        }
    }

    /// Checks the URL, the file name and the hash before anything is sent.
    pub fn validate(&self) -> Result<()> {
        if !crate::catalog::is_http_url(&self.url) || reqwest::Url::parse(&self.url).is_err() {
            return Err(invalid(format!("{:?} is not an http(s) URL", self.url)));
        }
        crate::catalog::check_file_name(&self.file_name)?;
        self.sha256.as_deref().map_or(Ok(()), crate::catalog::check_sha256)
    }
}

/// Timeouts, retries and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DownloadOptions {
    /// Longest wait for a connection, in ms.
    pub connect_timeout_ms: u64,
    /// Longest silence while waiting for the response or the next bytes, in ms.
    pub read_timeout_ms: u64,
    /// Retries in a row without progress after a transient failure
    /// (connection lost, timeout, 5xx, 429); an attempt that made progress
    /// resets the count.
    pub max_retries: u32,
    /// First backoff, doubled at each retry, in ms.
    pub retry_backoff_ms: u64,
    /// Longest `Retry-After` honoured, in ms (a longer one fails at once).
    pub max_retry_after_ms: u64,
    /// Shortest interval between two progress events while bytes arrive, in ms.
    pub progress_interval_ms: u64,
    /// Downloads running at once; more wait in [`DownloadState::Queued`].
    pub max_concurrent: usize,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            connect_timeout_ms: 10_000,
            read_timeout_ms: 30_000,
            max_retries: 5,
            retry_backoff_ms: 500,
            max_retry_after_ms: 60_000,
            progress_interval_ms: 250,
            max_concurrent: 2,
        }
    }
}

/// Pauses, resumes and cancels one download from any thread.
#[derive(Debug, Clone, Default)]
pub struct DownloadControl {
    cancel: CancelToken,
    paused: Arc<AtomicBool>,
}

impl DownloadControl {
    /// A control for a download that starts running.
    pub fn new() -> DownloadControl {
        DownloadControl::default()
    }
    /// A control sharing this one's pause state, cancelled by `cancel` instead
    /// (for an SDK layer that already has a cancel token per task).
    pub fn with_cancel(&self, cancel: CancelToken) -> DownloadControl {
        DownloadControl { cancel, paused: Arc::clone(&self.paused) }
    }
    /// Stops transferring (the connection is closed, the part kept) until [`DownloadControl::resume`].
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }
    /// Continues a paused download from the byte it reached.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
    /// Ends the download with [`DownloadErrorKind::Cancelled`]; the part is kept for a later resume.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
    /// Whether the download is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }
    /// Whether the download was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

fn fail(kind: DownloadErrorKind, detail: impl Into<String>) -> Error {
    Error::Download { kind, detail: detail.into() }
}

fn invalid(detail: impl Into<String>) -> Error {
    fail(DownloadErrorKind::InvalidRequest, detail)
}

fn storage(what: &str, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ENOSPC) {
        return fail(
            DownloadErrorKind::InsufficientStorage,
            format!("{what}: the device's storage is full ({e}); free some space and try again"),
        );
    }
    fail(DownloadErrorKind::Storage, format!("{what}: {e}"))
}

/// A failed write to the part: a full disk says whether the bytes so far
/// will be resumed (only when the file can be recognised again).
fn part_write(e: std::io::Error, resumable: bool) -> Error {
    match storage("write the part file", e) {
        Error::Download { kind: DownloadErrorKind::InsufficientStorage, detail } => {
            let then = if resumable {
                "the bytes already downloaded are kept, and the download resumes from them"
            } else {
                "the download starts over (the host gives no ETag and no SHA-256 is known)"
            };
            fail(DownloadErrorKind::InsufficientStorage, format!("{detail}: {then}"))
        }
        other => other,
    }
}

/// Free bytes kept beside a download (the file system needs some room too).
const SPACE_MARGIN: u64 = 16 << 20;

/// Downloads files into one [`ModelStore`], a bounded number at a time.
pub struct Downloader {
    store: ModelStore,
    options: DownloadOptions,
    http: reqwest::Client,
    runtime: &'static tokio::runtime::Runtime,
    running: Arc<(Mutex<usize>, Condvar)>,
}

impl std::fmt::Debug for Downloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downloader").field("store", &self.store).field("options", &self.options).finish_non_exhaustive()
    }
}

/// Holds one of the [`DownloadOptions::max_concurrent`] slots.
struct Slot(Arc<(Mutex<usize>, Condvar)>);

impl Drop for Slot {
    fn drop(&mut self) {
        let (count, freed) = &*self.0;
        *count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        freed.notify_one();
    }
}

impl Downloader {
    /// A downloader into `dir` (created if missing).
    pub fn new(dir: impl AsRef<Path>, options: DownloadOptions) -> Result<Downloader> {
        if options.read_timeout_ms == 0 || options.connect_timeout_ms == 0 || options.max_concurrent == 0 {
            return Err(Error::InvalidOption {
                name: "download_options",
                value: format!("{options:?}"),
                expected: "timeouts of at least 1 ms and at least one concurrent download".into(),
            });
        }
        let store = ModelStore::open(dir)?;
        // Redirects are followed by hand: a token must not follow them to another host,
        // and Hugging Face's hash is on the first response only.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(options.connect_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pocketlm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("HTTP client: {e}")))?;
        let runtime = crate::net::runtime().map_err(|e| fail(DownloadErrorKind::Unreachable, format!("async runtime: {e}")))?;
        Ok(Downloader { store, options, http, runtime, running: Arc::new((Mutex::new(0), Condvar::new())) })
    }

    /// The store the files go to.
    pub fn store(&self) -> &ModelStore {
        &self.store
    }

    /// Downloads `request` into the store and returns the installed file,
    /// reporting progress to `on_progress` (throttled; every state change is
    /// reported). Resumes a part left by an earlier call. A file already
    /// installed with the expected hash is returned at once.
    pub fn download(
        &self,
        request: &DownloadRequest,
        control: &DownloadControl,
        on_progress: &mut dyn FnMut(&DownloadProgress),
    ) -> Result<InstalledModel> {
        request.validate()?;
        let mut meter = ProgressMeter::new(Duration::from_millis(self.options.progress_interval_ms), request.size);
        if let Some(done) = self.store.installed_as(&request.file_name, request.sha256.as_deref(), request.size)? {
            meter.set(DownloadState::Done, done.size, on_progress);
            return Ok(done);
        }
        meter.set(DownloadState::Queued, 0, on_progress);
        let _slot = self.wait_for_slot(control)?;
        let paths = self.store.part_paths(&request.file_name);
        // One download per file at a time, across threads and processes. The
        // lock is on a file that is never renamed or deleted while in use.
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(&paths.lock).map_err(|e| storage("open the lock file", e))?;
        lock_file(&lock, control, &request.file_name)?;
        if let Some(done) = self.store.installed_as(&request.file_name, request.sha256.as_deref(), request.size)? {
            // Another download of the same file finished while this one waited.
            meter.set(DownloadState::Done, done.size, on_progress);
            return Ok(done);
        }
        let part =
            OpenOptions::new().create(true).read(true).append(true).open(&paths.part).map_err(|e| storage("open the part file", e))?;
        let saved = PartInfo::load(&paths.info).filter(|i| i.url == request.url);
        let resumable = saved.as_ref().is_some_and(|i| i.resumable(request));
        let mut info = saved.unwrap_or_else(|| PartInfo::new(&request.url));
        let (state, mut offset) = if resumable {
            // What is on disk is hashed again (it may come from an earlier process).
            hash_file(&paths.part, control)?
        } else {
            part.set_len(0).map_err(|e| storage("truncate the part file", e))?;
            (Sha256::new(), 0)
        };
        let mut hasher = BackgroundHash::new(state)?;
        self.check_space(request, &info, offset)?;
        meter.set(DownloadState::Downloading, offset, on_progress);
        let mut writer = BufWriter::with_capacity(1 << 20, part);
        let mut failures = 0u32;
        let mut linked_sha: Option<String> = None;
        'attempts: loop {
            if control.is_cancelled() {
                return Err(fail(DownloadErrorKind::Cancelled, format!("cancelled at {offset} bytes; starting again resumes")));
            }
            if control.is_paused() {
                meter.set(DownloadState::Paused, offset, on_progress);
                while control.is_paused() && !control.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                meter.set(DownloadState::Downloading, offset, on_progress);
                continue 'attempts;
            }
            let fetch = Fetch {
                http: self.http.clone(),
                url: request.url.clone(),
                token: request.token.clone(),
                offset,
                validator: if offset > 0 { info.validator.clone() } else { None },
                read_timeout: Duration::from_millis(self.options.read_timeout_ms),
            };
            let started_at = offset;
            let mut events = transfer::start(self.runtime, fetch);
            let outcome = loop {
                let event = events.next(control);
                match event {
                    Event::Restart { total, validator, linked_sha256 } => {
                        // A full answer (200), or the first request: start the file over.
                        truncate(&mut writer)?;
                        hasher = BackgroundHash::new(Sha256::new())?;
                        offset = 0;
                        linked_sha = linked_sha256.or(linked_sha);
                        info = PartInfo { url: request.url.clone(), validator, total };
                        self.check_space(request, &info, offset)?;
                        info.save(&paths.info).map_err(|e| storage("write the part's record", e))?;
                    }
                    Event::Resume { total, linked_sha256 } => {
                        linked_sha = linked_sha256.or(linked_sha);
                        if total.is_some() {
                            info.total = total;
                        }
                        self.check_space(request, &info, offset)?;
                    }
                    Event::Data(batch) => {
                        for bytes in batch {
                            writer.write_all(&bytes).map_err(|e| part_write(e, info.resumable(request)))?;
                            offset += bytes.len() as u64;
                            hasher.update(bytes);
                        }
                        meter.set_total(info.total);
                        meter.bytes(offset, on_progress);
                    }
                    Event::Complete | Event::Stopped => break Ok(()),
                    Event::RangeNotSatisfiable { total } => {
                        if offset > 0 && total.or(info.total) == Some(offset) {
                            // The part was already whole (a resume at 100 %): verify it.
                            info.total = Some(offset);
                            break Ok(());
                        }
                        // The part does not fit the file on the server: start over.
                        truncate(&mut writer)?;
                        hasher = BackgroundHash::new(Sha256::new())?;
                        offset = 0;
                        info = PartInfo::new(&request.url);
                        continue 'attempts;
                    }
                    Event::Failed { kind, detail, retry_after } => break Err((kind, detail, retry_after)),
                }
            };
            writer.flush().map_err(|e| storage("write the part file", e))?;
            match outcome {
                Ok(()) if control.is_cancelled() || control.is_paused() => continue 'attempts,
                Ok(()) => {
                    if let Some(total) = info.total.filter(|&t| t != offset) {
                        // The server closed early without an error: resume.
                        if offset > started_at {
                            failures = 0;
                        }
                        failures += 1;
                        if failures > self.options.max_retries {
                            return Err(fail(DownloadErrorKind::Interrupted, format!("the file ends at {offset} of {total} bytes")));
                        }
                        self.backoff(failures, None, control);
                        continue 'attempts;
                    }
                    break 'attempts;
                }
                Err((kind, detail, retry_after)) => {
                    if !kind.is_transient() {
                        return Err(fail(kind, detail));
                    }
                    if offset > started_at {
                        failures = 0;
                    }
                    failures += 1;
                    let too_long = retry_after.is_some_and(|d| d > Duration::from_millis(self.options.max_retry_after_ms));
                    if failures > self.options.max_retries || too_long {
                        return Err(fail(kind, format!("{detail} (after {} attempts; the part is kept)", failures)));
                    }
                    log::info!("download of {} failed ({}); retrying", request.file_name, kind.as_str());
                    self.backoff(failures, retry_after, control);
                }
            }
        }

        meter.set(DownloadState::Verifying, offset, on_progress);
        let file = writer.into_inner().map_err(|e| storage("write the part file", e.into_error()))?;
        file.sync_all().map_err(|e| storage("flush the part file", e))?;
        drop(file);
        let actual = hasher.finish()?;
        let expected = request.sha256.as_ref().map(|h| h.to_ascii_lowercase()).or(linked_sha);
        let wrong_size = request.size.filter(|&s| s != offset).map(|s| format!("{offset} bytes, expected {s}"));
        let wrong_hash = expected.filter(|e| *e != actual).map(|e| format!("SHA-256 {actual}, expected {e}"));
        if let Some(why) = wrong_size.or(wrong_hash) {
            self.store.remove_part(&request.file_name);
            meter.set(DownloadState::Failed, offset, on_progress);
            return Err(fail(DownloadErrorKind::HashMismatch, format!("{} is not the expected file: {why}", request.file_name)));
        }
        let installed = self.store.install(&request.file_name, &actual, offset)?;
        meter.set(DownloadState::Done, offset, on_progress);
        Ok(installed)
    }

    /// Waits for a free slot, cancellable.
    fn wait_for_slot(&self, control: &DownloadControl) -> Result<Slot> {
        let (count, freed) = &*self.running;
        let mut running = count.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= self.options.max_concurrent {
            if control.is_cancelled() {
                return Err(fail(DownloadErrorKind::Cancelled, "cancelled while queued"));
            }
            running = freed.wait_timeout(running, Duration::from_millis(50)).unwrap_or_else(|p| p.into_inner()).0;
        }
        *running += 1;
        Ok(Slot(Arc::clone(&self.running)))
    }

    /// Fails with [`DownloadErrorKind::InsufficientStorage`] when the rest of the file does not fit.
    fn check_space(&self, request: &DownloadRequest, info: &PartInfo, offset: u64) -> Result<()> {
        let Some(total) = info.total.or(request.size) else { return Ok(()) };
        let needed = total.saturating_sub(offset);
        let free = self.store.free_space();
        match free {
            Some(free) if free < needed.saturating_add(SPACE_MARGIN) => Err(fail(
                DownloadErrorKind::InsufficientStorage,
                format!(
                    "{} needs {} MiB more (plus {} MiB of margin); {} MiB are free in {}",
                    request.file_name,
                    needed.div_ceil(1 << 20),
                    SPACE_MARGIN >> 20,
                    free >> 20,
                    self.store.dir().display()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Sleeps before retry number `failures` (the server's `Retry-After`, or doubling backoff), cancellable.
    fn backoff(&self, failures: u32, retry_after: Option<Duration>, control: &DownloadControl) {
        let wait =
            retry_after.unwrap_or_else(|| Duration::from_millis(self.options.retry_backoff_ms.saturating_mul(1 << (failures - 1).min(10))));
        let until = Instant::now() + wait;
        while Instant::now() < until && !control.is_cancelled() && !control.is_paused() {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(20)));
        }
    }
}

/// Locks `lock` for this download (released when it is closed). A download
/// of the same file that is still stopping (just cancelled) gets two seconds
/// to let go; one still running after that is an error.
fn lock_file(lock: &File, control: &DownloadControl, file_name: &str) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        match fs4::FileExt::try_lock(lock) {
            Ok(()) => return Ok(()),
            Err(fs4::TryLockError::WouldBlock) if Instant::now() < until && !control.is_cancelled() => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(fs4::TryLockError::WouldBlock) => return Err(invalid(format!("{file_name} is already being downloaded"))),
            Err(fs4::TryLockError::Error(e)) => return Err(storage("lock the download", e)),
        }
    }
}

/// Empties the part file (writes go on at its end).
fn truncate(writer: &mut BufWriter<File>) -> Result<()> {
    writer.flush().map_err(|e| storage("write the part file", e))?;
    writer.get_ref().set_len(0).map_err(|e| storage("truncate the part file", e))
}
