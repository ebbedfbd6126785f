//! What a streaming answer reports as it goes.

use crate::tool::{ToolCall, ToolResult};

/// One thing that happened while answering (see [`crate::Conversation::send_events`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChatEvent<'a> {
    /// New answer text to show (tool-call markup never appears here).
    Text(&'a str),
    /// A JSON answer as written so far: complete members and elements, a
    /// string value cut mid-way, open objects and arrays closed. Sent when it changes.
    Snapshot(&'a serde_json::Value),
    /// The model decided to call a tool (its arguments are complete and valid).
    ToolCall(&'a ToolCall),
    /// A tool handler returned (automatic tool use only).
    ToolResult(&'a ToolResult),
}
