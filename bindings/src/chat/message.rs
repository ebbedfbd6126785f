//! Messages of a conversation.

use super::structured::ToolCall;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    /// System instructions.
    System,
    /// The app's user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
    /// The tools an assistant message called.
    pub tool_calls: Vec<ToolCall>,
    /// For a tool result: the call it answers.
    pub tool_call_id: Option<String>,
}

impl From<&pocketlm::Message> for ChatMessage {
    fn from(m: &pocketlm::Message) -> Self {
        let role = match m.role {
            pocketlm::Role::System => Role::System,
            pocketlm::Role::User => Role::User,
            pocketlm::Role::Assistant => Role::Assistant,
            pocketlm::Role::Tool => Role::Tool,
        };
        let tool_calls = m.tool_calls.iter().map(Into::into).collect();
        ChatMessage { role, content: m.content.clone(), tool_calls, tool_call_id: m.tool_call_id.clone() }
    }
}
