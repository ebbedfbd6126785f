//! The chat layer: conversations over the engine. History and its rules,
//! context overflow, cancellation and deadlines, streaming deltas, and the
//! metrics of every answer. No llama.cpp call happens here; the engine does
//! the work.

mod conversation;
mod metrics;

pub use conversation::{Conversation, ConversationOptions, OverflowPolicy, PartialAnswer, Reply, SendOptions, DEFAULT_CONTEXT_LENGTH};
pub use metrics::{Metrics, StopReason};
