//! Messages of a conversation.

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    /// System instructions.
    System,
    /// The app's user.
    User,
    /// The model.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

impl From<&pocketlm::Message> for ChatMessage {
    fn from(m: &pocketlm::Message) -> Self {
        let role = match m.role {
            pocketlm::Role::System => Role::System,
            pocketlm::Role::User => Role::User,
            pocketlm::Role::Assistant => Role::Assistant,
        };
        ChatMessage { role, content: m.content.clone() }
    }
}
