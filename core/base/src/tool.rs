//! Tool calling: tools an app declares, the calls a model makes, and how
//! each model family writes them.
//!
//! Tools go to the model through its own chat template (the `tools`
//! variable, Hugging Face's convention). Calls are written per family:
//!
//! - [`ToolFormat::Hermes`] (Qwen 2.5/3, Hermes, ChatML templates with tools):
//!   `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`, several per answer;
//! - [`ToolFormat::Llama3`] (Llama 3.1–3.3 JSON calls): the answer is
//!   `{"name": …, "parameters": {…}}`, one call;
//! - [`ToolFormat::Generic`], for templates without tool support (Gemma 3,
//!   Phi): PocketLM describes the tools in the system prompt and asks for the
//!   Hermes form; tool results go back as user turns in `<tool_response>`.
//!
//! The engine constrains a call's JSON from the moment the model opens it
//! (see `docs/structured.md`), so free text stays free and calls always parse.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Most tools one request may declare.
pub const MAX_TOOLS: usize = 128;
/// Longest tool name, in bytes.
pub const MAX_TOOL_NAME: usize = 64;

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Its name: letters, digits, `_`, `-` or `.`, at most 64 bytes.
    pub name: String,
    /// What it does and when to use it (the model reads this).
    #[serde(default)]
    pub description: String,
    /// A JSON Schema for its arguments (an object schema).
    #[serde(default = "empty_object_schema")]
    pub parameters: Value,
}

fn empty_object_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

impl Tool {
    /// A tool with a JSON Schema for its arguments.
    pub fn new(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Tool {
        Tool { name: name.into(), description: description.into(), parameters }
    }

    /// The OpenAI / Hugging Face form: `{"type": "function", "function": {…}}`.
    pub fn to_openai(&self) -> Value {
        json!({"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.parameters}})
    }

    /// Reads the OpenAI form (or the bare function object).
    pub fn from_openai(value: &Value) -> Result<Tool> {
        let function = value.get("function").unwrap_or(value);
        serde_json::from_value(function.clone()).map_err(|e| {
            invalid(format!("a tool must be {{\"type\": \"function\", \"function\": {{\"name\", \"description\", \"parameters\"}}}}: {e}"))
        })
    }
}

/// One call the model made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// An id for matching the result to the call (`call_…`).
    pub id: String,
    /// The tool's name (always one of the declared tools for a local answer).
    pub name: String,
    /// The arguments, a JSON object valid against the tool's parameters.
    pub arguments: Value,
}

impl ToolCall {
    /// The OpenAI form: `{"id", "type": "function", "function": {"name", "arguments"}}`
    /// with `arguments` a JSON object (templates) or, with `arguments_as_string`, its text (the wire).
    pub fn to_openai(&self, arguments_as_string: bool) -> Value {
        let arguments = if arguments_as_string { Value::String(self.arguments.to_string()) } else { self.arguments.clone() };
        json!({"id": self.id, "type": "function", "function": {"name": self.name, "arguments": arguments}})
    }
}

/// What the app's handler made of one call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The call's id.
    pub call_id: String,
    /// The tool's name.
    pub name: String,
    /// The result the model reads (usually JSON text), or the error's text.
    pub content: String,
    /// Whether the handler failed (the model is told so and may try again or answer).
    #[serde(default)]
    pub is_error: bool,
}

/// Whether and which tools the model must call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides: text, or one or more calls (the default).
    #[default]
    Auto,
    /// No calls: the tools are not shown to the model.
    None,
    /// At least one call, to any tool.
    Required,
    /// A call to this tool.
    Tool(String),
}

impl ToolChoice {
    /// OpenAI's `tool_choice`: `"auto"`, `"none"`, `"required"` or
    /// `{"type": "function", "function": {"name"}}`.
    pub fn to_openai(&self) -> Value {
        match self {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        }
    }

    /// Reads OpenAI's `tool_choice` (see [`ToolChoice::to_openai`]).
    pub fn from_openai(value: &Value) -> Result<ToolChoice> {
        match value {
            Value::String(s) if s == "auto" => Ok(ToolChoice::Auto),
            Value::String(s) if s == "none" => Ok(ToolChoice::None),
            Value::String(s) if s == "required" => Ok(ToolChoice::Required),
            other => match other.pointer("/function/name").and_then(Value::as_str) {
                Some(name) => Ok(ToolChoice::Tool(name.to_string())),
                None => Err(Error::InvalidConstraint {
                    detail: format!(
                        "tool_choice {other} is not \"auto\", \"none\", \"required\" or {{\"type\": \"function\", \"function\": {{\"name\": …}}}}"
                    ),
                }),
            },
        }
    }
}

/// How a model family writes tool calls (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolFormat {
    /// `<tool_call>{"name", "arguments"}</tool_call>` through the model's template.
    Hermes,
    /// A bare `{"name", "parameters"}` answer through the model's template.
    Llama3,
    /// PocketLM's convention for templates without tools (Hermes tags, tools in the system prompt).
    Generic,
}

/// Opens a Hermes or generic call.
pub const CALL_OPEN: &str = "<tool_call>";
/// Closes a Hermes or generic call.
pub const CALL_CLOSE: &str = "</tool_call>";

impl ToolFormat {
    /// Picks the format from the template's source and a render with a probe
    /// tool (`rendered_probe`, `None` if rendering with tools failed).
    pub fn detect(template_source: &str, rendered_probe: Option<&str>) -> ToolFormat {
        let native = rendered_probe.is_some_and(|r| r.contains(PROBE_TOOL));
        if !native {
            ToolFormat::Generic
        } else if template_source.contains(CALL_OPEN) {
            ToolFormat::Hermes
        } else if template_source.contains("<|python_tag|>") || template_source.contains("\"parameters\": ") {
            ToolFormat::Llama3
        } else {
            ToolFormat::Generic
        }
    }

    /// The key a call's arguments go under.
    pub fn arguments_key(self) -> &'static str {
        match self {
            ToolFormat::Llama3 => "parameters",
            _ => "arguments",
        }
    }

    /// Text the model writes before a call's JSON (`None`: the call is the whole answer).
    pub fn opener(self) -> Option<&'static str> {
        match self {
            ToolFormat::Llama3 => None,
            _ => Some(CALL_OPEN),
        }
    }

    /// Text written after a call's JSON, so the history reads as the family expects.
    pub fn closer(self) -> &'static str {
        match self {
            ToolFormat::Llama3 => "",
            _ => "\n</tool_call>",
        }
    }

    /// Whether one answer may hold several calls.
    pub fn parallel(self) -> bool {
        self != ToolFormat::Llama3
    }
}

/// The name of the tool used to detect whether a template renders tools.
pub const PROBE_TOOL: &str = "pocketlm_probe_tool_7f3a";

/// The probe tool [`ToolFormat::detect`] looks for.
pub fn probe_tool() -> Tool {
    Tool::new(PROBE_TOOL, "probe", empty_object_schema())
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::InvalidConstraint { detail: detail.into() }
}

/// Checks declared tools and the choice: names well-formed and distinct,
/// parameters an object schema, a named choice among the tools.
pub fn validate(tools: &[Tool], choice: &ToolChoice) -> Result<()> {
    if tools.len() > MAX_TOOLS {
        return Err(invalid(format!("{} tools declared; at most {MAX_TOOLS}", tools.len())));
    }
    for (i, tool) in tools.iter().enumerate() {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if tool.name.is_empty() || tool.name.len() > MAX_TOOL_NAME || !tool.name.chars().all(ok_char) {
            return Err(invalid(format!("tool name {:?} must be 1 to {MAX_TOOL_NAME} letters, digits, '_', '-' or '.'", tool.name)));
        }
        if tools[..i].iter().any(|t| t.name == tool.name) {
            return Err(invalid(format!("tool {:?} is declared twice", tool.name)));
        }
        let object = tool.parameters.as_object();
        if object.is_none_or(|o| o.get("type").is_some_and(|t| t != "object")) {
            return Err(invalid(format!("the parameters of tool {:?} must be a JSON Schema of type \"object\"", tool.name)));
        }
        if tool.description.len() > crate::constraint::MAX_CONSTRAINT_BYTES {
            return Err(invalid(format!("the description of tool {:?} is too long", tool.name)));
        }
    }
    match choice {
        ToolChoice::Required if tools.is_empty() => Err(invalid("tool_choice is required but no tools are declared")),
        ToolChoice::Tool(name) if !tools.iter().any(|t| &t.name == name) => {
            Err(invalid(format!("tool_choice names {name:?}, which is not among the declared tools")))
        }
        _ => Ok(()),
    }
}

/// The JSON Schema of one call's JSON in `format`, for the tools `choice` allows.
pub fn call_schema(tools: &[Tool], choice: &ToolChoice, format: ToolFormat) -> Value {
    let key = format.arguments_key();
    let variants: Vec<Value> = tools
        .iter()
        .filter(|t| !matches!(choice, ToolChoice::Tool(name) if name != &t.name))
        .map(|t| {
            json!({
                "type": "object",
                "properties": {"name": {"const": t.name}, key: t.parameters},
                "required": ["name", key],
                "additionalProperties": false
            })
        })
        .collect();
    if variants.len() == 1 {
        variants.into_iter().next().unwrap_or(Value::Null)
    } else {
        json!({"anyOf": variants})
    }
}

/// Reads one call's JSON: the tool must be declared and the arguments an
/// object. `id` names the call.
pub fn parse_call(json_text: &str, tools: &[Tool], id: String) -> Result<ToolCall> {
    let bad = |detail: String| Error::ToolCallInvalid { name: String::new(), detail };
    let value: Value = serde_json::from_str(json_text.trim()).map_err(|e| bad(format!("the call is not JSON: {e}")))?;
    let name = value.get("name").and_then(Value::as_str).ok_or_else(|| bad("the call has no \"name\"".into()))?;
    let arguments = value.get("arguments").or_else(|| value.get("parameters")).cloned().unwrap_or_else(|| json!({}));
    check_call(&ToolCall { id, name: name.to_string(), arguments }, tools)
}

/// Checks a call against the declared tools: a known name, object
/// arguments holding every required parameter. Cloud answers go through it too.
pub fn check_call(call: &ToolCall, tools: &[Tool]) -> Result<ToolCall> {
    let bad = |detail: String| Error::ToolCallInvalid { name: call.name.clone(), detail };
    let Some(tool) = tools.iter().find(|t| t.name == call.name) else {
        return Err(bad(format!("the model called {:?}, which is not a declared tool", call.name)));
    };
    let Some(arguments) = call.arguments.as_object() else {
        return Err(bad("the arguments are not a JSON object".into()));
    };
    if let Some(required) = tool.parameters.get("required").and_then(Value::as_array) {
        if let Some(missing) = required.iter().filter_map(Value::as_str).find(|k| !arguments.contains_key(*k)) {
            return Err(bad(format!("the required argument {missing:?} is missing")));
        }
    }
    Ok(call.clone())
}

/// Checks that `results` answer the tool calls of the last message of
/// `messages` (an assistant's calls), exactly one result per call.
pub fn check_results(messages: &[crate::template::Message], results: &[ToolResult]) -> Result<()> {
    let pending = match messages.last() {
        Some(m) if m.role == crate::template::Role::Assistant && !m.tool_calls.is_empty() => &m.tool_calls,
        _ => {
            return Err(Error::InvalidOption {
                name: "tool_results",
                value: format!("{} results", results.len()),
                expected: "the last answer must have made tool calls".into(),
            })
        }
    };
    let mut ids: Vec<&str> = results.iter().map(|r| r.call_id.as_str()).collect();
    ids.sort_unstable();
    let mut wanted: Vec<&str> = pending.iter().map(|c| c.id.as_str()).collect();
    wanted.sort_unstable();
    if ids != wanted {
        return Err(Error::InvalidOption {
            name: "tool_results",
            value: ids.join(", "),
            expected: format!("one result for each call: {}", wanted.join(", ")),
        });
    }
    Ok(())
}

/// The system-prompt text that describes tools to a model whose template
/// cannot ([`ToolFormat::Generic`]).
pub fn generic_instructions(tools: &[Tool]) -> String {
    let mut text = String::from(
        "You can call the tools below. To call one, answer with only\n<tool_call>\n{\"name\": <tool name>, \"arguments\": <arguments as a JSON object>}\n</tool_call>\n(one block per call). If no tool is needed, answer normally.\n\nTools:\n",
    );
    for tool in tools {
        text.push_str(&json!({"name": tool.name, "description": tool.description, "parameters": tool.parameters}).to_string());
        text.push('\n');
    }
    text
}

/// A tool result as a user turn, for templates without a `tool` role.
pub fn generic_result(content: &str) -> String {
    format!("<tool_response>\n{content}\n</tool_response>")
}

/// A call as the assistant's text, for templates without tool calls.
pub fn generic_call(call: &ToolCall) -> String {
    format!("{CALL_OPEN}\n{}{}", json!({"name": call.name, "arguments": call.arguments}), ToolFormat::Generic.closer())
}

/// A fresh call id: `call_` and 12 hex digits (unique within a process).
pub fn new_call_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed = (crate::sampling::random_seed() as u64) << 16 ^ n;
    format!("call_{:012x}", mixed & 0xffff_ffff_ffff)
}

/// Splits streamed answer text into what is shown and the calls' JSON.
///
/// In free text it holds back anything that could be the start of a call
/// opener, so markup is never shown; once the opener is complete it reports
/// the text that followed it in the same piece, and the engine takes over
/// (it constrains the call's JSON, then calls [`CallScanner::end_call`]).
#[derive(Debug, Clone)]
pub struct CallScanner {
    format: ToolFormat,
    held: String,
    in_call: bool,
    /// Whether anything but whitespace was shown yet (a Llama 3 call must come first).
    started: bool,
    /// Whether the open call started as a Markdown code block.
    fenced: bool,
}

/// What one piece of text became.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ScanStep {
    /// Text to show.
    pub text: String,
    /// A call was opened; this is the text after the opener (the start of its JSON).
    pub call_opened: Option<String>,
}

impl CallScanner {
    /// A scanner for answers in `format`; `in_call` when the prompt already opened a call.
    pub fn new(format: ToolFormat, in_call: bool) -> CallScanner {
        CallScanner { format, held: String::new(), in_call, started: false, fenced: false }
    }

    /// Whether a call's JSON is being written.
    pub fn in_call(&self) -> bool {
        self.in_call
    }

    /// Back to free text after a call.
    pub fn end_call(&mut self) {
        self.in_call = false;
        self.started = true;
        self.fenced = false;
    }

    /// What the engine writes after the open call's JSON (the family's
    /// closing tag, or the end of a code block the call started).
    pub fn closer(&self) -> &'static str {
        if self.fenced {
            "\n```"
        } else {
            self.format.closer()
        }
    }

    /// A call written as the whole answer instead of in tags: `{"name": …}`
    /// or a ```json code block holding it (small models often do this).
    /// `None` if undecided yet, `Some(None)` if it is not one.
    fn bare_call(&mut self) -> Option<Option<String>> {
        let text = self.held.trim_start();
        let after_fence = text.strip_prefix("```json").or_else(|| text.strip_prefix("```")).map(str::trim_start);
        let body = after_fence.unwrap_or(text);
        if text.is_empty() || (body.is_empty() && after_fence.is_some()) || ("```json".starts_with(text) && text.len() < 7) {
            return None;
        }
        if body.starts_with('{') {
            self.fenced = after_fence.is_some();
            return Some(Some(body.to_string()));
        }
        Some(None)
    }

    /// Feeds a piece of free text (not called while [`CallScanner::in_call`]).
    pub fn push(&mut self, piece: &str) -> ScanStep {
        self.held.push_str(piece);
        match self.format.opener() {
            Some(opener) => {
                if !self.started && !opener.starts_with(self.held.trim_start()) {
                    match self.bare_call() {
                        None => return ScanStep::default(),
                        Some(Some(rest)) => {
                            self.in_call = true;
                            self.started = true;
                            self.held.clear();
                            return ScanStep { text: String::new(), call_opened: Some(rest) };
                        }
                        Some(None) => self.started = true,
                    }
                }
                if let Some(at) = self.held.find(opener) {
                    let rest = self.held.split_off(at + opener.len());
                    self.held.truncate(at);
                    self.in_call = true;
                    return ScanStep { text: std::mem::take(&mut self.held), call_opened: Some(rest) };
                }
                let keep = longest_suffix_prefix(&self.held, opener);
                let text = self.held[..self.held.len() - keep].to_string();
                self.held.drain(..self.held.len() - keep);
                ScanStep { text, call_opened: None }
            }
            None => {
                if self.started {
                    return ScanStep { text: std::mem::take(&mut self.held), call_opened: None };
                }
                let trimmed = self.held.trim_start();
                const TAG: &str = "<|python_tag|>";
                if trimmed.is_empty() || (TAG.starts_with(trimmed) && trimmed.len() < TAG.len()) {
                    return ScanStep::default();
                }
                self.started = true;
                if let Some(rest) = trimmed.strip_prefix(TAG) {
                    self.in_call = true;
                    let rest = rest.to_string();
                    self.held.clear();
                    return ScanStep { text: String::new(), call_opened: Some(rest) };
                }
                if trimmed.starts_with('{') {
                    self.in_call = true;
                    let rest = trimmed.to_string();
                    self.held.clear();
                    return ScanStep { text: String::new(), call_opened: Some(rest) };
                }
                ScanStep { text: std::mem::take(&mut self.held), call_opened: None }
            }
        }
    }

    /// The text still held back when the answer ends (it was no call after all).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `pattern`.
fn longest_suffix_prefix(text: &str, pattern: &str) -> usize {
    (1..pattern.len().min(text.len() + 1))
        .rev()
        .find(|&n| text.is_char_boundary(text.len() - n) && pattern.starts_with(&text[text.len() - n..]))
        .unwrap_or(0)
}

/// `text` (the start of a JSON value) without whitespace outside strings:
/// what a one-line call grammar is advanced by when the model wrote the
/// start of a call in its own layout.
pub fn compact_json_prefix(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if c == '"' {
            in_string = true;
        } else if c.is_whitespace() {
            continue;
        }
        out.push(c);
    }
    out
}

/// Whether a call's JSON is complete (one whole value).
pub fn call_complete(json_text: &str) -> bool {
    serde_json::from_str::<Value>(json_text.trim()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> Tool {
        Tool::new(
            "get_weather",
            "Current weather",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        )
    }

    #[test]
    fn declarations_are_checked() {
        assert!(validate(&[weather()], &ToolChoice::Auto).is_ok());
        assert!(validate(&[weather(), weather()], &ToolChoice::Auto).unwrap_err().to_string().contains("twice"));
        let bad = Tool::new("get weather", "", json!({"type": "object"}));
        assert!(validate(&[bad], &ToolChoice::Auto).unwrap_err().to_string().contains("letters"));
        let not_object = Tool::new("f", "", json!({"type": "string"}));
        assert!(validate(&[not_object], &ToolChoice::Auto).is_err());
        assert!(validate(&[], &ToolChoice::Required).is_err());
        assert!(validate(&[weather()], &ToolChoice::Tool("nope".into())).unwrap_err().to_string().contains("nope"));
    }

    #[test]
    fn calls_are_parsed_and_checked() {
        let call = parse_call(r#"{"name": "get_weather", "arguments": {"city": "Paris"}}"#, &[weather()], "c1".into()).unwrap();
        assert_eq!(call.arguments["city"], "Paris");
        let llama = parse_call(r#"{"name": "get_weather", "parameters": {"city": "Rome"}}"#, &[weather()], "c2".into()).unwrap();
        assert_eq!(llama.arguments["city"], "Rome");
        let unknown = parse_call(r#"{"name": "launch", "arguments": {}}"#, &[weather()], "c3".into()).unwrap_err();
        assert!(matches!(unknown, Error::ToolCallInvalid { ref name, .. } if name == "launch"), "{unknown}");
        let missing = parse_call(r#"{"name": "get_weather", "arguments": {}}"#, &[weather()], "c4".into()).unwrap_err();
        assert!(missing.to_string().contains("city"));
        assert!(parse_call("{\"name\": ", &[weather()], "c5".into()).is_err());
    }

    #[test]
    fn the_scanner_hides_call_markup_split_anywhere() {
        let answer = "Let me check.<tool_call>\n{\"name\": \"x\"}";
        for cut in 1..answer.len() {
            let mut s = CallScanner::new(ToolFormat::Hermes, false);
            let a = s.push(&answer[..cut]);
            let b = if a.call_opened.is_some() { ScanStep::default() } else { s.push(&answer[cut..]) };
            let opened = a.call_opened.or(b.call_opened).unwrap();
            assert_eq!(format!("{}{}", a.text, b.text), "Let me check.");
            assert!(opened.starts_with('\n') || cut >= "Let me check.<tool_call>".len(), "{cut}: {opened:?}");
        }
        let mut s = CallScanner::new(ToolFormat::Hermes, false);
        assert_eq!(s.push("a <tool").text, "a ");
        assert_eq!(s.push(" b").text, "<tool b");
    }

    #[test]
    fn a_bare_or_fenced_call_at_the_start_is_a_call() {
        let mut s = CallScanner::new(ToolFormat::Hermes, false);
        assert_eq!(s.push("``"), ScanStep::default());
        assert_eq!(s.push("`json\n"), ScanStep::default());
        assert_eq!(s.push("{\n  \"na").call_opened.as_deref(), Some("{\n  \"na"));
        assert_eq!(s.closer(), "\n```");
        let mut s = CallScanner::new(ToolFormat::Hermes, false);
        assert_eq!(s.push("Sure: {").text, "Sure: {");
        assert_eq!(compact_json_prefix("{\n  \"a b\": \"c\\\" d\""), "{\"a b\":\"c\\\" d\"");
    }

    #[test]
    fn llama3_calls_are_the_whole_answer() {
        let mut s = CallScanner::new(ToolFormat::Llama3, false);
        assert_eq!(s.push(" "), ScanStep::default());
        assert_eq!(s.push("{\"na").call_opened.as_deref(), Some("{\"na"));
        let mut s = CallScanner::new(ToolFormat::Llama3, false);
        assert_eq!(s.push("Paris is").text, "Paris is");
        assert_eq!(s.push(" {").text, " {");
    }

    #[test]
    fn formats_are_detected_from_the_template() {
        assert_eq!(ToolFormat::detect("{{ '<tool_call>' }}", Some(PROBE_TOOL)), ToolFormat::Hermes);
        assert_eq!(ToolFormat::detect("<|python_tag|>", Some(PROBE_TOOL)), ToolFormat::Llama3);
        assert_eq!(ToolFormat::detect("<tool_call>", Some("no tools here")), ToolFormat::Generic);
        assert_eq!(ToolFormat::detect("", None), ToolFormat::Generic);
    }

    #[test]
    fn the_call_schema_names_only_allowed_tools() {
        let other = Tool::new("other", "", json!({"type": "object"}));
        let all = call_schema(&[weather(), other.clone()], &ToolChoice::Auto, ToolFormat::Hermes);
        assert_eq!(all["anyOf"].as_array().unwrap().len(), 2);
        let one = call_schema(&[weather(), other], &ToolChoice::Tool("other".into()), ToolFormat::Llama3);
        assert_eq!(one["properties"]["name"]["const"], "other");
        assert!(one["properties"].get("parameters").is_some());
    }
}
