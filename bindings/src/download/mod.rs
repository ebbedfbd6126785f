//! Model downloads (the `download` feature, on by default): `ModelDownloader`
//! for Kotlin and Swift. `download` returns a handle at once; progress, then
//! one `on_complete` or `on_error`, reach a `DownloadListener` in order, and
//! the handle pauses, resumes and cancels from any thread.

use std::sync::Arc;

use pocketlm::{DownloadControl, Downloader};

use crate::convert::{amount, count, opt_amount, saturating_i64};
use crate::error::FfiError;
use crate::task::{spawn_streaming, GenerationHandle};

/// One file to download.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DownloadRequest {
    /// The file's http(s) URL.
    pub url: String,
    /// Its name in the models directory, e.g. `qwen2.5-0.5b-instruct-q4_k_m.gguf`.
    pub file_name: String,
    /// The expected SHA-256 (64 hex digits); without it the host's own is checked when it sends one.
    #[uniffi(default = None)]
    pub sha256: Option<String>,
    /// The expected size in bytes, when known.
    #[uniffi(default = None)]
    pub size: Option<i64>,
    /// A bearer token for gated models (sent to the URL's host only; never logged).
    #[uniffi(default = None)]
    pub token: Option<String>,
}

/// Timeouts, retries and the bound on downloads running at once.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DownloadOptions {
    /// Longest silence while waiting for bytes, in ms.
    #[uniffi(default = 30000)]
    pub read_timeout_ms: i64,
    /// Retries in a row without progress after a transient failure.
    #[uniffi(default = 5)]
    pub max_retries: i32,
    /// Downloads running at once; the rest wait queued.
    #[uniffi(default = 2)]
    pub max_concurrent: i32,
}

/// Where a download is, for a UI to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DownloadState {
    /// Waiting for a free slot.
    Queued,
    /// Bytes are arriving.
    Downloading,
    /// Paused; the part is kept.
    Paused,
    /// Checking the whole file's SHA-256.
    Verifying,
    /// Installed.
    Done,
    /// Failed (the error says why).
    Failed,
}

/// One progress report.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DownloadProgress {
    /// The state.
    pub state: DownloadState,
    /// Bytes on disk so far.
    pub downloaded: i64,
    /// The file's size, once known.
    pub total: Option<i64>,
    /// Recent speed, in bytes per second.
    pub bytes_per_second: f64,
    /// Time left at that speed, in seconds, once known.
    pub eta_seconds: Option<f64>,
}

/// An installed model file.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InstalledModel {
    /// Its name in the models directory.
    pub file_name: String,
    /// Its path (load it with `PocketModel`).
    pub path: String,
    /// Its size in bytes.
    pub size: i64,
    /// Its SHA-256 as verified when downloaded (`None` for a file placed there by other means).
    pub sha256: Option<String>,
}

impl From<pocketlm::InstalledModel> for InstalledModel {
    fn from(m: pocketlm::InstalledModel) -> Self {
        InstalledModel { file_name: m.file_name, path: m.path.display().to_string(), size: saturating_i64(m.size), sha256: m.sha256 }
    }
}

impl From<&pocketlm::DownloadProgress> for DownloadProgress {
    fn from(p: &pocketlm::DownloadProgress) -> Self {
        use pocketlm::DownloadState as S;
        let state = match p.state {
            S::Queued => DownloadState::Queued,
            S::Downloading => DownloadState::Downloading,
            S::Paused => DownloadState::Paused,
            S::Verifying => DownloadState::Verifying,
            S::Done => DownloadState::Done,
            S::Failed => DownloadState::Failed,
        };
        DownloadProgress {
            state,
            downloaded: saturating_i64(p.downloaded),
            total: p.total.map(saturating_i64),
            bytes_per_second: p.bytes_per_second,
            eta_seconds: p.eta_seconds,
        }
    }
}

/// Receives one download, in order: progress, then one `on_complete` or `on_error`.
#[uniffi::export(with_foreign)]
pub trait DownloadListener: Send + Sync {
    /// Progress (throttled; every state change is reported).
    fn on_progress(&self, progress: DownloadProgress);
    /// The file is installed and verified.
    fn on_complete(&self, model: InstalledModel);
    /// The download failed (a `Download` error with its kind) or was cancelled.
    fn on_error(&self, error: FfiError);
}

/// Pauses, resumes and cancels one download; dropping it cancels.
#[derive(uniffi::Object)]
pub struct DownloadHandle {
    task: Arc<GenerationHandle>,
    control: DownloadControl,
}

#[uniffi::export]
impl DownloadHandle {
    /// Stops transferring (the connection closes, the part stays) until `resume`.
    pub fn pause(&self) {
        self.control.pause();
    }
    /// Continues from the byte it reached.
    pub fn resume(&self) {
        self.control.resume();
    }
    /// Ends the download with a `Cancelled` error; the part stays for a later download to resume.
    pub fn cancel(&self) {
        self.task.cancel();
    }
    /// Whether the listener has received its final call.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Downloads model files into one directory the app chooses, and manages it.
#[derive(uniffi::Object)]
pub struct ModelDownloader {
    inner: Arc<Downloader>,
}

#[uniffi::export]
impl ModelDownloader {
    /// A downloader into `dir` (created if missing).
    #[uniffi::constructor]
    pub fn new(dir: String, options: DownloadOptions) -> Result<Arc<Self>, FfiError> {
        let options = pocketlm::DownloadOptions {
            read_timeout_ms: amount("read_timeout_ms", options.read_timeout_ms)?,
            max_retries: count("max_retries", options.max_retries)?,
            max_concurrent: count("max_concurrent", options.max_concurrent)? as usize,
            ..pocketlm::DownloadOptions::default()
        };
        Ok(Arc::new(ModelDownloader { inner: Arc::new(Downloader::new(dir, options)?) }))
    }

    /// Downloads `request` (resuming a part an earlier download left), streaming
    /// progress to `listener`. Returns at once.
    pub fn download(&self, request: DownloadRequest, listener: Arc<dyn DownloadListener>) -> Arc<DownloadHandle> {
        let control = DownloadControl::new();
        let paused = control.clone();
        let downloader = Arc::clone(&self.inner);
        let done = Arc::clone(&listener);
        let task = spawn_streaming(
            move |cancel, emit: &dyn Fn(DownloadProgress)| {
                let request = pocketlm::DownloadRequest {
                    url: request.url,
                    file_name: request.file_name,
                    sha256: request.sha256,
                    size: opt_amount("size", request.size)?,
                    token: request.token,
                };
                downloader.download(&request, &paused.with_cancel(cancel), &mut |p| emit(p.into()))
            },
            move |progress| listener.on_progress(progress),
            move |result| match result {
                Ok(model) => done.on_complete(model.into()),
                Err(e) => done.on_error(e.into()),
            },
        );
        Arc::new(DownloadHandle { task, control })
    }

    /// Installs a file downloaded by other means (an iOS background
    /// `URLSession`, Android's `DownloadManager`) after checking its SHA-256:
    /// moved into the directory as `file_name`. A wrong file is a
    /// `HashMismatch` error and stays where it was.
    pub fn adopt(&self, source_path: String, file_name: String, sha256: Option<String>) -> Result<InstalledModel, FfiError> {
        Ok(self.inner.store().adopt(std::path::Path::new(&source_path), &file_name, sha256.as_deref())?.into())
    }

    /// The installed files, by name.
    pub fn installed(&self) -> Result<Vec<InstalledModel>, FfiError> {
        Ok(self.inner.store().installed()?.into_iter().map(Into::into).collect())
    }

    /// Deletes a file (and any part of it); `false` if there was nothing.
    pub fn delete(&self, file_name: String) -> Result<bool, FfiError> {
        Ok(self.inner.store().delete(&file_name)?)
    }

    /// Bytes used by installed files and parts.
    pub fn used_bytes(&self) -> i64 {
        saturating_i64(self.inner.store().used_bytes())
    }

    /// Free bytes on the directory's file system, when the system says.
    pub fn free_bytes(&self) -> Option<i64> {
        self.inner.store().free_space().map(saturating_i64)
    }
}
