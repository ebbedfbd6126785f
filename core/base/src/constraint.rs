//! What an answer must look like, enforced while decoding: a JSON Schema, any
//! JSON object, a grammar, or one of a fixed set of strings. A constraint the
//! engine cannot enforce is refused with [`Error::InvalidConstraint`]; an
//! answer is never silently left unconstrained.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Most options of a [`Constraint::Choice`].
pub const MAX_CHOICES: usize = 256;
/// Longest option of a [`Constraint::Choice`], in bytes.
pub const MAX_CHOICE_BYTES: usize = 1024;
/// Largest schema or grammar accepted, in bytes of its text.
pub const MAX_CONSTRAINT_BYTES: usize = 256 << 10;

/// A constraint on one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Constraint {
    /// Any JSON object (OpenAI's `response_format: {"type": "json_object"}`).
    JsonObject,
    /// A JSON value valid against this JSON Schema.
    JsonSchema {
        /// The schema (draft 2020-12 keywords; see `docs/structured.md` for what is enforced).
        schema: serde_json::Value,
    },
    /// Exactly one of these strings (classification). The reply carries the
    /// probability the model gives each option.
    Choice {
        /// The options, distinct and non-empty.
        options: Vec<String>,
    },
    /// A grammar in llama.cpp's GBNF (its start rule is `root`).
    Gbnf {
        /// The grammar text.
        grammar: String,
    },
    /// A grammar in llguidance's Lark dialect (its start rule is `start`).
    Lark {
        /// The grammar text.
        grammar: String,
    },
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::InvalidConstraint { detail: detail.into() }
}

impl Constraint {
    /// A short name for logs and errors: `json_object`, `json_schema`, `choice`, `gbnf` or `lark`.
    pub fn kind(&self) -> &'static str {
        match self {
            Constraint::JsonObject => "json_object",
            Constraint::JsonSchema { .. } => "json_schema",
            Constraint::Choice { .. } => "choice",
            Constraint::Gbnf { .. } => "gbnf",
            Constraint::Lark { .. } => "lark",
        }
    }

    /// Whether the answer is JSON (and the reply carries the parsed value).
    pub fn is_json(&self) -> bool {
        matches!(self, Constraint::JsonObject | Constraint::JsonSchema { .. })
    }

    /// Checks what can be checked without a model: sizes, the shape of a
    /// choice, a schema that is an object or a boolean. The engine then
    /// compiles the schema or grammar and refuses what it cannot enforce.
    pub fn validate(&self) -> Result<()> {
        match self {
            Constraint::JsonObject => Ok(()),
            Constraint::JsonSchema { schema } => {
                if !(schema.is_object() || schema.is_boolean()) {
                    return Err(invalid(format!("a JSON Schema is an object or a boolean, not {}", type_name(schema))));
                }
                let size = serde_json::to_string(schema).map_or(usize::MAX, |s| s.len());
                if size > MAX_CONSTRAINT_BYTES {
                    return Err(invalid(format!("the schema is {size} bytes; at most {MAX_CONSTRAINT_BYTES} are accepted")));
                }
                Ok(())
            }
            Constraint::Choice { options } => {
                if options.is_empty() || options.len() > MAX_CHOICES {
                    return Err(invalid(format!("a choice needs 1 to {MAX_CHOICES} options, not {}", options.len())));
                }
                for (i, option) in options.iter().enumerate() {
                    if option.is_empty() {
                        return Err(invalid(format!("choice option {i} is empty")));
                    }
                    if option.len() > MAX_CHOICE_BYTES {
                        return Err(invalid(format!("choice option {i} is {} bytes; at most {MAX_CHOICE_BYTES}", option.len())));
                    }
                    if options[..i].contains(option) {
                        return Err(invalid(format!("choice option {option:?} appears twice")));
                    }
                }
                Ok(())
            }
            Constraint::Gbnf { grammar } | Constraint::Lark { grammar } => {
                if grammar.trim().is_empty() {
                    return Err(invalid(format!("the {} grammar is empty", self.kind())));
                }
                if grammar.len() > MAX_CONSTRAINT_BYTES {
                    return Err(invalid(format!("the grammar is {} bytes; at most {MAX_CONSTRAINT_BYTES}", grammar.len())));
                }
                if grammar.contains('\0') {
                    return Err(invalid("the grammar contains a NUL byte"));
                }
                Ok(())
            }
        }
    }
}

fn type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// What a constrained answer produced besides its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Structured {
    /// The parsed JSON value of a [`Constraint::JsonObject`] or [`Constraint::JsonSchema`] answer.
    Json {
        /// The value.
        value: serde_json::Value,
    },
    /// The option a [`Constraint::Choice`] answer chose, and the probability
    /// the model gives each option (normalised over the options, in their order).
    Choice {
        /// Index of the chosen option.
        index: usize,
        /// One probability per option, summing to 1.
        probabilities: Vec<f64>,
    },
}

/// Probabilities from log-probabilities: a softmax over the options.
pub fn normalise(log_probs: &[f64]) -> Vec<f64> {
    let max = log_probs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return vec![1.0 / log_probs.len().max(1) as f64; log_probs.len()];
    }
    let exp: Vec<f64> = log_probs.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_constraints_are_refused_with_what_is_wrong() {
        let schema = |s: &str| Constraint::JsonSchema { schema: serde_json::from_str(s).unwrap() };
        assert!(schema(r#"{"type":"object"}"#).validate().is_ok());
        assert!(schema("true").validate().is_ok());
        let e = schema("[1]").validate().unwrap_err();
        assert!(e.to_string().contains("not an array"), "{e}");
        let choice = |o: &[&str]| Constraint::Choice { options: o.iter().map(|s| s.to_string()).collect() };
        assert!(choice(&["yes", "no"]).validate().is_ok());
        assert!(choice(&[]).validate().is_err());
        assert!(choice(&["a", ""]).validate().unwrap_err().to_string().contains("option 1 is empty"));
        assert!(choice(&["a", "a"]).validate().unwrap_err().to_string().contains("twice"));
        assert!(Constraint::Gbnf { grammar: " ".into() }.validate().is_err());
        assert!(Constraint::Lark { grammar: "start: \"a\0\"".into() }.validate().is_err());
    }

    #[test]
    fn option_probabilities_sum_to_one() {
        let p = normalise(&[-1.0, -2.0, -3.0]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(p[0] > p[1] && p[1] > p[2]);
        assert_eq!(normalise(&[f64::NEG_INFINITY, f64::NEG_INFINITY]), vec![0.5, 0.5]);
    }
}
