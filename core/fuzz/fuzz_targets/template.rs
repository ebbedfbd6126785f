//! Chat template compilation and rendering on any template source and any
//! messages: a typed error or a prompt, never a panic or a hang (the fuel
//! limit bounds the work; libFuzzer's -timeout catches a miss).
//!
//! Input: the template source, then NUL-separated message contents whose
//! roles cycle system, user, assistant; so a real `.jinja` file is a seed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketlm_base::template::{ChatTemplate, Message, Role};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let source = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let roles = [Role::System, Role::User, Role::Assistant];
    let messages: Vec<Message> =
        parts.take(8).enumerate().map(|(i, text)| Message::new(roles[i % 3], String::from_utf8_lossy(text))).collect();
    if let Ok(template) = ChatTemplate::with_date(&source, "<s>", "</s>", 2026, 1, 2) {
        let _ = template.render(&messages, data.len() % 2 == 0);
    }
});
