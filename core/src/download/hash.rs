//! SHA-256 of a download: computed on its own thread while the bytes are
//! written (hashing is the costliest step per byte, so it overlaps the
//! socket and the disk instead of following them), and of a part already
//! on disk.

use std::fs::File;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{fail, storage, DownloadControl};
use crate::error::{DownloadErrorKind, Result};

/// Chunks waiting for the hashing thread; the writer waits when it is behind.
const PENDING_CHUNKS: usize = 16;

/// A SHA-256 fed from one thread and computed on another.
pub(super) struct BackgroundHash {
    tx: Option<SyncSender<Bytes>>,
    worker: Option<JoinHandle<Sha256>>,
}

impl BackgroundHash {
    /// Continues from `state` (a fresh one, or the part already on disk).
    pub(super) fn new(state: Sha256) -> Result<BackgroundHash> {
        let (tx, rx) = sync_channel::<Bytes>(PENDING_CHUNKS);
        let worker = std::thread::Builder::new()
            .name("pocketlm-sha256".into())
            .spawn(move || {
                let mut state = state;
                for bytes in rx {
                    state.update(&bytes);
                }
                state
            })
            .map_err(|e| fail(DownloadErrorKind::Storage, format!("start the hashing thread: {e}")))?;
        Ok(BackgroundHash { tx: Some(tx), worker: Some(worker) })
    }

    /// Adds `bytes` (a reference-counted view: nothing is copied).
    pub(super) fn update(&self, bytes: Bytes) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(bytes);
        }
    }

    /// The hash of everything added, in lower-case hex.
    pub(super) fn finish(mut self) -> Result<String> {
        drop(self.tx.take());
        let state = self.worker.take().and_then(|w| w.join().ok());
        let state = state.ok_or_else(|| fail(DownloadErrorKind::Storage, "the hashing thread failed; download again"))?;
        Ok(hex(&state.finalize()))
    }
}

impl Drop for BackgroundHash {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The SHA-256 state and length of what is already in the file at `path`.
pub(super) fn hash_file(path: &Path, control: &DownloadControl) -> Result<(Sha256, u64)> {
    let mut file = File::open(path).map_err(|e| storage("read the part file", e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        if control.is_cancelled() {
            return Err(fail(DownloadErrorKind::Cancelled, "cancelled while checking the part already downloaded"));
        }
        let n = std::io::Read::read(&mut file, &mut buf).map_err(|e| storage("read the part file", e))?;
        if n == 0 {
            return Ok((hasher, len));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

/// Lower-case hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_background_hash_is_the_hash_of_the_bytes_in_order() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let hash = BackgroundHash::new(Sha256::new()).unwrap();
        for chunk in data.chunks(70_001) {
            hash.update(Bytes::copy_from_slice(chunk));
        }
        assert_eq!(hash.finish().unwrap(), hex(&Sha256::digest(&data)));
        // Continuing from a state, as a resume does.
        let mut state = Sha256::new();
        state.update(&data[..1000]);
        let hash = BackgroundHash::new(state).unwrap();
        hash.update(Bytes::copy_from_slice(&data[1000..]));
        assert_eq!(hash.finish().unwrap(), hex(&Sha256::digest(&data)));
    }
}
