//! Saved conversations: what saving and restoring report, and reading a
//! session file's transcript without a model (for a conversation list).

use std::path::Path;

use super::message::ChatMessage;
use crate::convert::{saturating_i32, saturating_i64};
use crate::error::{FfiError, SessionErrorKind};

/// What `PocketConversation::save` wrote.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SavedSession {
    /// The file's size in bytes.
    pub file_bytes: i64,
    /// Messages saved, system prompt included.
    pub messages: i32,
    /// Tokens of KV cache saved.
    pub cached_tokens: i32,
}

/// What a restore brought back.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RestoredSession {
    /// Messages restored, system prompt included.
    pub messages: i32,
    /// Tokens of KV cache restored; 0 when only the transcript was (the next
    /// answer re-reads it).
    pub cached_tokens: i32,
    /// When a restore fell back to the transcript: why the saved cache was not used.
    pub fallback_kind: Option<SessionErrorKind>,
    /// The same, in words.
    pub fallback_reason: Option<String>,
}

impl From<pocketlm::SavedSession> for SavedSession {
    fn from(saved: pocketlm::SavedSession) -> Self {
        SavedSession {
            file_bytes: saturating_i64(saved.file_bytes),
            messages: saturating_i32(saved.messages),
            cached_tokens: saturating_i32(saved.cached_tokens),
        }
    }
}

impl RestoredSession {
    /// What came back, and why the cache did not when `why` says so.
    pub(crate) fn new(restored: pocketlm::RestoredSession, why: Option<pocketlm::Error>) -> Self {
        let (fallback_kind, fallback_reason) = match why {
            Some(pocketlm::Error::Session { kind, detail }) => (Some(kind.into()), Some(detail)),
            Some(other) => (None, Some(other.to_string())),
            None => (None, None),
        };
        RestoredSession {
            messages: saturating_i32(restored.messages),
            cached_tokens: saturating_i32(restored.cached_tokens),
            fallback_kind,
            fallback_reason,
        }
    }
}

/// A session file's messages and when it was saved.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SessionSummary {
    /// The messages, system prompt first.
    pub messages: Vec<ChatMessage>,
    /// Seconds since the Unix epoch when it was saved.
    pub saved_at: i64,
    /// The model's name, if its file has one.
    pub model_name: Option<String>,
    /// The model file's size in bytes.
    pub model_file_size: i64,
}

/// Reads a session file's transcript without loading a model (fast: the
/// saved KV cache is not read).
#[uniffi::export]
pub fn read_session_summary(path: String) -> Result<SessionSummary, FfiError> {
    let summary = pocketlm::read_session_summary(Path::new(&path))?;
    Ok(SessionSummary {
        messages: summary.messages.iter().map(Into::into).collect(),
        saved_at: saturating_i64(summary.saved_at),
        model_name: summary.model_name,
        model_file_size: saturating_i64(summary.model_file_size),
    })
}
