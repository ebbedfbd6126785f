//! Constrained decoding: the sampler that enforces a [`Constraint`] while
//! tokens are drawn, and exact scoring for a choice.
//!
//! JSON Schema, JSON objects and Lark grammars go through llguidance (the
//! pure-Rust engine llama.cpp can use; `docs/structured.md` says why it was
//! chosen); GBNF through llama.cpp's own grammar sampler. Either compiles the
//! constraint before the first token and refuses, with
//! [`Error::InvalidConstraint`], what it cannot enforce.

use std::time::Instant;

use llama_cpp_2::sampling::LlamaSampler;
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};

use super::model::Model;
use crate::constraint::Constraint;
use crate::error::{Error, Result};
use crate::tool::{call_schema, Tool, ToolChoice, ToolFormat};

/// llguidance's view of one model's vocabulary, built once per model (it
/// walks the whole vocabulary: tens to hundreds of milliseconds).
pub(crate) struct Engine {
    factory: ParserFactory,
}

impl Engine {
    fn new(model: &Model) -> Engine {
        let started = Instant::now();
        let tok_env = LlamaSampler::llguidance_tok_env(&model.inner.llama);
        let mut factory = ParserFactory::new_simple(&tok_env).expect("a simple parser factory over a valid vocabulary");
        factory.quiet();
        log::info!("constrained decoding ready for {} in {:.0} ms", model.path().display(), started.elapsed().as_secs_f64() * 1e3);
        Engine { factory }
    }
}

fn invalid(constraint: &Constraint, e: impl std::fmt::Display) -> Error {
    Error::InvalidConstraint { detail: format!("{} rejected: {e}", constraint.kind()) }
}

/// `schema` with JSON laid out on one line (`{"a": 1, "b": [2, 3]}`) unless
/// it sets its own `x-guidance` layout: with free whitespace a small model can
/// spend its whole token budget on newlines inside a value.
fn one_line(schema: &serde_json::Value) -> serde_json::Value {
    let layout = serde_json::json!({ "whitespace_flexible": false, "item_separator": ", ", "key_separator": ": " });
    match schema {
        serde_json::Value::Bool(true) => serde_json::json!({ "x-guidance": layout }),
        serde_json::Value::Object(map) if !map.contains_key("x-guidance") => {
            let mut map = map.clone();
            map.insert("x-guidance".into(), layout);
            serde_json::Value::Object(map)
        }
        other => other.clone(),
    }
}

/// The sampler enforcing `constraint` on `model`, to run first in the chain;
/// `None` for a [`Constraint::Choice`], which is scored instead of sampled.
pub(crate) fn sampler(model: &Model, constraint: &Constraint) -> Result<Option<LlamaSampler>> {
    constraint.validate()?;
    let grammar = match constraint {
        Constraint::Choice { .. } => return Ok(None),
        Constraint::Gbnf { grammar } => {
            if !grammar.contains("root") {
                return Err(invalid(constraint, "a GBNF grammar needs a `root` rule"));
            }
            // llama.cpp parses the grammar here and returns null (logging why) for one it cannot use.
            return LlamaSampler::grammar(&model.inner.llama, grammar, "root")
                .map(Some)
                .map_err(|e| invalid(constraint, format!("{e} (set the llama.cpp log level to warn to see the parser's message)")));
        }
        Constraint::JsonObject => TopLevelGrammar::from_json_schema(one_line(&serde_json::json!({"type": "object"}))),
        Constraint::JsonSchema { schema } => TopLevelGrammar::from_json_schema(one_line(schema)),
        Constraint::Lark { grammar } => TopLevelGrammar::from_lark(grammar.clone()),
    };
    compile(model, grammar).map(Some).map_err(|e| invalid(constraint, e))
}

fn compile(model: &Model, grammar: TopLevelGrammar) -> std::result::Result<LlamaSampler, String> {
    let engine = model.inner.constraints.get_or_init(|| Engine::new(model));
    let parser = engine.factory.create_parser(grammar).map_err(|e| e.to_string())?;
    Ok(Matcher::new(Ok(parser)).into())
}

/// The sampler for one tool call's JSON, started once the model opened a
/// call: optional leading whitespace, then `{"name": …, "arguments": …}`
/// (`"parameters"` for Llama 3) for one of the tools `choice` allows.
pub(crate) fn call_sampler(model: &Model, tools: &[Tool], choice: &ToolChoice, format: ToolFormat) -> Result<LlamaSampler> {
    let schema = one_line(&call_schema(tools, choice, format));
    let lark = format!("start: WS? call\nWS: /[ \\t\\n]+/\ncall: %json {schema}\n");
    compile(model, TopLevelGrammar::from_lark(lark))
        .map_err(|e| Error::InvalidConstraint { detail: format!("the tools' parameters cannot be enforced: {e}") })
}
