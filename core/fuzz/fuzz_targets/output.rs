//! The parsers that read a model's streamed answer: the tool-call scanner
//! (per format), partial JSON snapshots and call parsing. A prompt injection
//! can steer what the model writes, so these see hostile text too: a value
//! or a typed error, never a panic; and an answer that opens no call is shown
//! whole, however it was split (the scanner never loses text).
//!
//! Input: answer text, split into streamed pieces at each NUL byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketlm_base::partial::snapshot;
use pocketlm_base::tool::{self, CallScanner, Tool, ToolFormat};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pieces: Vec<&str> = text.split('\0').collect();
    for format in [ToolFormat::Hermes, ToolFormat::Llama3, ToolFormat::Generic] {
        let mut scanner = CallScanner::new(format, false);
        let mut seen = String::new();
        let mut opened = false;
        for piece in &pieces {
            if scanner.in_call() {
                // The engine constrains the call and then ends it; here the
                // call's JSON is checked like the engine checks it.
                let _ = tool::call_complete(piece);
                let _ = tool::compact_json_prefix(piece);
                scanner.end_call();
                continue;
            }
            let step = scanner.push(piece);
            seen.push_str(&step.text);
            if let Some(rest) = step.call_opened {
                opened = true;
                let _ = snapshot(&rest);
            }
        }
        seen.push_str(&scanner.finish());
        if !opened {
            assert_eq!(seen, pieces.concat(), "{format:?} lost text");
        }
    }
    let joined = pieces.concat();
    let _ = snapshot(&joined);
    let tools = [Tool::new(
        "get_weather",
        "Weather for a city",
        serde_json::json!({
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"]
        }),
    )];
    let _ = tool::parse_call(&joined, &tools, "call_0".into());
});
