//! Saving a conversation to a file and restoring it in a new process, so the
//! next turn after an app kill evaluates only the new tokens.
//!
//! The file (see [`crate::session_file`]) binds llama.cpp's KV state to the
//! model file, the chat template, the context settings and the engine build.
//! [`Conversation::restore`] refuses a file that does not match with a typed
//! [`Error::Session`]; when the kind says the transcript is usable,
//! [`Conversation::restore_transcript`] still brings the messages back, and
//! the next answer re-reads them.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::conversation::Conversation;
use crate::engine::STATE_LAYOUT;
use crate::error::{Error, Result, SessionErrorKind};
use crate::session_file::{
    read_session_header, read_session_payload, write_session, AdapterInEffect, ContextSettings, SessionHeader, SessionPayload,
};
use crate::template::Message;

/// What [`Conversation::save`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSession {
    /// The file's size in bytes.
    pub file_bytes: u64,
    /// Messages saved, system prompt included.
    pub messages: u32,
    /// Tokens of KV cache saved.
    pub cached_tokens: u32,
}

/// What [`Conversation::restore`] or [`Conversation::restore_transcript`] brought back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoredSession {
    /// Messages restored, system prompt included.
    pub messages: u32,
    /// Tokens of KV cache restored (0 for a transcript alone: the next answer re-reads it).
    pub cached_tokens: u32,
}

/// A session file's transcript and when it was saved, read without a model
/// (for a list of saved conversations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// The conversation's messages, system prompt first.
    pub messages: Vec<Message>,
    /// Seconds since the Unix epoch when it was saved.
    pub saved_at: u64,
    /// The model's `general.name`, if it has one.
    pub model_name: Option<String>,
    /// The model file's size in bytes.
    pub model_file_size: u64,
}

fn session_error(kind: SessionErrorKind, detail: impl Into<String>) -> Error {
    Error::Session { kind, detail: detail.into() }
}

fn open(path: &Path) -> Result<(BufReader<File>, u64)> {
    let file = File::open(path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound { SessionErrorKind::NotFound } else { SessionErrorKind::Storage };
        session_error(kind, format!("cannot open {}: {e}", path.display()))
    })?;
    let len = file.metadata().map_err(|e| session_error(SessionErrorKind::Storage, e.to_string()))?.len();
    Ok((BufReader::with_capacity(1 << 20, file), len))
}

/// Reads a session file's transcript without loading any model.
pub fn read_session_summary(path: &Path) -> Result<SessionSummary> {
    let (mut input, len) = open(path)?;
    let (header, _) = read_session_header(&mut input, len)?;
    Ok(SessionSummary {
        messages: header.messages,
        saved_at: header.saved_at,
        model_name: header.model.name,
        model_file_size: header.model.file_size,
    })
}

impl Conversation {
    fn context_settings(&self) -> ContextSettings {
        ContextSettings {
            context_length: self.context_length(),
            kv_type: self.options.kv_type,
            full_swa_cache: self.options.full_swa_cache,
        }
    }

    /// The adapters the KV cache was computed with, as a session file records them.
    fn adapters_in_effect(&self) -> Vec<AdapterInEffect> {
        let mut list: Vec<AdapterInEffect> = self
            .adapters()
            .iter()
            .filter(|(_, scale)| *scale != 0.0)
            .map(|(a, scale)| AdapterInEffect { sha256: a.info().sha256.clone(), scale: *scale })
            .collect();
        list.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        list
    }

    /// Saves the transcript and the KV cache to `path`, replacing it
    /// atomically: the file is written beside it, flushed to the disk, then
    /// renamed, so a kill mid-save leaves the previous file intact.
    ///
    /// Call it after each answer (it takes milliseconds plus the write of
    /// the cache: about 12 KB per token for Qwen2.5 0.5B in f16).
    ///
    /// A conversation holding images cannot be saved yet (the file would
    /// need the images too): that is [`Error::ImagesUnsupported`].
    pub fn save(&self, path: &Path) -> Result<SavedSession> {
        if self.messages.iter().any(|m| !m.images.is_empty()) {
            return Err(Error::ImagesUnsupported {
                reason: "a conversation holding images cannot be saved to a session file yet; keep the images in the app and start a new conversation".into(),
            });
        }
        let (tokens, state) = self.session.save_state()?;
        let header = SessionHeader {
            model: self.model().identity().clone(),
            template_sha256: self.model().template_digest(),
            context: self.context_settings(),
            adapters: self.adapters_in_effect(),
            engine: STATE_LAYOUT.to_string(),
            saved_at: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            messages: self.messages.clone(),
            tokens: 0,
            state_bytes: 0,
            payload_sha256: String::new(),
        };
        let cached_tokens = tokens.len() as u32;
        let payload = SessionPayload { tokens, state };
        let storage = |e: std::io::Error| session_error(SessionErrorKind::Storage, format!("cannot write {}: {e}", path.display()));
        let temp = temp_path(path);
        let written = (|| {
            let mut out = BufWriter::with_capacity(1 << 20, File::create(&temp).map_err(storage)?);
            write_session(&mut out, &header, &payload)?;
            let file = out.into_inner().map_err(|e| storage(e.into_error()))?;
            file.sync_all().map_err(storage)?;
            let bytes = file.metadata().map_err(storage)?.len();
            std::fs::rename(&temp, path).map_err(storage)?;
            Ok(bytes)
        })();
        let file_bytes = written.inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })?;
        // The rename is durable once the directory is flushed (best effort:
        // not every platform lets a directory be opened).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(SavedSession { file_bytes, messages: self.messages.len() as u32, cached_tokens })
    }

    /// Restores the transcript and the KV cache saved by [`Conversation::save`],
    /// replacing this conversation's history. The next answer evaluates only
    /// its own new tokens.
    ///
    /// The file must have been saved with the same model file, chat template,
    /// context length, KV type and SWA setting, by the same engine build; any
    /// difference, a damaged file or one cut short is an [`Error::Session`]
    /// and leaves this conversation as it was. When
    /// [`SessionErrorKind::transcript_usable`] says so,
    /// [`Conversation::restore_transcript`] still restores the messages.
    pub fn restore(&mut self, path: &Path) -> Result<RestoredSession> {
        let (mut input, len) = open(path)?;
        let (header, complete) = read_session_header(&mut input, len)?;
        self.check_matches(&header)?;
        if !complete {
            return Err(session_error(SessionErrorKind::StateCorrupt, "the saved KV-cache state is cut short"));
        }
        let payload = read_session_payload(&mut input, &header)?;
        self.session
            .restore_state(&payload.tokens, &payload.state)
            .map_err(|detail| session_error(SessionErrorKind::StateRejected, detail))?;
        self.messages = header.messages;
        Ok(RestoredSession { messages: self.messages.len() as u32, cached_tokens: payload.tokens.len() as u32 })
    }

    /// Restores only the transcript of a session file (any model, any
    /// settings), replacing this conversation's history; the next answer
    /// re-reads it. Fails only when the transcript itself is unreadable
    /// ([`SessionErrorKind::Corrupt`], `NotASession`, `UnsupportedVersion`, `NotFound`).
    pub fn restore_transcript(&mut self, path: &Path) -> Result<RestoredSession> {
        let summary = read_session_summary(path)?;
        self.messages = summary.messages;
        Ok(RestoredSession { messages: self.messages.len() as u32, cached_tokens: 0 })
    }

    /// [`Conversation::restore`], falling back to the transcript alone when
    /// only the saved state is unusable. Returns what was restored and, for a
    /// fallback, why the state was not used.
    pub fn restore_or_transcript(&mut self, path: &Path) -> Result<(RestoredSession, Option<Error>)> {
        match self.restore(path) {
            Ok(restored) => Ok((restored, None)),
            Err(Error::Session { kind, detail }) if kind.transcript_usable() => {
                let restored = self.restore_transcript(path)?;
                Ok((restored, Some(Error::Session { kind, detail })))
            }
            Err(e) => Err(e),
        }
    }

    fn check_matches(&self, header: &SessionHeader) -> Result<()> {
        let model = self.model().identity();
        if !header.model.same_model(model) {
            return Err(session_error(
                SessionErrorKind::ModelMismatch,
                format!(
                    "saved with {} ({} bytes), this conversation runs {} ({} bytes)",
                    header.model.name.as_deref().unwrap_or(&header.model.architecture),
                    header.model.file_size,
                    model.name.as_deref().unwrap_or(&model.architecture),
                    model.file_size
                ),
            ));
        }
        if header.template_sha256 != self.model().template_digest() {
            return Err(session_error(
                SessionErrorKind::TemplateMismatch,
                "the chat template differs from the one the state was saved with",
            ));
        }
        let here = self.context_settings();
        if header.context != here {
            return Err(session_error(
                SessionErrorKind::SettingsMismatch,
                format!("saved with {:?}, this conversation has {:?}", header.context, here),
            ));
        }
        let adapters = self.adapters_in_effect();
        if header.adapters != adapters {
            let names = |list: &[AdapterInEffect]| {
                if list.is_empty() {
                    "no adapters".to_string()
                } else {
                    list.iter()
                        .map(|a| format!("{}… at {}", a.sha256.chars().take(12).collect::<String>(), a.scale))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            return Err(session_error(
                SessionErrorKind::SettingsMismatch,
                format!("saved with {}, this conversation has {}; set the same adapters first", names(&header.adapters), names(&adapters)),
            ));
        }
        if header.engine != STATE_LAYOUT {
            return Err(session_error(
                SessionErrorKind::EngineMismatch,
                format!("saved by {}, this build is {STATE_LAYOUT}", header.engine),
            ));
        }
        Ok(())
    }
}

/// Where a save writes before renaming into `path`: the same directory, so
/// the rename is atomic.
/// One name per target, so a save killed midway leaves at most one stray
/// file, which the next save of that conversation overwrites.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}
