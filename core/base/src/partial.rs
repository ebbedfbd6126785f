//! Snapshots of JSON that is still being written: what a streaming
//! structured answer holds so far, as a value an app can show.
//!
//! A snapshot keeps every complete member and element, and a string value
//! cut mid-way (so text can be shown as it is typed); a number, literal or
//! key cut mid-way is left out until it is complete. Open objects and arrays
//! are closed.

use serde_json::Value;

/// The value `text` (a prefix of one JSON value) holds so far, and whether
/// it is complete. `None` while there is nothing to show yet.
pub fn snapshot(text: &str) -> Option<(Value, bool)> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Some((value, true));
    }
    let repaired = repair(text)?;
    serde_json::from_str::<Value>(&repaired).ok().map(|v| (v, false))
}

#[derive(Clone, Copy, PartialEq)]
enum Open {
    Object { expect_key: bool },
    Array,
}

fn closers(stack: &[Open]) -> String {
    stack.iter().rev().map(|o| if matches!(o, Open::Object { .. }) { '}' } else { ']' }).collect()
}

/// The longest prefix of `text` that parses once its open strings,
/// objects and arrays are closed, with those closers appended.
fn repair(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Open> = Vec::new();
    // The latest place where cutting leaves valid JSON (once closed).
    let mut best: Option<String> = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let is_key = matches!(stack.last(), Some(Open::Object { expect_key: true }));
                let Some(end) = string_end(bytes, i + 1) else {
                    // Cut inside this string: a value shows what it holds so far.
                    if is_key {
                        return best;
                    }
                    let mut body = &text[i + 1..];
                    // Drop a dangling escape (`\` or an unfinished `\uXXXX`).
                    if let Some(pos) = body.rfind('\\') {
                        let tail = &body[pos..];
                        let unfinished = tail.len() == 1 || (tail.starts_with("\\u") && tail.len() < 6);
                        if unfinished && !escaped_backslash(body.as_bytes(), pos) {
                            body = &body[..pos];
                        }
                    }
                    return Some(format!("{}\"{}\"{}", &text[..i], body, closers(&stack)));
                };
                i = end + 1;
                if is_key {
                    continue;
                }
                best = Some(format!("{}{}", &text[..i], closers(&stack)));
                continue;
            }
            b'{' => {
                stack.push(Open::Object { expect_key: true });
                best = Some(format!("{}{}", &text[..=i], closers(&stack)));
            }
            b'[' => {
                stack.push(Open::Array);
                best = Some(format!("{}{}", &text[..=i], closers(&stack)));
            }
            b'}' | b']' => {
                stack.pop();
                best = Some(format!("{}{}", &text[..=i], closers(&stack)));
            }
            b':' => {
                if let Some(Open::Object { expect_key }) = stack.last_mut() {
                    *expect_key = false;
                }
            }
            b',' => {
                if let Some(Open::Object { expect_key }) = stack.last_mut() {
                    *expect_key = true;
                }
            }
            b if b == b'-' || b.is_ascii_alphanumeric() => {
                let end = i + bytes[i..].iter().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')).count();
                if end == bytes.len() {
                    // A number or literal still being written.
                    return best;
                }
                best = Some(format!("{}{}", &text[..end], closers(&stack)));
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    best
}

/// Index of the quote closing a string whose body starts at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Whether the backslash at `pos` is itself escaped (preceded by an odd run of backslashes).
fn escaped_backslash(bytes: &[u8], pos: usize) -> bool {
    bytes[..pos].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap(text: &str) -> Option<Value> {
        snapshot(text).map(|(v, _)| v)
    }

    #[test]
    fn every_prefix_of_a_value_gives_a_growing_snapshot() {
        let full = r#"{"name": "Ada \"L\" \u00e9", "age": 36, "tags": ["a", "bc"], "ok": true, "pet": {"kind": "cat"}}"#;
        for end in 0..=full.len() {
            if !full.is_char_boundary(end) {
                continue;
            }
            if let Some((value, complete)) = snapshot(&full[..end]) {
                assert!(value.is_object(), "{end}: {value}");
                assert_eq!(complete, end == full.len());
            }
        }
        assert_eq!(snap(full).unwrap()["pet"]["kind"], "cat");
    }

    #[test]
    fn strings_show_as_typed_numbers_and_keys_wait() {
        assert_eq!(snap(r#"{"name": "Jo"#), Some(json!({"name": "Jo"})));
        assert_eq!(snap(r#"{"name": "Jo", "ag"#), Some(json!({"name": "Jo"})));
        assert_eq!(snap(r#"{"name": "Jo", "age": 4"#), Some(json!({"name": "Jo"})));
        assert_eq!(snap(r#"{"name": "Jo", "age": 42,"#), Some(json!({"name": "Jo", "age": 42})));
        assert_eq!(snap(r#"{"a": [1, 2, "x"#), Some(json!({"a": [1, 2, "x"]})));
        assert_eq!(snap(r#"{"a": "line\"#), Some(json!({"a": "line"})));
        assert_eq!(snap(r#"{"a": "\u00"#), Some(json!({"a": ""})));
        assert_eq!(snap(r#"{"a": tr"#), Some(json!({})));
        assert_eq!(snap("["), Some(json!([])));
        assert_eq!(snap(""), None);
        assert_eq!(snap("  "), None);
    }
}
