//! The directory an app keeps its models in: installed files, each with a
//! small record of its SHA-256, and the hidden parts of downloads in progress.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::storage;
use crate::catalog::check_file_name;
use crate::error::{DownloadErrorKind, Result};

/// One installed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledModel {
    /// Its name in the store.
    pub file_name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, as verified when it was downloaded (`None` for a file
    /// placed in the directory by other means).
    pub sha256: Option<String>,
}

/// The files of one download in progress.
pub(super) struct PartPaths {
    pub(super) part: PathBuf,
    pub(super) info: PathBuf,
    /// Locked while a download of the file runs (kept between downloads).
    pub(super) lock: PathBuf,
}

/// A models directory chosen by the app.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    /// The store in `dir`, created if missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<ModelStore> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| storage(&format!("create {}", dir.display()), e))?;
        Ok(ModelStore { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `file_name` is (or will be) installed.
    pub fn path(&self, file_name: &str) -> Result<PathBuf> {
        check_file_name(file_name)?;
        Ok(self.dir.join(file_name))
    }

    fn hash_record(&self, file_name: &str) -> PathBuf {
        self.dir.join(format!(".{file_name}.sha256"))
    }

    pub(super) fn part_paths(&self, file_name: &str) -> PartPaths {
        PartPaths {
            part: self.dir.join(format!(".{file_name}.part")),
            info: self.dir.join(format!(".{file_name}.part.json")),
            lock: self.dir.join(format!(".{file_name}.lock")),
        }
    }

    /// Every installed file, by name.
    pub fn installed(&self) -> Result<Vec<InstalledModel>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| storage(&format!("list {}", self.dir.display()), e))?;
        let mut models: Vec<InstalledModel> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let meta = e.metadata().ok()?;
                (meta.is_file() && !name.starts_with('.')).then(|| self.describe(&name, meta.len()))
            })
            .collect();
        models.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        Ok(models)
    }

    fn describe(&self, file_name: &str, size: u64) -> InstalledModel {
        let sha256 = std::fs::read_to_string(self.hash_record(file_name)).ok().and_then(|r| {
            let (hash, len) = r.trim().split_once(' ')?;
            // A record is only trusted for the file it was written for.
            (len.parse::<u64>().ok()? == size).then(|| hash.to_string())
        });
        InstalledModel { file_name: file_name.to_string(), path: self.dir.join(file_name), size, sha256 }
    }

    /// `file_name` when it is installed (and, with `sha256` or `size`, has that hash and size).
    pub(super) fn installed_as(&self, file_name: &str, sha256: Option<&str>, size: Option<u64>) -> Result<Option<InstalledModel>> {
        let path = self.path(file_name)?;
        let Ok(meta) = std::fs::metadata(&path) else { return Ok(None) };
        if size.is_some_and(|s| s != meta.len()) {
            return Ok(None);
        }
        let model = self.describe(file_name, meta.len());
        let matches = match (sha256, &model.sha256) {
            (Some(want), Some(have)) => want.eq_ignore_ascii_case(have),
            (Some(_), None) => false,
            (None, _) => true,
        };
        Ok(matches.then_some(model))
    }

    /// Moves a verified part into place, with its hash record.
    pub(super) fn install(&self, file_name: &str, sha256: &str, size: u64) -> Result<InstalledModel> {
        let paths = self.part_paths(file_name);
        let path = self.path(file_name)?;
        std::fs::write(self.hash_record(file_name), format!("{sha256} {size}\n")).map_err(|e| storage("write the hash record", e))?;
        std::fs::rename(&paths.part, &path).map_err(|e| storage("move the file into place", e))?;
        let _ = std::fs::remove_file(&paths.info);
        Ok(InstalledModel { file_name: file_name.to_string(), path, size, sha256: Some(sha256.to_string()) })
    }

    /// Installs a file downloaded by other means (an iOS background
    /// `URLSession`, Android's `DownloadManager`): hashes it, checks it against
    /// `sha256` when given ([`DownloadErrorKind::HashMismatch`] otherwise, the
    /// source left where it is), then moves it into the store as `file_name`
    /// (copying when the source is on another file system).
    pub fn adopt(&self, source: &Path, file_name: &str, sha256: Option<&str>) -> Result<InstalledModel> {
        let path = self.path(file_name)?;
        let (hasher, size) = super::hash::hash_file(source, &super::DownloadControl::new())?;
        let actual = super::hash::hex(&sha2::Digest::finalize(hasher));
        if let Some(expected) = sha256.filter(|e| !e.eq_ignore_ascii_case(&actual)) {
            return Err(super::fail(
                DownloadErrorKind::HashMismatch,
                format!("{} is not the expected file: SHA-256 {actual}, expected {expected}", source.display()),
            ));
        }
        std::fs::write(self.hash_record(file_name), format!("{actual} {size}\n")).map_err(|e| storage("write the hash record", e))?;
        if std::fs::rename(source, &path).is_err() {
            // Another file system: copy to a part beside the target, then rename.
            let part = self.part_paths(file_name).part;
            std::fs::copy(source, &part).map_err(|e| storage("copy the file into the store", e))?;
            std::fs::rename(&part, &path).map_err(|e| storage("move the file into place", e))?;
            let _ = std::fs::remove_file(source);
        }
        Ok(InstalledModel { file_name: file_name.to_string(), path, size, sha256: Some(actual) })
    }

    /// Deletes a download's part and its record.
    pub(super) fn remove_part(&self, file_name: &str) {
        let paths = self.part_paths(file_name);
        let _ = std::fs::remove_file(paths.part);
        let _ = std::fs::remove_file(paths.info);
    }

    /// Deletes `file_name`, its hash record and any part of it; `false` if there was nothing.
    pub fn delete(&self, file_name: &str) -> Result<bool> {
        let path = self.path(file_name)?;
        let existed = path.exists() || self.part_paths(file_name).part.exists();
        if path.exists() {
            std::fs::remove_file(&path).map_err(|e| storage(&format!("delete {}", path.display()), e))?;
        }
        let _ = std::fs::remove_file(self.hash_record(file_name));
        self.remove_part(file_name);
        let _ = std::fs::remove_file(self.part_paths(file_name).lock);
        Ok(existed)
    }

    /// Bytes used by installed files and parts of downloads.
    pub fn used_bytes(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }

    /// Free bytes on the store's file system, when the system says.
    pub fn free_space(&self) -> Option<u64> {
        fs4::available_space(&self.dir).ok()
    }
}
