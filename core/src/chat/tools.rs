//! Automatic tool use: the SDK runs the app's handlers for the model's
//! calls, sends the results back and continues, for a bounded number of rounds.

use super::conversation::{Conversation, Reply, SendOptions};
use super::event::ChatEvent;
use crate::error::{Error, Result};
use crate::tool::{ToolCall, ToolChoice, ToolResult};

/// Rounds of calls [`Conversation::respond_with_tools`] runs when
/// [`SendOptions::max_tool_rounds`] is not set.
pub const DEFAULT_MAX_TOOL_ROUNDS: u32 = 4;

/// The result sent for a call repeated within one turn.
const REPEATED: &str = "error: this call was already made with the same arguments; its result is above. Answer the user now.";

impl Conversation {
    /// Sends `text` and answers it, running `handler` for every tool call
    /// the model makes (results go back to the model, which goes on from the
    /// cached context) until it answers without calls.
    ///
    /// A handler's `Err(text)` is sent to the model as a failed result
    /// (`is_error`), so it can retry or explain. A round that only repeats
    /// calls already answered in this turn is not run again: the model is
    /// told so and must answer in text (small models otherwise loop). After
    /// [`SendOptions::max_tool_rounds`] rounds of calls the answer is
    /// [`Error::ToolRoundsExceeded`]: the history keeps every completed round
    /// but not the unanswered calls, so it stays consistent for the next message.
    pub fn respond_with_tools(
        &mut self,
        text: &str,
        options: &SendOptions,
        handler: &mut dyn FnMut(&ToolCall) -> std::result::Result<String, String>,
        on_event: &mut dyn FnMut(ChatEvent<'_>),
    ) -> Result<Reply> {
        let limit = options.max_tool_rounds.unwrap_or(DEFAULT_MAX_TOOL_ROUNDS);
        let mut reply = self.send_events(text, options, on_event)?;
        // After the first round the model may answer in text (a forced call would loop).
        let mut then = options.clone();
        if matches!(then.tool_choice, ToolChoice::Required | ToolChoice::Tool(_)) {
            then.tool_choice = ToolChoice::Auto;
        }
        let mut rounds = 0;
        let mut answered: Vec<(String, String)> = Vec::new();
        while !reply.tool_calls.is_empty() {
            if rounds == limit {
                // Drop the calls no result will answer.
                let len = self.messages().len();
                self.truncate(len - 1);
                return Err(Error::ToolRoundsExceeded { rounds });
            }
            rounds += 1;
            let key = |c: &ToolCall| (c.name.clone(), c.arguments.to_string());
            let repeated = reply.tool_calls.iter().all(|c| answered.contains(&key(c)));
            answered.extend(reply.tool_calls.iter().map(key));
            let mut next = then.clone();
            if repeated {
                next.tool_choice = ToolChoice::None;
            }
            let results: Vec<ToolResult> = reply
                .tool_calls
                .iter()
                .map(|call| {
                    let (content, is_error) = match repeated {
                        true => (REPEATED.to_string(), true),
                        false => match handler(call) {
                            Ok(content) => (content, false),
                            Err(error) => (format!("error: {error}"), true),
                        },
                    };
                    let result = ToolResult { call_id: call.id.clone(), name: call.name.clone(), content, is_error };
                    on_event(ChatEvent::ToolResult(&result));
                    result
                })
                .collect();
            reply = self.send_tool_results(&results, &next, on_event)?;
        }
        Ok(reply)
    }
}
