//! The saved-conversation file: a transcript and llama.cpp's KV-cache state,
//! bound to the model, template, context settings and engine that made it.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! "PLMSESS\0"                 8 bytes, the magic
//! format version              u32 (SESSION_FORMAT_VERSION)
//! header length H             u32 (at most MAX_HEADER_BYTES)
//! header                      H bytes of JSON (SessionHeader)
//! SHA-256 of everything above 32 bytes
//! tokens                      4 bytes each (header.tokens of them)
//! state                       header.state_bytes bytes, llama.cpp's
//! ```
//!
//! The header carries the SHA-256 of the tokens and state. So a file whose
//! state part is cut short or damaged still yields its transcript (checked by
//! its own digest), and nothing unverified ever reaches llama.cpp. Reading
//! never allocates more than the file's real length.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, SessionErrorKind};
use crate::gguf::GgufFile;
use crate::plan::KvType;
use crate::template::Message;

/// The first bytes of every session file.
pub const SESSION_MAGIC: &[u8; 8] = b"PLMSESS\0";
/// The layout version this build writes and reads.
pub const SESSION_FORMAT_VERSION: u32 = 1;
/// The largest header (transcript included) a session file may carry.
pub const MAX_HEADER_BYTES: u32 = 64 << 20;

const PREAMBLE_BYTES: u64 = 16;
const DIGEST_BYTES: u64 = 32;

/// Which model a session was saved with: its size and the SHA-256 of its
/// GGUF header (metadata and tensor table), which pins the weights' layout
/// and the tokenizer without hashing gigabytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelIdentity {
    /// The model file's size in bytes.
    pub file_size: u64,
    /// SHA-256 (hex) of the file's first `data_offset` bytes.
    pub header_sha256: String,
    /// `general.architecture`.
    pub architecture: String,
    /// `general.name`, if any (for people; not compared).
    #[serde(default)]
    pub name: Option<String>,
}

impl ModelIdentity {
    /// The identity of the model file at `path`, whose parsed header is `gguf`:
    /// hashes the file's first `gguf.data_offset` bytes (a few MB at most).
    pub fn of_file(path: &std::path::Path, gguf: &GgufFile) -> std::io::Result<ModelIdentity> {
        let mut file = std::fs::File::open(path)?.take(gguf.data_offset);
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
        }
        Ok(ModelIdentity {
            file_size: gguf.file_size,
            header_sha256: to_hex(&hash.finalize()),
            architecture: gguf.architecture().unwrap_or_default().to_string(),
            name: gguf.get_str("general.name").map(str::to_string),
        })
    }

    /// Whether `other` is the same model (name aside).
    pub fn same_model(&self, other: &ModelIdentity) -> bool {
        self.file_size == other.file_size && self.header_sha256 == other.header_sha256 && self.architecture == other.architecture
    }
}

/// The context settings that shape the KV cache: a state saved under one
/// set cannot be loaded under another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextSettings {
    /// Context window in tokens.
    pub context_length: u32,
    /// KV cache element type.
    pub kv_type: KvType,
    /// Whether sliding-window layers keep the whole context.
    pub full_swa_cache: bool,
}

/// Everything a session file says about itself, and the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionHeader {
    /// The model the state belongs to.
    pub model: ModelIdentity,
    /// SHA-256 (hex) of the chat template the prompt was rendered with.
    pub template_sha256: String,
    /// The context settings the state was saved under.
    pub context: ContextSettings,
    /// The LoRA adapters in effect (non-zero scale) when the state was
    /// computed, sorted; empty without adapters (and in files written before
    /// adapters existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adapters: Vec<AdapterInEffect>,
    /// The engine build whose state layout the file holds.
    pub engine: String,
    /// Seconds since the Unix epoch when it was saved.
    pub saved_at: u64,
    /// The conversation's messages, system prompt first.
    pub messages: Vec<Message>,
    /// How many tokens the KV cache holds.
    pub tokens: u32,
    /// Length of llama.cpp's state in bytes.
    pub state_bytes: u64,
    /// SHA-256 (hex) of the tokens and the state, as stored.
    pub payload_sha256: String,
}

/// A LoRA adapter a saved state was computed with.
#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterInEffect {
    /// SHA-256 (hex) of the adapter file.
    pub sha256: String,
    /// Its scale.
    pub scale: f32,
}

/// The KV cache as saved: the tokens it holds and llama.cpp's state for them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionPayload {
    /// Exactly the tokens in the cache, in order.
    pub tokens: Vec<i32>,
    /// llama.cpp's sequence state (opaque).
    pub state: Vec<u8>,
}

fn corrupt(detail: impl Into<String>) -> Error {
    Error::Session { kind: SessionErrorKind::Corrupt, detail: detail.into() }
}

fn io_error(e: std::io::Error, doing: &str) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::UnexpectedEof => SessionErrorKind::Corrupt,
        std::io::ErrorKind::NotFound => SessionErrorKind::NotFound,
        _ => SessionErrorKind::Storage,
    };
    Error::Session { kind, detail: format!("{doing}: {e}") }
}

/// Hex of a SHA-256 digest.
pub fn hex_digest(bytes: impl AsRef<[u8]>) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Hex of the SHA-256 digest of everything `reader` yields, read in 1 MiB chunks.
pub fn hex_digest_of(mut reader: impl std::io::Read) -> std::io::Result<String> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf)? {
            0 => return Ok(to_hex(&hash.finalize())),
            n => hash.update(&buf[..n]),
        }
    }
}

fn to_hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn payload_digest(tokens: &[i32], state: &[u8]) -> String {
    let mut hash = Sha256::new();
    for t in tokens {
        hash.update(t.to_le_bytes());
    }
    hash.update(state);
    to_hex(&hash.finalize())
}

/// Writes a session file to `out`. `header`'s `tokens`, `state_bytes` and
/// `payload_sha256` are filled in from `payload`.
pub fn write_session(out: &mut dyn Write, header: &SessionHeader, payload: &SessionPayload) -> Result<(), Error> {
    let mut header = header.clone();
    header.tokens = u32::try_from(payload.tokens.len()).map_err(|_| corrupt("more than 2^32 tokens"))?;
    header.state_bytes = payload.state.len() as u64;
    header.payload_sha256 = payload_digest(&payload.tokens, &payload.state);
    let json = serde_json::to_vec(&header).map_err(|e| corrupt(format!("cannot encode the header: {e}")))?;
    let len = u32::try_from(json.len()).ok().filter(|&l| l <= MAX_HEADER_BYTES).ok_or_else(|| Error::Session {
        kind: SessionErrorKind::TooLarge,
        detail: format!("the transcript takes {} bytes; at most {MAX_HEADER_BYTES} fit in a session file", json.len()),
    })?;
    let mut preamble = Vec::with_capacity(PREAMBLE_BYTES as usize + json.len());
    preamble.extend_from_slice(SESSION_MAGIC);
    preamble.extend_from_slice(&SESSION_FORMAT_VERSION.to_le_bytes());
    preamble.extend_from_slice(&len.to_le_bytes());
    preamble.extend_from_slice(&json);
    let write = |out: &mut dyn Write, bytes: &[u8]| out.write_all(bytes).map_err(|e| io_error(e, "cannot write the session file"));
    write(out, &preamble)?;
    write(out, &Sha256::digest(&preamble))?;
    let tokens: Vec<u8> = payload.tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    write(out, &tokens)?;
    write(out, &payload.state)
}

/// Reads and verifies a session file's header (its transcript included),
/// leaving `input` at the payload. `file_len` is the file's real length: the
/// header is refused unless the payload it announces is exactly what follows.
/// A header that is intact while the payload is short is still returned, with
/// `Ok(false)` for "payload incomplete".
pub fn read_session_header(input: &mut dyn Read, file_len: u64) -> Result<(SessionHeader, bool), Error> {
    let mut preamble = [0u8; PREAMBLE_BYTES as usize];
    input.read_exact(&mut preamble).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Session {
            kind: SessionErrorKind::NotASession,
            detail: format!("the file has {file_len} bytes, too few for a session file"),
        },
        _ => io_error(e, "cannot read the session file"),
    })?;
    if &preamble[..8] != SESSION_MAGIC {
        return Err(Error::Session {
            kind: SessionErrorKind::NotASession,
            detail: "the file does not start with PocketLM's session magic".into(),
        });
    }
    let version = u32::from_le_bytes(preamble[8..12].try_into().expect("4 bytes"));
    if version != SESSION_FORMAT_VERSION {
        return Err(Error::Session {
            kind: SessionErrorKind::UnsupportedVersion,
            detail: format!("format version {version}; this build reads version {SESSION_FORMAT_VERSION}"),
        });
    }
    let len = u32::from_le_bytes(preamble[12..16].try_into().expect("4 bytes"));
    if len > MAX_HEADER_BYTES || PREAMBLE_BYTES + u64::from(len) + DIGEST_BYTES > file_len {
        return Err(corrupt(format!("the header claims {len} bytes, more than the file holds")));
    }
    let mut json = vec![0u8; len as usize];
    input.read_exact(&mut json).map_err(|e| io_error(e, "the header is cut short"))?;
    let mut digest = [0u8; DIGEST_BYTES as usize];
    input.read_exact(&mut digest).map_err(|e| io_error(e, "the header digest is cut short"))?;
    let mut hash = Sha256::new();
    hash.update(preamble);
    hash.update(&json);
    if hash.finalize().as_slice() != digest {
        return Err(corrupt("the header does not match its SHA-256 (the file was damaged)"));
    }
    let header: SessionHeader = serde_json::from_slice(&json).map_err(|e| corrupt(format!("the header is not valid: {e}")))?;
    let payload_len = (u64::from(header.tokens) * 4).checked_add(header.state_bytes);
    let have = file_len - PREAMBLE_BYTES - u64::from(len) - DIGEST_BYTES;
    Ok((header, payload_len == Some(have)))
}

/// Reads and verifies the payload that follows a header read by
/// [`read_session_header`] (with `complete == true`).
pub fn read_session_payload(input: &mut dyn Read, header: &SessionHeader) -> Result<SessionPayload, Error> {
    let mut tokens = vec![0u8; header.tokens as usize * 4];
    input.read_exact(&mut tokens).map_err(|e| io_error(e, "the saved tokens are cut short"))?;
    let state_len = usize::try_from(header.state_bytes).map_err(|_| corrupt("the state is larger than memory"))?;
    let mut state = vec![0u8; state_len];
    input.read_exact(&mut state).map_err(|e| io_error(e, "the saved state is cut short"))?;
    let tokens: Vec<i32> = tokens.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
    if payload_digest(&tokens, &state) != header.payload_sha256 {
        return Err(Error::Session {
            kind: SessionErrorKind::StateCorrupt,
            detail: "the saved KV-cache state does not match its SHA-256 (the file was damaged)".into(),
        });
    }
    Ok(SessionPayload { tokens, state })
}

/// Reads a whole session file held in memory (used by tests and the fuzz
/// target): the header, and the payload when it is complete and intact.
pub fn parse_session(bytes: &[u8]) -> Result<(SessionHeader, Result<SessionPayload, Error>), Error> {
    let mut input = bytes;
    let (header, complete) = read_session_header(&mut input, bytes.len() as u64)?;
    let payload = if complete {
        read_session_payload(&mut input, &header)
    } else {
        Err(Error::Session { kind: SessionErrorKind::StateCorrupt, detail: "the saved state is cut short".into() })
    };
    Ok((header, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SessionHeader {
        SessionHeader {
            model: ModelIdentity { file_size: 10, header_sha256: "ab".into(), architecture: "qwen2".into(), name: None },
            template_sha256: "cd".into(),
            context: ContextSettings { context_length: 512, kv_type: KvType::F16, full_swa_cache: false },
            adapters: vec![],
            engine: "test".into(),
            saved_at: 1,
            messages: vec![Message::user("hello")],
            tokens: 0,
            state_bytes: 0,
            payload_sha256: String::new(),
        }
    }

    fn encoded() -> Vec<u8> {
        let mut out = Vec::new();
        let payload = SessionPayload { tokens: vec![1, 2, 3], state: vec![9; 100] };
        write_session(&mut out, &header(), &payload).unwrap();
        out
    }

    fn kind(e: Error) -> SessionErrorKind {
        match e {
            Error::Session { kind, .. } => kind,
            other => panic!("not a session error: {other}"),
        }
    }

    #[test]
    fn round_trip() {
        let (h, payload) = parse_session(&encoded()).unwrap();
        assert_eq!(h.messages, vec![Message::user("hello")]);
        assert_eq!(h.tokens, 3);
        assert_eq!(payload.unwrap(), SessionPayload { tokens: vec![1, 2, 3], state: vec![9; 100] });
    }

    #[test]
    fn a_cut_state_keeps_the_transcript() {
        let bytes = encoded();
        let (h, payload) = parse_session(&bytes[..bytes.len() - 10]).unwrap();
        assert_eq!(h.messages.len(), 1);
        assert_eq!(kind(payload.unwrap_err()), SessionErrorKind::StateCorrupt);
    }

    #[test]
    fn a_damaged_state_keeps_the_transcript() {
        let mut bytes = encoded();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let (_, payload) = parse_session(&bytes).unwrap();
        assert_eq!(kind(payload.unwrap_err()), SessionErrorKind::StateCorrupt);
    }

    #[test]
    fn a_damaged_header_is_corrupt() {
        let mut bytes = encoded();
        bytes[30] ^= 1;
        assert_eq!(kind(parse_session(&bytes).unwrap_err()), SessionErrorKind::Corrupt);
        assert_eq!(kind(parse_session(&bytes[..40]).unwrap_err()), SessionErrorKind::Corrupt);
    }

    #[test]
    fn other_files_are_refused() {
        assert_eq!(kind(parse_session(b"GGUF\x03\0\0\0 and more bytes").unwrap_err()), SessionErrorKind::NotASession);
        assert_eq!(kind(parse_session(b"PLM").unwrap_err()), SessionErrorKind::NotASession);
        let mut bytes = encoded();
        bytes[8] = 2;
        assert_eq!(kind(parse_session(&bytes).unwrap_err()), SessionErrorKind::UnsupportedVersion);
    }

    #[test]
    fn a_huge_claimed_header_is_refused_without_allocating() {
        let mut bytes = encoded();
        bytes[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(kind(parse_session(&bytes).unwrap_err()), SessionErrorKind::Corrupt);
    }
}
