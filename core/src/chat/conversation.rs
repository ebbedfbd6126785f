//! A multi-turn chat on one model: messages, streaming answers, KV reuse.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::event::ChatEvent;
use super::metrics::{Metrics, StopReason};
use crate::cancel::CancelToken;
use crate::confidence::{is_content, Confidence, ConfidenceOptions, ConfidenceTracker};
use crate::constraint::{normalise, Constraint, Structured};
use crate::engine::{
    call_sampler, constraint_sampler, default_threads, peak_rss_bytes, ConstraintSampler, LoraAdapter, Model, Prefill, Projector,
    PromptPart, PromptSegment, Sampler, Session, SessionParams, Token,
};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::partial;
use crate::plan::KvType;
use crate::probe::AnswerFeatures;
use crate::sampling::{random_seed, SamplingParams};
use crate::stream::TextStream;
use crate::template::{Message, Role};
use crate::tool::{self, call_complete, compact_json_prefix, new_call_id, parse_call, CallScanner, Tool, ToolCall, ToolChoice, ToolResult};

/// Context length used when none is given (capped by what the model was trained on).
pub const DEFAULT_CONTEXT_LENGTH: u32 = 4096;

/// What to do when a prompt does not fit in the context window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// Fail with [`Error::ContextOverflow`] (the default).
    #[default]
    Error,
    /// Drop the oldest turns (never the system prompt or the newest message) until it fits.
    DropOldest,
}

/// What happens to a cancelled answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartialAnswer {
    /// Keep the user message and the partial answer in the history (the default).
    #[default]
    Keep,
    /// Roll the turn back: the history is as it was before the message was sent.
    Discard,
}

/// Settings for a conversation, fixed when it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConversationOptions {
    /// Context window in tokens; `None` uses [`DEFAULT_CONTEXT_LENGTH`] capped by the model's trained length.
    pub context_length: Option<u32>,
    /// Inference threads; `None` uses [`default_threads`].
    pub threads: Option<u32>,
    /// Tokens evaluated per prompt batch.
    pub batch_size: u32,
    /// An optional system prompt, kept as the first message.
    pub system_prompt: Option<String>,
    /// Sampling for every answer.
    pub sampling: SamplingParams,
    /// What to do when the history outgrows the context.
    pub overflow: OverflowPolicy,
    /// KV cache element type (f16, or q8_0/q4_0 to save memory).
    pub kv_type: KvType,
    /// Keep the whole context in sliding-window layers too (Gemma 3): more
    /// memory, but KV reuse beyond the window. Off by default.
    pub full_swa_cache: bool,
    /// Keep the final hidden states of each answer ([`Reply::features`]), what
    /// a router probe reads. Costs a copy of one state per token.
    pub hidden_states: bool,
}

impl Default for ConversationOptions {
    fn default() -> Self {
        ConversationOptions {
            context_length: None,
            threads: None,
            batch_size: 512,
            system_prompt: None,
            sampling: SamplingParams::default(),
            overflow: OverflowPolicy::Error,
            kv_type: KvType::F16,
            full_swa_cache: false,
            hidden_states: false,
        }
    }
}

/// Per-request options for [`Conversation::send`].
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Cancels this request when triggered from any thread.
    pub cancel: CancelToken,
    /// What to keep when cancelled.
    pub on_cancel: PartialAnswer,
    /// Gather confidence signals (reported in the metrics) and, with a
    /// threshold, stop with [`StopReason::LowConfidence`] as soon as the score drops.
    pub confidence: Option<ConfidenceOptions>,
    /// Stop with [`StopReason::Deadline`] when this instant passes.
    pub deadline: Option<Instant>,
    /// What the answer must look like (a JSON Schema, any JSON object, a
    /// grammar, or one of fixed strings), enforced while decoding. A
    /// constraint that cannot be enforced is [`Error::InvalidConstraint`].
    pub constraint: Option<Constraint>,
    /// Tools the model may call (see [`Reply::tool_calls`] and
    /// [`Conversation::respond_with_tools`]); rendered through the model's own template.
    pub tools: Vec<Tool>,
    /// Whether and which tools must be called.
    pub tool_choice: ToolChoice,
    /// Most rounds of calls [`Conversation::respond_with_tools`] runs before
    /// giving up with [`Error::ToolRoundsExceeded`] (`None`: 4).
    pub max_tool_rounds: Option<u32>,
}

/// A finished answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The answer text (stop sequences removed).
    pub text: String,
    /// What it cost.
    pub metrics: Metrics,
    /// The parsed value (JSON) or the chosen option with every option's
    /// probability, for an answer under a [`SendOptions::constraint`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<Structured>,
    /// The tools the model called (in order). The app runs them and answers
    /// with [`Conversation::send_tool_results`], or lets
    /// [`Conversation::respond_with_tools`] do both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// What a router probe reads (hidden states and logit signals), when the
    /// conversation keeps hidden states ([`ConversationOptions::hidden_states`]).
    #[serde(skip)]
    pub features: Option<AnswerFeatures>,
}

/// A multi-turn chat with its own context and KV cache.
///
/// Each turn evaluates only the tokens that are new since what the cache
/// already holds. A conversation is used from one thread at a time (`&mut`);
/// create one per concurrent user of the same [`Model`].
pub struct Conversation {
    pub(super) session: Session,
    pub(super) options: ConversationOptions,
    pub(super) messages: Vec<Message>,
    fail_decode_after: Option<u32>,
    answer_prefix: Option<String>,
    projector: Option<Projector>,
}

impl std::fmt::Debug for Conversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversation").field("messages", &self.messages).field("options", &self.options).finish()
    }
}

impl Conversation {
    /// Starts a conversation on `model` (every loaded model can chat:
    /// [`Model::load`] refuses the architectures that cannot).
    pub fn new(model: &Model, options: ConversationOptions) -> Result<Conversation> {
        options.sampling.validate()?;
        let trained = model.info().context_length_trained;
        let context_length = options.context_length.unwrap_or_else(|| {
            if trained > 0 {
                DEFAULT_CONTEXT_LENGTH.min(trained.min(u64::from(u32::MAX)) as u32)
            } else {
                DEFAULT_CONTEXT_LENGTH
            }
        });
        if context_length < 16 {
            return Err(Error::InvalidOption {
                name: "context_length",
                value: context_length.to_string(),
                expected: "must be at least 16 tokens".into(),
            });
        }
        if trained > 0 && u64::from(context_length) > trained {
            return Err(Error::InvalidOption {
                name: "context_length",
                value: context_length.to_string(),
                expected: format!("must be at most {trained}, the length this model was trained with"),
            });
        }
        let threads = options.threads.unwrap_or_else(default_threads);
        if threads == 0 || threads > 256 {
            return Err(Error::InvalidOption { name: "threads", value: threads.to_string(), expected: "must be between 1 and 256".into() });
        }
        if options.batch_size == 0 {
            return Err(Error::InvalidOption { name: "batch_size", value: "0".into(), expected: "must be at least 1".into() });
        }
        let batch_size = options.batch_size.min(context_length);
        let session = Session::new(model, session_params(&options, context_length, threads, batch_size))?;
        let messages = options.system_prompt.iter().map(Message::system).collect();
        Ok(Conversation { session, options, messages, fail_decode_after: None, answer_prefix: None, projector: None })
    }

    /// Starts keeping hidden states (for a router probe), if it did not:
    /// the context is made again, so the KV cache starts empty.
    #[cfg(feature = "cloud")]
    pub(crate) fn keep_hidden_states(&mut self) -> Result<()> {
        if self.options.hidden_states {
            return Ok(());
        }
        let mut options = self.options.clone();
        options.hidden_states = true;
        let p = self.session.params();
        let adapters = self.session.adapters().to_vec();
        let mut session = Session::new(&self.session.model().clone(), session_params(&options, p.context_length, p.threads, p.batch_size))?;
        session.set_adapters(&adapters)?;
        self.session = session;
        self.options = options;
        Ok(())
    }

    /// The model this conversation runs on.
    pub fn model(&self) -> &Model {
        self.session.model()
    }

    /// The messages so far, system prompt first.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The context window size in tokens.
    pub fn context_length(&self) -> u32 {
        self.session.context_length()
    }

    /// The sampling used for answers.
    pub fn sampling(&self) -> &SamplingParams {
        &self.options.sampling
    }

    /// Changes the sampling for the next answers (validated first).
    pub fn set_sampling(&mut self, sampling: SamplingParams) -> Result<()> {
        sampling.validate()?;
        self.options.sampling = sampling;
        Ok(())
    }

    /// Sets the LoRA adapters this conversation's answers use, each with a
    /// scale (1 applies it as trained, 0 turns it off), replacing those set
    /// before; an empty list detaches them all. Adapters are loaded once
    /// with [`crate::LoraAdapter::load`] onto this conversation's model and
    /// may be shared by any number of conversations; the base model is not
    /// reloaded.
    ///
    /// The history is kept. When the adapters in effect change, the KV cache
    /// is dropped (it was computed with other weights), so the next answer
    /// evaluates the whole conversation again. Fails, changing nothing, with
    /// [`crate::Error::AdapterMismatch`] for an adapter loaded onto another
    /// model, or [`crate::Error::InvalidOption`] for a scale that is not a
    /// finite number or an adapter given twice.
    pub fn set_adapters(&mut self, adapters: &[(LoraAdapter, f32)]) -> Result<()> {
        self.session.set_adapters(adapters)
    }

    /// The LoRA adapters set on this conversation, with their scales.
    pub fn adapters(&self) -> &[(LoraAdapter, f32)] {
        self.session.adapters()
    }

    /// Lets this conversation see images through `projector` (loaded for its
    /// model with [`Projector::load`]), or, with `None`, stops it: the
    /// images already in the history then fail the next answer until a
    /// projector is set again. Fails, changing nothing, with
    /// [`crate::Error::ProjectorMismatch`] for a projector loaded for another
    /// model, or [`crate::Error::ImagesUnsupported`] when the conversation's
    /// `batch_size` is smaller than one image's positions (an image is
    /// evaluated in one batch: create the conversation with a larger one).
    pub fn set_projector(&mut self, projector: Option<Projector>) -> Result<()> {
        if let Some(p) = &projector {
            if !p.belongs_to(self.session.model()) {
                return Err(Error::ProjectorMismatch {
                    path: p.info().path.clone(),
                    reason: "it was loaded for another model; load it for this conversation's model".into(),
                });
            }
            let batch = self.session.params().batch_size;
            let needed = p.info().embeddings_per_image;
            if batch < needed {
                return Err(Error::ImagesUnsupported {
                    reason: format!(
                        "its batch_size is {batch}, but one image is {needed} embeddings, evaluated in one batch; create the conversation with batch_size of at least {needed}"
                    ),
                });
            }
        }
        self.projector = projector;
        Ok(())
    }

    /// The vision projector this conversation sees images through, if any.
    pub fn projector(&self) -> Option<&Projector> {
        self.projector.as_ref()
    }

    /// Forgets every message but the system prompt. The cached system prompt
    /// stays in the KV cache and is reused by the next answer.
    pub fn reset(&mut self) {
        self.messages.retain(|m| m.role == Role::System);
    }

    /// Forgets what the KV cache holds but keeps the history: the next answer
    /// evaluates the whole conversation again. Useful to measure what KV reuse
    /// saves, or to start cold after the history was changed elsewhere.
    pub fn clear_cache(&mut self) {
        self.session.clear();
    }

    /// Replaces the history (e.g. to restore a saved chat or edit an earlier
    /// turn). The next answer re-evaluates only what differs from the cache.
    pub fn set_messages(&mut self, messages: Vec<Message>) {
        self.messages = messages;
    }

    /// Cuts the history to its first `len` messages (e.g. to edit or
    /// regenerate an earlier turn); the KV cache keeps the shared prefix.
    pub fn truncate(&mut self, len: usize) {
        self.messages.truncate(len);
    }

    /// Sends a user message and generates the answer, calling `on_text` with
    /// each new piece of text as it is produced.
    ///
    /// What the history holds afterwards, so nothing the user typed or saw is lost:
    /// - an answer (complete, or interrupted with [`PartialAnswer::Keep`]): the
    ///   user message and the answer as shown;
    /// - interrupted before any text with `Keep`: the user message alone (the
    ///   next `send` joins its text to it, and [`Conversation::regenerate`] answers it);
    /// - interrupted with [`PartialAnswer::Discard`]: as it was before the call;
    /// - an error before any text was shown: as it was before the call;
    /// - an error after text was shown: like an interruption (kept with `Keep`,
    ///   rolled back with `Discard`), and the error is [`Error::AnswerFailed`]
    ///   carrying the text that was shown.
    pub fn send(&mut self, text: &str, options: &SendOptions, on_text: &mut dyn FnMut(&str)) -> Result<Reply> {
        self.send_events(text, options, &mut |event| {
            if let ChatEvent::Text(delta) = event {
                on_text(delta);
            }
        })
    }

    /// Like [`Conversation::send`], with every event: text deltas, snapshots
    /// of a JSON answer as it is written, and tool calls as they are decided.
    pub fn send_events(&mut self, text: &str, options: &SendOptions, on_event: &mut dyn FnMut(ChatEvent<'_>)) -> Result<Reply> {
        self.send_with_images_events(text, &[], options, on_event)
    }

    /// Like [`Conversation::send_events`], with images the user sent along
    /// (decoded with [`Image::decode`]; they go before the text, in order).
    /// Needs a vision projector ([`Conversation::set_projector`]), else it
    /// fails with [`Error::ImagesUnsupported`], changing nothing. Each image
    /// takes [`crate::ProjectorInfo::tokens_per_image`] positions of the
    /// context; images already in the KV cache are not encoded again.
    pub fn send_with_images_events(
        &mut self,
        text: &str,
        images: &[Image],
        options: &SendOptions,
        on_event: &mut dyn FnMut(ChatEvent<'_>),
    ) -> Result<Reply> {
        if let Some(confidence) = &options.confidence {
            confidence.validate()?;
        }
        if !images.is_empty() && self.projector.is_none() {
            return Err(Error::ImagesUnsupported {
                reason: "it has no vision projector; load the model's mmproj file with Projector::load and set it with set_projector"
                    .into(),
            });
        }
        let before = self.messages.clone();
        match self.messages.last_mut() {
            // An earlier message that was never answered (cancelled before any
            // text): one user turn, so templates that need alternating roles work.
            Some(last) if last.role == Role::User => {
                last.content.push_str("\n\n");
                last.content.push_str(text);
                last.images.extend_from_slice(images);
            }
            _ => self.messages.push(Message { images: images.to_vec(), ..Message::user(text) }),
        }
        self.answer(before, options, on_event)
    }

    /// Answers the tool calls of the last answer with their results and
    /// generates what comes next (more calls, or the answer). Every call of
    /// that answer needs exactly one result; the history is untouched otherwise.
    pub fn send_tool_results(
        &mut self,
        results: &[ToolResult],
        options: &SendOptions,
        on_event: &mut dyn FnMut(ChatEvent<'_>),
    ) -> Result<Reply> {
        crate::tool::check_results(&self.messages, results)?;
        let before = self.messages.clone();
        self.messages.extend(results.iter().map(Message::tool_result));
        self.answer(before, options, on_event)
    }

    /// Sends a message and waits for the whole answer.
    pub fn ask(&mut self, text: &str) -> Result<Reply> {
        self.send(text, &SendOptions::default(), &mut |_| {})
    }

    /// Answers the last user message again, replacing the previous answer (if
    /// any). If the new answer is discarded or fails before any text, the
    /// history keeps the user message and the previous answer.
    pub fn regenerate(&mut self, options: &SendOptions, on_text: &mut dyn FnMut(&str)) -> Result<Reply> {
        self.regenerate_events(options, &mut |event| {
            if let ChatEvent::Text(delta) = event {
                on_text(delta);
            }
        })
    }

    /// Like [`Conversation::regenerate`], with every event (see [`Conversation::send_events`]).
    pub fn regenerate_events(&mut self, options: &SendOptions, on_event: &mut dyn FnMut(ChatEvent<'_>)) -> Result<Reply> {
        let before = self.messages.clone();
        if self.messages.last().is_some_and(|m| m.role == Role::Assistant) {
            self.messages.pop();
        }
        if !self.messages.last().is_some_and(|m| m.role == Role::User) {
            self.messages = before;
            return Err(Error::InvalidOption {
                name: "regenerate",
                value: "no user message".into(),
                expected: "the conversation must end with a user message or its answer".into(),
            });
        }
        let reply = self.answer(before.clone(), options, on_event)?;
        // Stopped before any text: nothing new to show, so the previous answer stays.
        if self.messages.last().is_some_and(|m| m.role == Role::User) {
            self.messages = before;
        }
        Ok(reply)
    }

    /// Replaces the last user message with `text` (dropping its answer) and
    /// answers it, with every event (see [`Conversation::send_events`]): a
    /// chat app's "edit". The KV cache keeps everything before that message.
    /// Failed before any text, the history is as it was, old question and
    /// answer included. Without a user message it is `send_events`.
    pub fn edit_last_events(&mut self, text: &str, options: &SendOptions, on_event: &mut dyn FnMut(ChatEvent<'_>)) -> Result<Reply> {
        let before = self.messages.clone();
        let last = before.iter().rposition(|m| m.role == Role::User);
        if let Some(last) = last {
            self.messages.truncate(last);
        }
        let result = self.send_events(text, options, on_event);
        if result.is_err() && self.messages.len() <= last.unwrap_or(before.len()) {
            self.messages = before;
        }
        result
    }

    /// Answers the history as it stands (ending in a user message) and settles
    /// the history as [`Conversation::send`] documents; `restore` is the
    /// history to go back to when the turn is rolled back.
    fn answer(&mut self, restore: Vec<Message>, options: &SendOptions, on_event: &mut dyn FnMut(ChatEvent<'_>)) -> Result<Reply> {
        let mut shown = String::new();
        let result = self.respond(options, &mut |event| {
            if let ChatEvent::Text(delta) = event {
                shown.push_str(delta);
            }
            on_event(event);
        });
        let interrupted = |r: StopReason| matches!(r, StopReason::Cancelled | StopReason::LowConfidence | StopReason::Deadline);
        let keep = options.on_cancel == PartialAnswer::Keep;
        match result {
            Ok(reply) if interrupted(reply.metrics.stop_reason) && !keep => {
                self.messages = restore;
                Ok(reply)
            }
            // Interrupted before any text: keep what the user typed, add no empty answer.
            Ok(reply) if interrupted(reply.metrics.stop_reason) && reply.text.is_empty() => Ok(reply),
            Ok(reply) => match structured_value(&reply, options.constraint.as_ref()) {
                Ok(structured) => {
                    self.messages.push(Message::assistant_calls(reply.text.clone(), reply.tool_calls.clone()));
                    Ok(Reply { structured, ..reply })
                }
                // Stopped inside the value: like a failure after text was shown.
                Err(e) => {
                    self.settle_failed_answer(keep, reply.text, restore);
                    Err(e)
                }
            },
            Err(e) if shown.is_empty() => {
                self.messages = restore;
                Err(e)
            }
            Err(e) => {
                self.settle_failed_answer(keep, shown.clone(), restore);
                Err(Error::AnswerFailed { partial_text: shown, cause: Box::new(e) })
            }
        }
    }

    /// After an answer failed with text shown: keep that text as the answer
    /// (`keep`), or roll the turn back to `restore`.
    fn settle_failed_answer(&mut self, keep: bool, shown: String, restore: Vec<Message>) {
        if keep {
            self.messages.push(Message::assistant(shown));
        } else {
            self.messages = restore;
        }
    }

    /// Test hook: the next answers fail with [`Error::Inference`] after this
    /// many generated tokens, as a failing device would. Not for apps.
    #[doc(hidden)]
    pub fn inject_decode_failure_after(&mut self, tokens: Option<u32>) {
        self.fail_decode_after = tokens;
    }

    /// Experiment hook: the next answer starts with `prefix`, decoded as if
    /// the model had written it but not shown (e.g. a finished tool call, to
    /// see whether the model goes on to a second one). Not for apps.
    #[doc(hidden)]
    pub fn inject_answer_prefix(&mut self, prefix: Option<String>) {
        self.answer_prefix = prefix;
    }

    fn respond(&mut self, options: &SendOptions, on_event: &mut dyn FnMut(ChatEvent<'_>)) -> Result<Reply> {
        let started = Instant::now();
        let sampling = self.options.sampling.clone();
        let model = self.session.model().clone();
        let mut tools = ToolUse::new(options, &model)?;
        // Compiled before any work, so a constraint that cannot be enforced fails first.
        let constraint = match &options.constraint {
            Some(c) => constraint_sampler(&model, c)?,
            None => None,
        };
        let mut constraint_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut prompt = self.fit_prompt(tools.as_ref().map_or(&[][..], |t| &t.tools[..]))?;
        let mut tail = Vec::new();
        if let Some(opener) = tools.as_ref().and_then(ToolUse::forced_opener) {
            tail.extend(model.tokenize_template(&opener));
        }
        if let Some(prefix) = self.answer_prefix.take() {
            tail.extend(model.tokenize_template(&prefix));
        }
        prompt.extend_text(tail);
        let cancel = &options.cancel;
        let prefill = self.session.prefill_parts(&prompt.parts(self.projector.as_ref()), cancel)?;
        let prefill_done = Instant::now();
        if let (Some(Constraint::Choice { options: choices }), false) = (&options.constraint, prefill.cancelled) {
            let prompt = PromptDone { started, prefill, prefill_done, constraint_ms };
            return self.choose(choices, &model, prompt, on_event);
        }

        let mut scanner = tools.as_ref().map(|t| CallScanner::new(t.format, t.forced()));
        let mut calls: Vec<ToolCall> = Vec::new();
        let mut call_json = String::new();
        let free_sampler = |constraint| Sampler::constrained(&sampling, &model, constraint);
        let mut sampler = match tools.as_mut() {
            Some(t) if t.forced() => {
                let call_started = Instant::now();
                let s = Sampler::constrained(&sampling, &model, Some(t.call_sampler(&model)?));
                constraint_ms += call_started.elapsed().as_secs_f64() * 1e3;
                s
            }
            _ => free_sampler(constraint),
        };
        let mut snapshot: Option<serde_json::Value> = None;
        let json_answer = options.constraint.as_ref().is_some_and(Constraint::is_json);
        let mut stream = TextStream::new(&sampling.stop);
        let mut text = String::new();
        let mut generated = 0u32;
        let mut first_token_at = None;
        let mut stop_reason = if prefill.cancelled { Some(StopReason::Cancelled) } else { None };
        let mut tracker = options.confidence.map(ConfidenceTracker::new);
        let decision_state = self.session.hidden_state();
        let mut content_states = StateMean::default();
        let past_deadline = || options.deadline.is_some_and(|d| Instant::now() >= d);

        while stop_reason.is_none() {
            if cancel.is_cancelled() {
                stop_reason = Some(StopReason::Cancelled);
                break;
            }
            if past_deadline() {
                stop_reason = Some(StopReason::Deadline);
                break;
            }
            let token = self.session.sample(&mut sampler);
            generated += 1;
            first_token_at.get_or_insert_with(Instant::now);
            let token_text = model.token_bytes(token);
            // Only the confidence tracker and the router's hidden states read it.
            let content = (tracker.is_some() || self.options.hidden_states) && is_content(&String::from_utf8_lossy(&token_text));
            if let Some(tracker) = tracker.as_mut() {
                if tracker.push(self.session.logits(), token.0 as usize, content) {
                    stop_reason = Some(StopReason::LowConfidence);
                    break;
                }
            }
            if model.is_end_of_generation(token) {
                stop_reason = Some(StopReason::Eos);
                break;
            }
            let step = stream.push(&token_text);
            let mut forced: Vec<Token> = Vec::new();
            match (scanner.as_mut(), tools.as_mut()) {
                (Some(scanner), Some(tools)) if scanner.in_call() => {
                    call_json.push_str(&step.text);
                    if call_complete(&call_json) {
                        let call = parse_call(&call_json, &tools.tools, new_call_id())?;
                        on_event(ChatEvent::ToolCall(&call));
                        calls.push(call);
                        call_json.clear();
                        let closer = scanner.closer();
                        scanner.end_call();
                        if !tools.format.parallel() || matches!(tools.choice, ToolChoice::Tool(_)) {
                            stop_reason = Some(StopReason::Eos);
                            break;
                        }
                        // The engine writes the closing tag itself, then the model goes on freely.
                        forced = model.tokenize_template(closer);
                        sampler = free_sampler(None);
                    }
                }
                (Some(scanner), Some(tools)) => {
                    let scanned = scanner.push(&step.text);
                    if !scanned.text.is_empty() {
                        on_event(ChatEvent::Text(&scanned.text));
                        text.push_str(&scanned.text);
                    }
                    if let Some(rest) = scanned.call_opened {
                        let call_started = Instant::now();
                        sampler = Sampler::constrained(&sampling, &model, Some(tools.call_sampler(&model)?));
                        constraint_ms += call_started.elapsed().as_secs_f64() * 1e3;
                        // What the model wrote after the opener in the same token counts as written.
                        // (The grammar is one-line JSON: it is advanced by the same text without layout.)
                        sampler.accept(&model.tokenize_continuation(&compact_json_prefix(&rest)));
                        call_json = rest;
                    }
                }
                _ => {
                    if !step.text.is_empty() {
                        on_event(ChatEvent::Text(&step.text));
                        text.push_str(&step.text);
                        if json_answer {
                            if let Some((value, _)) = partial::snapshot(&text) {
                                if snapshot.as_ref() != Some(&value) {
                                    on_event(ChatEvent::Snapshot(&value));
                                    snapshot = Some(value);
                                }
                            }
                        }
                    }
                }
            }
            if step.stopped {
                stop_reason = Some(StopReason::StopSequence);
            } else if generated >= sampling.max_tokens {
                stop_reason = Some(StopReason::MaxTokens);
            } else if self.session.cached_len() + 1 >= self.session.context_length() as usize {
                stop_reason = Some(StopReason::ContextFull);
            } else if self.fail_decode_after.is_some_and(|n| generated >= n) {
                return Err(Error::Inference("injected decode failure (test hook)".into()));
            } else if !forced.is_empty() {
                forced.insert(0, token);
                self.session.extend(&forced)?;
            } else {
                self.session.decode_one(token)?;
                if content {
                    content_states.add(self.session.hidden_state().as_deref());
                }
            }
        }
        let mut tail = stream.finish();
        if let Some(scanner) = scanner.as_mut() {
            if scanner.in_call() {
                // Stopped inside a call. Interrupted (cancelled, or stopped by
                // the router's deadline or confidence check): the unfinished
                // call is dropped, never shown as text. Cut off (the token
                // limit, a full context): an error carrying the call's text.
                match stop_reason {
                    Some(StopReason::Cancelled | StopReason::Deadline | StopReason::LowConfidence) => tail.clear(),
                    other => {
                        let reason = other.unwrap_or(StopReason::MaxTokens).as_str();
                        return Err(Error::StructuredOutputIncomplete {
                            partial_text: format!("{call_json}{tail}"),
                            stop_reason: format!("{reason} inside a tool call"),
                        });
                    }
                }
            } else {
                tail = format!("{}{tail}", scanner.finish());
            }
        }
        if !tail.is_empty() {
            on_event(ChatEvent::Text(&tail));
            text.push_str(&tail);
        }

        if !calls.is_empty() && text.trim().is_empty() {
            // Only the layout around the calls: no text answer.
            text.clear();
        }
        let finished = Instant::now();
        let secs = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64();
        let prefill_secs = secs(started, prefill_done);
        let decode_secs = first_token_at.map_or(0.0, |t| secs(t, finished));
        let metrics = Metrics {
            load_ms: model.load_ms(),
            ttft_ms: first_token_at.map_or(0.0, |t| secs(started, t) * 1000.0),
            prompt_tokens_reused: prefill.reused as u32,
            prompt_tokens_evaluated: prefill.evaluated as u32,
            generated_tokens: generated,
            prefill_tokens_per_s: rate(prefill.evaluated as f64, prefill_secs),
            decode_tokens_per_s: rate(f64::from(generated.saturating_sub(1)), decode_secs),
            peak_rss_bytes: peak_rss_bytes(),
            stop_reason: stop_reason.unwrap_or(StopReason::MaxTokens),
            total_ms: secs(started, finished) * 1000.0,
            backend: model.backend().backend.clone(),
            device: model.backend().device.clone(),
            confidence: tracker.and_then(|t| t.finish()),
            constraint_ms,
        };
        log::debug!("answer: {metrics:?}");
        let features = answer_features(decision_state, content_states.mean(), metrics.confidence.as_ref());
        Ok(Reply { text, metrics, structured: None, tool_calls: calls, features })
    }

    /// Answers a [`Constraint::Choice`]: scores every option after the prompt
    /// (teacher-forced, exact), picks the most likely one (or draws one at a
    /// temperature above 0), and streams it as one delta.
    fn choose(&mut self, choices: &[String], model: &Model, prompt: PromptDone, on_event: &mut dyn FnMut(ChatEvent<'_>)) -> Result<Reply> {
        let PromptDone { started, prefill, prefill_done, constraint_ms } = prompt;
        let continuations: Vec<Vec<Token>> = choices.iter().map(|c| model.tokenize_continuation(c)).collect();
        let decision_state = self.session.hidden_state();
        let log_probs = self.session.score_continuations(&continuations)?;
        let probabilities = normalise(&log_probs);
        let sampling = &self.options.sampling;
        let index =
            if sampling.temperature == 0.0 { argmax(&probabilities) } else { draw(&probabilities, sampling.temperature, sampling.seed) };
        let text = choices[index].clone();
        // Best effort: an answer never fails for want of its probe inputs.
        let answer_state = match decision_state {
            Some(_) => self.session.mean_state_after(&continuations[index]).unwrap_or_else(|e| {
                log::warn!("no hidden states for the chosen option: {e}");
                None
            }),
            None => None,
        };
        let confidence = Confidence::of_choice(&probabilities, index);
        let features = answer_features(decision_state, answer_state, Some(&confidence));
        on_event(ChatEvent::Text(&text));
        let finished = Instant::now();
        let scored: u32 = continuations.iter().map(|c| c.len() as u32).sum();
        let metrics = Metrics {
            load_ms: model.load_ms(),
            ttft_ms: finished.duration_since(started).as_secs_f64() * 1000.0,
            prompt_tokens_reused: prefill.reused as u32,
            prompt_tokens_evaluated: prefill.evaluated as u32,
            generated_tokens: continuations[index].len() as u32,
            prefill_tokens_per_s: rate(prefill.evaluated as f64, prefill_done.duration_since(started).as_secs_f64()),
            decode_tokens_per_s: rate(f64::from(scored), finished.duration_since(prefill_done).as_secs_f64()),
            peak_rss_bytes: peak_rss_bytes(),
            stop_reason: StopReason::Eos,
            total_ms: finished.duration_since(started).as_secs_f64() * 1000.0,
            backend: model.backend().backend.clone(),
            device: model.backend().device.clone(),
            confidence: Some(confidence),
            constraint_ms,
        };
        Ok(Reply { text, metrics, structured: Some(Structured::Choice { index, probabilities }), tool_calls: Vec::new(), features })
    }

    /// Renders and tokenizes the history, applying the overflow policy.
    fn fit_prompt(&mut self, tools: &[Tool]) -> Result<Prompt> {
        let n_ctx = self.session.context_length();
        loop {
            let prompt = self.render_prompt(tools)?;
            // Room for the prompt and at least one generated token.
            if prompt.len() < n_ctx as usize {
                return Ok(prompt);
            }
            if self.options.overflow == OverflowPolicy::Error || !self.drop_oldest_turn() {
                return Err(Error::ContextOverflow { prompt_tokens: prompt.len() + 1, context_length: n_ctx });
            }
        }
    }

    /// The history as the model sees it: text tokens, and the images in
    /// their places (each a marker in its message's text, before the text).
    fn render_prompt(&self, tools: &[Tool]) -> Result<Prompt> {
        let model = self.session.model();
        if self.messages.iter().all(|m| m.images.is_empty()) {
            return Ok(Prompt {
                segments: vec![PromptSegment::Tokens(model.prompt_tokens_with_tools(&self.messages, tools)?)],
                images: Vec::new(),
            });
        }
        let Some(projector) = &self.projector else {
            return Err(Error::ImagesUnsupported {
                reason: "the history holds images but no vision projector is set; set one with set_projector, or start a new conversation"
                    .into(),
            });
        };
        let marker = projector.marker();
        let marked: Vec<Message> = self
            .messages
            .iter()
            .map(
                |m| if m.images.is_empty() { m.clone() } else { m.with_content(format!("{}{}", marker.repeat(m.images.len()), m.content)) },
            )
            .collect();
        let segments = model.prompt_segments_with_tools(&marked, tools, marker)?;
        let images: Vec<Image> = self.messages.iter().flat_map(|m| m.images.iter().cloned()).collect();
        let slots = segments.iter().filter(|s| matches!(s, PromptSegment::Image)).count();
        if slots != images.len() {
            return Err(Error::Template(format!(
                "the chat template placed {slots} images for the {} in the history; this model's template does not keep message text as it is",
                images.len()
            )));
        }
        let images = images.into_iter().map(|image| projector.group_keys(&image).map(|keys| (image, keys))).collect::<Result<Vec<_>>>()?;
        Ok(Prompt { segments, images })
    }

    /// Removes the oldest user turn and its answer; false if only the newest message is left.
    fn drop_oldest_turn(&mut self) -> bool {
        let first = self.messages.iter().position(|m| m.role != Role::System);
        match first {
            Some(i) if i + 1 < self.messages.len() => {
                self.messages.remove(i);
                // Drop the answer too, so roles keep alternating.
                if i + 1 < self.messages.len() && self.messages[i].role == Role::Assistant {
                    self.messages.remove(i);
                }
                log::info!("context full: dropped the oldest turn");
                true
            }
            _ => false,
        }
    }
}

impl Reply {
    /// The router probe's calibrated probability that this answer is right:
    /// `None` unless hidden states were kept and the answer is of the kind
    /// the probe was trained on (a choice, or free text without tool calls).
    pub fn probe_score(&self, probe: &crate::probe::Probe) -> Option<f32> {
        use crate::probe::AnswerForm;
        let form = if matches!(self.structured, Some(Structured::Choice { .. })) { AnswerForm::Choice } else { AnswerForm::FreeText };
        if probe.answer_form != form || !self.tool_calls.is_empty() {
            return None;
        }
        probe.score(self.features.as_ref()?)
    }
}

/// A rendered history: text tokens and image slots, with each image and
/// the cache keys of the positions it takes, in order.
struct Prompt {
    segments: Vec<PromptSegment>,
    images: Vec<(Image, Vec<Token>)>,
}

impl Prompt {
    /// Positions it takes in the context.
    fn len(&self) -> usize {
        let mut images = self.images.iter();
        self.segments
            .iter()
            .map(|s| match s {
                PromptSegment::Tokens(t) => t.len(),
                PromptSegment::Image => images.next().map_or(0, |(_, keys)| keys.len()),
            })
            .sum()
    }

    /// Appends text tokens at the end.
    fn extend_text(&mut self, tokens: Vec<Token>) {
        match self.segments.last_mut() {
            Some(PromptSegment::Tokens(t)) => t.extend(tokens),
            _ => self.segments.push(PromptSegment::Tokens(tokens)),
        }
    }

    /// What [`Session::prefill_parts`] takes (`projector` is set whenever images are).
    fn parts<'a>(&'a self, projector: Option<&'a Projector>) -> Vec<PromptPart<'a>> {
        let mut images = self.images.iter();
        self.segments
            .iter()
            .filter_map(|s| match s {
                PromptSegment::Tokens(t) => Some(PromptPart::Tokens(t)),
                PromptSegment::Image => {
                    let (image, keys) = images.next()?;
                    Some(PromptPart::Image { image, keys, projector: projector? })
                }
            })
            .collect()
    }
}

/// The session settings `options` ask for.
fn session_params(options: &ConversationOptions, context_length: u32, threads: u32, batch_size: u32) -> SessionParams {
    SessionParams {
        context_length,
        threads,
        batch_size,
        kv_type: options.kv_type,
        full_swa_cache: options.full_swa_cache,
        hidden_states: options.hidden_states,
    }
}

/// A running mean of hidden states.
#[derive(Default)]
struct StateMean {
    sum: Vec<f64>,
    count: u32,
}

impl StateMean {
    fn add(&mut self, state: Option<&[f32]>) {
        let Some(state) = state else { return };
        if self.sum.is_empty() {
            self.sum = vec![0.0; state.len()];
        }
        for (s, &v) in self.sum.iter_mut().zip(state) {
            *s += f64::from(v);
        }
        self.count += 1;
    }

    fn mean(&self) -> Option<Vec<f32>> {
        (self.count > 0).then(|| self.sum.iter().map(|s| (s / f64::from(self.count)) as f32).collect())
    }
}

/// The probe's inputs, when hidden states were kept. An answer without
/// content tokens reads its decision state in place of their mean.
fn answer_features(decision: Option<Vec<f32>>, answer: Option<Vec<f32>>, confidence: Option<&Confidence>) -> Option<AnswerFeatures> {
    let decision_state = decision?;
    let answer_state = answer.unwrap_or_else(|| decision_state.clone());
    let logits = confidence.map_or_else(|| vec![0.0; crate::probe::LOGIT_FEATURES.len()], crate::probe::logit_features);
    Some(AnswerFeatures { decision_state, answer_state, logits })
}

/// How the prompt of one answer went: when the request started, the
/// prefill, when it ended, and the time spent preparing constraints.
struct PromptDone {
    started: Instant,
    prefill: Prefill,
    prefill_done: Instant,
    constraint_ms: f64,
}

/// The tools of one request, as the model will see and write them.
struct ToolUse {
    tools: Vec<Tool>,
    choice: ToolChoice,
    format: tool::ToolFormat,
    /// The call grammar compiled up front, used for the first call.
    prepared: Option<ConstraintSampler>,
}

impl ToolUse {
    /// `None` when no tools are offered (none declared, or `tool_choice: none`).
    fn new(options: &SendOptions, model: &Model) -> Result<Option<ToolUse>> {
        tool::validate(&options.tools, &options.tool_choice)?;
        if options.tools.is_empty() || options.tool_choice == ToolChoice::None {
            return Ok(None);
        }
        if options.constraint.is_some() {
            return Err(Error::InvalidConstraint {
                detail: "tools and an output constraint cannot be combined in one request; send the tool results first, then ask for the structured answer".into(),
            });
        }
        let format = model.tool_format();
        // Compiled up front, so parameters that cannot be enforced fail before any work.
        let prepared = Some(call_sampler(model, &options.tools, &options.tool_choice, format)?);
        Ok(Some(ToolUse { tools: options.tools.clone(), choice: options.tool_choice.clone(), format, prepared }))
    }

    /// Whether the answer must start with a call.
    fn forced(&self) -> bool {
        matches!(self.choice, ToolChoice::Required | ToolChoice::Tool(_))
    }

    /// The call opener the prompt ends with when a call is forced.
    fn forced_opener(&self) -> Option<String> {
        self.forced().then(|| self.format.opener().map(|o| format!("{o}\n"))).flatten()
    }

    /// The sampler for the next call: the one compiled up front, then a fresh one per call.
    fn call_sampler(&mut self, model: &Model) -> Result<ConstraintSampler> {
        match self.prepared.take() {
            Some(sampler) => Ok(sampler),
            None => call_sampler(model, &self.tools, &self.choice, self.format),
        }
    }
}

fn rate(count: f64, secs: f64) -> f64 {
    if secs > 0.0 && count > 0.0 {
        count / secs
    } else {
        0.0
    }
}

/// The parsed JSON of a finished answer under a JSON constraint; an answer
/// that stopped inside its value is [`Error::StructuredOutputIncomplete`].
/// Choice answers carry their value already; other answers have none.
fn structured_value(reply: &Reply, constraint: Option<&Constraint>) -> Result<Option<Structured>> {
    if reply.structured.is_some() || !constraint.is_some_and(Constraint::is_json) {
        return Ok(reply.structured.clone());
    }
    match serde_json::from_str(&reply.text) {
        Ok(value) => Ok(Some(Structured::Json { value })),
        Err(e) => {
            let stop_reason = match reply.metrics.stop_reason {
                StopReason::Eos | StopReason::StopSequence => format!("the text is not valid JSON: {e}"),
                other => other.as_str().to_string(),
            };
            Err(Error::StructuredOutputIncomplete { partial_text: reply.text.clone(), stop_reason })
        }
    }
}

fn argmax(p: &[f64]) -> usize {
    p.iter().enumerate().fold(0, |best, (i, &v)| if v > p[best] { i } else { best })
}

/// Draws an index with probability proportional to `p^(1/temperature)`,
/// reproducibly for a given seed.
fn draw(p: &[f64], temperature: f32, seed: Option<u32>) -> usize {
    let weights: Vec<f64> = p.iter().map(|v| v.powf(1.0 / f64::from(temperature))).collect();
    let total: f64 = weights.iter().sum();
    // SplitMix64 of the seed.
    let mut z = u64::from(seed.unwrap_or_else(random_seed)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let bits = z ^ (z >> 31);
    let mut target = (bits >> 11) as f64 / (1u64 << 53) as f64 * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i;
        }
        target -= w;
    }
    weights.len() - 1
}
