//! What reads return while the engine is busy.
//!
//! A conversation's engine is locked for a whole answer (and a routed one may
//! wait 30 s on the network), so reads that the UI makes on its main thread
//! must not take that lock. They read a `LiveHistory` instead: a copy of the
//! history kept beside the engine under its own, briefly held lock. The
//! request that holds the engine updates it: when it starts (the user's
//! message), as text is generated (the partial answer), and when it finishes
//! (the engine's own history, which is then authoritative: a failed request
//! rolls back, a cancelled one keeps its partial answer).

use std::sync::Mutex;

use crate::chat::{ChatMessage, Role};
use crate::task::lock;

pub(crate) struct LiveHistory(Mutex<Vec<ChatMessage>>);

impl LiveHistory {
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        LiveHistory(Mutex::new(messages))
    }

    /// A copy of the history as it is now.
    pub fn get(&self) -> Vec<ChatMessage> {
        lock(&self.0).clone()
    }

    /// Replaces it with the engine's history (at the end of a request).
    pub fn set(&self, messages: Vec<ChatMessage>) {
        *lock(&self.0) = messages;
    }

    /// A request started answering `text`.
    pub fn begin(&self, text: &str) {
        lock(&self.0).push(ChatMessage { role: Role::User, content: text.to_owned(), tool_calls: Vec::new(), tool_call_id: None });
    }

    /// A request started replacing the last user message with `text` (its answer goes too).
    pub fn edit_last(&self, text: &str) {
        let mut messages = lock(&self.0);
        if let Some(last) = messages.iter().rposition(|m| m.role == Role::User) {
            messages.truncate(last);
        }
        messages.push(ChatMessage { role: Role::User, content: text.to_owned(), tool_calls: Vec::new(), tool_call_id: None });
    }

    /// The answer grew by `text`.
    pub fn append(&self, text: &str) {
        let mut messages = lock(&self.0);
        match messages.last_mut() {
            Some(last) if last.role == Role::Assistant => last.content.push_str(text),
            _ => messages.push(ChatMessage { role: Role::Assistant, content: text.to_owned(), tool_calls: Vec::new(), tool_call_id: None }),
        }
    }

    /// The answer starts over (a regenerated answer, or a routed answer
    /// moving to the other side).
    pub fn restart(&self) {
        let mut messages = lock(&self.0);
        if messages.last().is_some_and(|m| m.role == Role::Assistant) {
            messages.pop();
        }
    }
}
