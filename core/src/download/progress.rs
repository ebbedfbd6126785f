//! What a download reports while it runs: its state, bytes, speed and time left.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Where a download is, for a UI to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadState {
    /// Waiting for one of the concurrent slots.
    Queued,
    /// Bytes are arriving (or the next attempt is about to start).
    Downloading,
    /// Paused by the app; the part is kept.
    Paused,
    /// Checking the whole file's SHA-256.
    Verifying,
    /// Installed.
    Done,
    /// Failed (the error says why); a hash mismatch deleted the file.
    Failed,
}

/// One progress report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DownloadProgress {
    /// The state.
    pub state: DownloadState,
    /// Bytes on disk so far (including what an earlier attempt left).
    pub downloaded: u64,
    /// The file's size, once known.
    pub total: Option<u64>,
    /// Recent speed, in bytes per second (0 before any bytes arrive).
    pub bytes_per_second: f64,
    /// Time left at that speed, in seconds, once the size and the speed are known.
    pub eta_seconds: Option<f64>,
}

/// Turns byte counts into throttled [`DownloadProgress`] reports.
pub(super) struct ProgressMeter {
    interval: Duration,
    state: Option<DownloadState>,
    total: Option<u64>,
    last_at: Instant,
    last_bytes: u64,
    rate: f64,
}

impl ProgressMeter {
    pub(super) fn new(interval: Duration, total: Option<u64>) -> ProgressMeter {
        ProgressMeter { interval, state: None, total, last_at: Instant::now(), last_bytes: 0, rate: 0.0 }
    }

    pub(super) fn set_total(&mut self, total: Option<u64>) {
        if total.is_some() {
            self.total = total;
        }
    }

    /// A state change: always reported.
    pub(super) fn set(&mut self, state: DownloadState, bytes: u64, on_progress: &mut dyn FnMut(&DownloadProgress)) {
        if self.state != Some(state) || state == DownloadState::Downloading {
            self.state = Some(state);
            self.last_at = Instant::now();
            self.last_bytes = bytes;
            on_progress(&self.report(bytes));
        }
    }

    /// Bytes arrived: reported at most once per interval.
    pub(super) fn bytes(&mut self, bytes: u64, on_progress: &mut dyn FnMut(&DownloadProgress)) {
        let elapsed = self.last_at.elapsed();
        if elapsed < self.interval {
            return;
        }
        let instant = bytes.saturating_sub(self.last_bytes) as f64 / elapsed.as_secs_f64();
        // Smoothed, so one slow or fast interval does not swing the time left.
        self.rate = if self.rate == 0.0 { instant } else { 0.7 * self.rate + 0.3 * instant };
        self.last_at = Instant::now();
        self.last_bytes = bytes;
        on_progress(&self.report(bytes));
    }

    fn report(&self, bytes: u64) -> DownloadProgress {
        let state = self.state.unwrap_or(DownloadState::Queued);
        let eta_seconds = match (self.total, self.rate > 0.0, state) {
            (Some(total), true, DownloadState::Downloading) => Some(total.saturating_sub(bytes) as f64 / self.rate),
            _ => None,
        };
        DownloadProgress { state, downloaded: bytes, total: self.total, bytes_per_second: self.rate, eta_seconds }
    }
}
