//! Structured output and tools at the FFI: constraints, tool declarations,
//! calls and results. JSON crosses as text (Kotlin's kotlinx.serialization
//! and Swift's Codable read and write it); the core parses and checks it.

use pocketlm::{Constraint, Structured};

use crate::convert::saturating_i32;

/// What an answer must look like, enforced while decoding.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum OutputConstraint {
    /// JSON valid against this JSON Schema (the schema as JSON text).
    JsonSchema { schema_json: String },
    /// Any JSON object.
    JsonObject,
    /// Exactly one of these strings; the reply carries each one's probability.
    Choice { options: Vec<String> },
    /// A llama.cpp GBNF grammar (start rule `root`).
    Gbnf { grammar: String },
    /// An llguidance Lark grammar (start rule `start`).
    Lark { grammar: String },
}

impl TryFrom<OutputConstraint> for Constraint {
    type Error = pocketlm::Error;
    fn try_from(c: OutputConstraint) -> pocketlm::Result<Self> {
        Ok(match c {
            OutputConstraint::JsonSchema { schema_json } => Constraint::JsonSchema { schema: parse_json("schema_json", &schema_json)? },
            OutputConstraint::JsonObject => Constraint::JsonObject,
            OutputConstraint::Choice { options } => Constraint::Choice { options },
            OutputConstraint::Gbnf { grammar } => Constraint::Gbnf { grammar },
            OutputConstraint::Lark { grammar } => Constraint::Lark { grammar },
        })
    }
}

fn parse_json(what: &str, text: &str) -> pocketlm::Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| pocketlm::Error::InvalidConstraint { detail: format!("{what} is not valid JSON: {e}") })
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ToolSpec {
    /// Letters, digits, `_`, `-` or `.`; at most 64 bytes.
    pub name: String,
    /// What it does (the model reads this).
    pub description: String,
    /// A JSON Schema (object) for its arguments, as JSON text.
    pub parameters_json: String,
}

/// Whether and which tools must be called.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No calls.
    None,
    /// At least one call.
    Required,
    /// A call to this tool.
    Tool { name: String },
}

/// A call the model made.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ToolCall {
    /// Matches the result to the call.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, a JSON object as text (valid against the tool's parameters).
    pub arguments_json: String,
}

impl From<&pocketlm::ToolCall> for ToolCall {
    fn from(c: &pocketlm::ToolCall) -> Self {
        ToolCall { id: c.id.clone(), name: c.name.clone(), arguments_json: c.arguments.to_string() }
    }
}

/// A tool's result, sent back to the model.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ToolResult {
    /// The call's id.
    pub call_id: String,
    /// The tool's name.
    pub name: String,
    /// What the model reads (usually JSON text), or the error's text.
    pub content: String,
    /// Whether the tool failed.
    pub is_error: bool,
}

impl From<ToolResult> for pocketlm::ToolResult {
    fn from(r: ToolResult) -> Self {
        pocketlm::ToolResult { call_id: r.call_id, name: r.name, content: r.content, is_error: r.is_error }
    }
}

/// Per-request options for structured output and tools.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RequestOptions {
    /// What the answer must look like (`None`: free text).
    pub constraint: Option<OutputConstraint>,
    /// Tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Whether and which tools must be called.
    pub tool_choice: ToolChoice,
}

/// [`RequestOptions`] parsed into the core's types.
pub(crate) type ParsedOptions = (Option<Constraint>, Vec<pocketlm::Tool>, pocketlm::ToolChoice);

impl RequestOptions {
    /// The constraint, tools and tool choice, parsing every piece of JSON first.
    pub(crate) fn parse(self) -> pocketlm::Result<ParsedOptions> {
        let constraint = self.constraint.map(Constraint::try_from).transpose()?;
        let tools = self
            .tools
            .into_iter()
            .map(|t| Ok(pocketlm::Tool::new(t.name, t.description, parse_json("parameters_json", &t.parameters_json)?)))
            .collect::<pocketlm::Result<_>>()?;
        let tool_choice = match self.tool_choice {
            ToolChoice::Auto => pocketlm::ToolChoice::Auto,
            ToolChoice::None => pocketlm::ToolChoice::None,
            ToolChoice::Required => pocketlm::ToolChoice::Required,
            ToolChoice::Tool { name } => pocketlm::ToolChoice::Tool(name),
        };
        Ok((constraint, tools, tool_choice))
    }

    /// Fills `options` from these, parsing every piece of JSON first.
    pub(crate) fn apply(self, options: &mut pocketlm::SendOptions) -> pocketlm::Result<()> {
        (options.constraint, options.tools, options.tool_choice) = self.parse()?;
        Ok(())
    }
}

/// What a constrained answer produced besides its text.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum StructuredValue {
    /// The parsed JSON value, as compact JSON text.
    Json { json: String },
    /// The chosen option and every option's probability (in their order).
    Choice { index: i32, probabilities: Vec<f64> },
}

impl From<Structured> for StructuredValue {
    fn from(s: Structured) -> Self {
        match s {
            Structured::Json { value } => StructuredValue::Json { json: value.to_string() },
            Structured::Choice { index, probabilities } => StructuredValue::Choice { index: saturating_i32(index as u32), probabilities },
        }
    }
}
