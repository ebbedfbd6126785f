//! The chat layer: conversations over the engine. History and its rules,
//! context overflow, cancellation and deadlines, streaming deltas and
//! events, tool use, and the metrics of every answer. No llama.cpp call
//! happens here; the engine does the work.

mod conversation;
mod event;
mod metrics;
mod persist;
mod tools;

pub use conversation::{Conversation, ConversationOptions, OverflowPolicy, PartialAnswer, Reply, SendOptions, DEFAULT_CONTEXT_LENGTH};
pub use event::ChatEvent;
pub use metrics::{Metrics, StopReason};
pub use persist::{read_session_summary, RestoredSession, SavedSession, SessionSummary};
pub use tools::DEFAULT_MAX_TOOL_ROUNDS;
