//! PocketLM's pure layer: everything that reads untrusted input or computes
//! from it without touching llama.cpp. It forbids `unsafe`, so the fuzz
//! targets in `core/fuzz` exercise exactly what ships.
//!
//! - [`gguf`]: the strict, allocation-bounded GGUF header reader;
//! - [`plan`]: the memory planner (predicted peak RSS from the header);
//! - [`lora`]: LoRA adapter files, checked against their base model;
//! - [`catalog`]: the models PocketLM targets, and which fit a device;
//! - [`template`]: chat messages and the Jinja chat template, with a fuel limit;
//! - [`stream`]: UTF-8-safe deltas and stop sequences;
//! - [`confidence`]: token-level confidence math;
//! - [`constraint`]: what a structured answer must look like, and its checks;
//! - [`tool`]: tool declarations, calls, per-family call formats and their scanner;
//! - [`vector_index`]: chunks and their embeddings, top-k by cosine, saved to a file;
//! - [`partial`]: snapshots of JSON still being written;
//! - [`arch`]: which architectures can chat;
//! - [`sampling`]: sampling options and their validation;
//! - [`session_file`]: the saved-conversation file and its checks;
//! - [`cancel`]: the cancellation flag shared by every layer;
//! - [`error`]: the one error type of the SDK.
#![forbid(unsafe_code)]

pub mod arch;
pub mod cancel;
pub mod catalog;
pub mod confidence;
pub mod constraint;
pub mod error;
pub mod gguf;
pub mod image;
pub mod lora;
pub mod partial;
pub mod plan;
pub mod probe;
pub mod sampling;
pub mod session_file;
pub mod stream;
pub mod template;
pub mod tool;
pub mod vector_index;
pub mod vision;

pub use error::{CloudErrorKind, DownloadErrorKind, Error, Result, SessionErrorKind};
