//! Repeatable speed and memory measurement (`pocketlm bench`).
//!
//! Each run clears the KV cache, evaluates a synthetic prompt of exactly
//! `prompt_tokens` tokens in batches, then generates `gen_tokens` tokens one at
//! a time with greedy sampling (end-of-generation tokens do not stop it), the
//! same shape as llama.cpp's `llama-bench` pp/tg tests.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::cancel::CancelToken;
use crate::engine::{default_threads, peak_rss_bytes, Model, Sampler, Session, SessionParams, Token};
use crate::error::{Error, Result};
use crate::sampling::SamplingParams;

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BenchOptions {
    /// Prompt length in tokens.
    pub prompt_tokens: u32,
    /// Tokens to generate.
    pub gen_tokens: u32,
    /// Measured runs (a warm-up run comes first and is not counted).
    pub runs: u32,
    /// Inference threads; `None` uses the default.
    pub threads: Option<u32>,
    /// Prompt batch size.
    pub batch_size: u32,
    /// KV cache element type.
    pub kv_type: crate::plan::KvType,
    /// Context length to allocate; `None` fits prompt and generation (rounded up to 256).
    pub context_length: Option<u32>,
    /// Keep every output's final hidden state (what a router probe reads), to measure its cost.
    pub hidden_states: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            prompt_tokens: 512,
            gen_tokens: 128,
            runs: 3,
            threads: None,
            batch_size: 512,
            kv_type: Default::default(),
            context_length: None,
            hidden_states: false,
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRun {
    /// Prompt tokens per second.
    pub prefill_tokens_per_s: f64,
    /// Generated tokens per second (after the first).
    pub decode_tokens_per_s: f64,
    /// Time to first token: prompt evaluation plus the first sample, in ms.
    pub ttft_ms: f64,
}

/// The result of [`bench`]: medians over the runs, and every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// The model file's name.
    pub model: String,
    /// Its architecture.
    pub architecture: String,
    /// Its quantisation.
    pub quantization: String,
    /// Threads used.
    pub threads: u32,
    /// Prompt length in tokens.
    pub prompt_tokens: u32,
    /// Generated tokens per run.
    pub gen_tokens: u32,
    /// Model load time in ms.
    pub load_ms: f64,
    /// Median prompt tokens per second.
    pub prefill_tokens_per_s: f64,
    /// Median generated tokens per second.
    pub decode_tokens_per_s: f64,
    /// Median time to first token in ms.
    pub ttft_ms: f64,
    /// Peak resident memory of the process, in bytes.
    pub peak_rss_bytes: u64,
    /// The memory planner's prediction for this configuration, in bytes.
    pub predicted_peak_bytes: u64,
    /// Context length allocated.
    pub context_length: u32,
    /// KV cache type used.
    pub kv_type: crate::plan::KvType,
    /// How the weights were loaded.
    pub weights: crate::plan::WeightLoading,
    /// What ran the model: `cpu`, `vulkan` or `metal`.
    pub backend: String,
    /// The device that ran it.
    pub device: String,
    /// Why a GPU request ran on the CPU, if it did.
    pub fallback_reason: Option<String>,
    /// Extensions the CPU kernels were built for, e.g. `neon dotprod fp16`.
    pub cpu_kernels: Vec<String>,
    /// Every measured run.
    pub runs: Vec<BenchRun>,
}

const FILLER: &str = "The quick brown fox jumps over the lazy dog while the river runs past \
    old stone bridges, and children count the boats that drift toward the sea. ";

/// Measures prefill and decode speed, time to first token and peak memory.
pub fn bench(model: &Model, options: &BenchOptions) -> Result<BenchReport> {
    if options.prompt_tokens == 0 || options.gen_tokens == 0 || options.runs == 0 {
        return Err(Error::InvalidOption {
            name: "bench",
            value: format!("{options:?}"),
            expected: "prompt_tokens, gen_tokens and runs must all be at least 1".into(),
        });
    }
    let threads = options.threads.unwrap_or_else(default_threads);
    let needed = options.prompt_tokens + options.gen_tokens + 16;
    let context_length = match options.context_length {
        Some(ctx) if ctx < needed => {
            return Err(Error::InvalidOption {
                name: "context_length",
                value: ctx.to_string(),
                expected: format!("at least prompt_tokens + gen_tokens + 16 = {needed}"),
            })
        }
        Some(ctx) => ctx,
        None => needed.next_multiple_of(256),
    };
    let batch_size = options.batch_size.clamp(1, context_length);
    let params = SessionParams {
        context_length,
        threads,
        batch_size,
        kv_type: options.kv_type,
        full_swa_cache: false,
        hidden_states: options.hidden_states,
    };
    let predicted = crate::plan::estimate(
        model.gguf(),
        crate::plan::PlanRequest {
            context_length,
            kv_type: options.kv_type,
            batch_size,
            full_swa_cache: false,
            weights: model.weight_loading(),
        },
    )?;
    let mut session = Session::new(model, params)?;

    let mut text = String::new();
    let mut prompt = Vec::new();
    while prompt.len() < options.prompt_tokens as usize {
        text.push_str(FILLER);
        prompt = session.model().tokenize_llama(&text);
    }
    prompt.truncate(options.prompt_tokens as usize);

    let mut runs = Vec::new();
    for i in 0..=options.runs {
        let run = run_once(&mut session, &prompt, options.gen_tokens)?;
        if i > 0 {
            runs.push(run);
        }
    }
    let median = |f: fn(&BenchRun) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let info = model.info();
    let backend = model.backend();
    Ok(BenchReport {
        backend: backend.backend.clone(),
        device: backend.device.clone(),
        fallback_reason: backend.fallback_reason.clone(),
        cpu_kernels: backend.cpu.kernels.clone(),
        model: model.path().file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        architecture: info.architecture.clone(),
        quantization: info.quantization.clone(),
        threads,
        prompt_tokens: options.prompt_tokens,
        gen_tokens: options.gen_tokens,
        load_ms: model.load_ms(),
        prefill_tokens_per_s: median(|r| r.prefill_tokens_per_s),
        decode_tokens_per_s: median(|r| r.decode_tokens_per_s),
        ttft_ms: median(|r| r.ttft_ms),
        peak_rss_bytes: peak_rss_bytes(),
        predicted_peak_bytes: predicted.predicted_peak_bytes,
        context_length,
        kv_type: options.kv_type,
        weights: model.weight_loading(),
        runs,
    })
}

fn run_once(session: &mut Session, prompt: &[Token], gen_tokens: u32) -> Result<BenchRun> {
    session.clear();
    let mut sampler = Sampler::constrained(&SamplingParams::greedy(), session.model(), None);
    let started = Instant::now();
    session.prefill(prompt, &CancelToken::new())?;
    let prefill_secs = started.elapsed().as_secs_f64();
    let mut token = session.sample(&mut sampler);
    let ttft = started.elapsed().as_secs_f64();
    let decode_started = Instant::now();
    for _ in 1..gen_tokens {
        session.decode_one(token)?;
        token = session.sample(&mut sampler);
    }
    let decode_secs = decode_started.elapsed().as_secs_f64();
    Ok(BenchRun {
        prefill_tokens_per_s: prompt.len() as f64 / prefill_secs,
        decode_tokens_per_s: if gen_tokens > 1 { f64::from(gen_tokens - 1) / decode_secs } else { 0.0 },
        ttft_ms: ttft * 1000.0,
    })
}

/// What [`bench_turns`] measures: a scripted chat of `turns` user messages of
/// equal length, each answered with exactly `reply_tokens` greedy tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TurnBenchOptions {
    /// Number of user turns.
    pub turns: u32,
    /// Words per user message (every message has the same length).
    pub message_words: u32,
    /// Most tokens per answer.
    pub reply_tokens: u32,
    /// Inference threads; `None` uses the default.
    pub threads: Option<u32>,
    /// Context length.
    pub context_length: u32,
    /// KV cache element type.
    pub kv_type: crate::plan::KvType,
}

impl Default for TurnBenchOptions {
    fn default() -> Self {
        TurnBenchOptions {
            turns: 10,
            message_words: 40,
            reply_tokens: 32,
            threads: None,
            context_length: 4096,
            kv_type: Default::default(),
        }
    }
}

/// One turn of [`bench_turns`], measured twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnTiming {
    /// Turn number, from 1.
    pub turn: u32,
    /// Time to first token with KV reuse (only new tokens evaluated), in ms.
    pub reuse_ttft_ms: f64,
    /// Prompt tokens evaluated with KV reuse.
    pub reuse_evaluated: u32,
    /// Time to first token when the whole history is evaluated again, in ms.
    pub baseline_ttft_ms: f64,
    /// Prompt tokens evaluated by the baseline.
    pub baseline_evaluated: u32,
}

/// The result of [`bench_turns`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnBenchReport {
    /// The model file's name.
    pub model: String,
    /// What ran the model: `cpu`, `vulkan` or `metal`.
    pub backend: String,
    /// The device that ran it.
    pub device: String,
    /// Threads used.
    pub threads: u32,
    /// Per-turn timings.
    pub turns: Vec<TurnTiming>,
}

/// Multi-turn time to first token: the same scripted chat run by two
/// conversations in lockstep, one reusing its KV cache (the default) and one
/// clearing it before every turn (a baseline that re-evaluates the history).
pub fn bench_turns(model: &Model, options: &TurnBenchOptions) -> Result<TurnBenchReport> {
    if options.turns == 0 || options.message_words == 0 || options.reply_tokens == 0 {
        return Err(Error::InvalidOption {
            name: "bench_turns",
            value: format!("{options:?}"),
            expected: "turns, message_words and reply_tokens must all be at least 1".into(),
        });
    }
    let threads = options.threads.unwrap_or_else(default_threads);
    let conversation_options = crate::ConversationOptions {
        context_length: Some(options.context_length),
        threads: Some(threads),
        kv_type: options.kv_type,
        sampling: SamplingParams { max_tokens: options.reply_tokens, ..SamplingParams::greedy() },
        ..crate::ConversationOptions::default()
    };
    let mut reuse = crate::Conversation::new(model, conversation_options.clone())?;
    let mut baseline = crate::Conversation::new(model, conversation_options)?;
    let words: Vec<&str> = FILLER.split_whitespace().collect();
    let mut turns = Vec::new();
    for turn in 1..=options.turns {
        // Same words every turn, rotated so no two messages are identical.
        let message: Vec<&str> = (0..options.message_words as usize).map(|i| words[(i + turn as usize * 7) % words.len()]).collect();
        let message = message.join(" ");
        let a = reuse.ask(&message)?;
        baseline.set_messages(reuse.messages()[..reuse.messages().len() - 2].to_vec());
        baseline.clear_cache();
        let b = baseline.ask(&message)?;
        turns.push(TurnTiming {
            turn,
            reuse_ttft_ms: a.metrics.ttft_ms,
            reuse_evaluated: a.metrics.prompt_tokens_evaluated,
            baseline_ttft_ms: b.metrics.ttft_ms,
            baseline_evaluated: b.metrics.prompt_tokens_evaluated,
        });
    }
    Ok(TurnBenchReport {
        model: model.path().file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        backend: model.backend().backend.clone(),
        device: model.backend().device.clone(),
        threads,
        turns,
    })
}

/// What [`bench_restore`] measures: a conversation of about `history_tokens`
/// tokens saved to a session file, then the next turn in a new conversation
/// restored from it, against one that re-evaluates the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestoreBenchOptions {
    /// Tokens of history (the saved conversation is at least this long).
    pub history_tokens: u32,
    /// Measured runs of each side; the median is reported.
    pub runs: u32,
    /// Inference threads; `None` uses the default.
    pub threads: Option<u32>,
    /// Context length.
    pub context_length: u32,
    /// KV cache element type.
    pub kv_type: crate::plan::KvType,
    /// Where the session file goes (`None`: the system's temporary directory).
    pub dir: Option<std::path::PathBuf>,
}

impl Default for RestoreBenchOptions {
    fn default() -> Self {
        RestoreBenchOptions { history_tokens: 2000, runs: 3, threads: None, context_length: 4096, kv_type: Default::default(), dir: None }
    }
}

/// The result of [`bench_restore`] (times are medians, in milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreBenchReport {
    /// The model file's name.
    pub model: String,
    /// What ran the model: `cpu`, `vulkan` or `metal`.
    pub backend: String,
    /// Threads used.
    pub threads: u32,
    /// KV cache element type.
    pub kv_type: crate::plan::KvType,
    /// Tokens in the saved KV cache.
    pub history_tokens: u32,
    /// The session file's size in bytes.
    pub file_bytes: u64,
    /// Time to save (write, flush to disk, rename).
    pub save_ms: f64,
    /// Time to restore the file into a new conversation.
    pub restore_ms: f64,
    /// Time to first token of the next turn after the restore.
    pub restored_ttft_ms: f64,
    /// Prompt tokens the next turn evaluated after the restore.
    pub restored_evaluated: u32,
    /// Time to first token of the next turn with the transcript alone (the
    /// history re-evaluated).
    pub reevaluated_ttft_ms: f64,
    /// Prompt tokens the next turn evaluated without the saved cache.
    pub reevaluated_evaluated: u32,
    /// Runs per side.
    pub runs: u32,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The next turn after an app kill: a history of `history_tokens` is saved
/// once, then each run restores it into a new conversation (state and
/// transcript) and times the next turn's first token, against a new
/// conversation given the transcript alone, which must evaluate it all. The
/// file is read from the page cache (a phone that just killed the app usually
/// still has it there).
pub fn bench_restore(model: &Model, options: &RestoreBenchOptions) -> Result<RestoreBenchReport> {
    if options.history_tokens == 0 || options.runs == 0 || options.history_tokens + 256 > options.context_length {
        return Err(Error::InvalidOption {
            name: "bench_restore",
            value: format!("{options:?}"),
            expected: "history_tokens and runs of at least 1, history_tokens + 256 within the context length".into(),
        });
    }
    let threads = options.threads.unwrap_or_else(default_threads);
    let conversation_options = crate::ConversationOptions {
        context_length: Some(options.context_length),
        threads: Some(threads),
        kv_type: options.kv_type,
        sampling: SamplingParams { max_tokens: 8, ..SamplingParams::greedy() },
        ..crate::ConversationOptions::default()
    };
    // A history of alternating turns built from the filler text, long enough.
    let words: Vec<&str> = FILLER.split_whitespace().collect();
    let mut history = Vec::new();
    let mut turn = 0usize;
    while history.is_empty() || model.prompt_tokens(&history)?.len() < options.history_tokens as usize {
        let text: Vec<&str> = (0..60).map(|i| words[(i + turn * 7) % words.len()]).collect();
        let text = text.join(" ");
        history.push(if turn % 2 == 0 { crate::Message::user(text) } else { crate::Message::assistant(text) });
        turn += 1;
    }
    if history.len() % 2 == 1 {
        history.push(crate::Message::assistant("Noted."));
    }
    let dir = options.dir.clone().unwrap_or_else(std::env::temp_dir);
    let file = dir.join(format!("pocketlm-bench-{}.session", std::process::id()));
    let mut original = crate::Conversation::new(model, conversation_options.clone())?;
    original.set_messages(history);
    original.ask("Say OK.")?;
    let started = Instant::now();
    let saved = original.save(&file)?;
    let save_ms = started.elapsed().as_secs_f64() * 1000.0;
    drop(original);

    let question = "In one word, what animal was mentioned first?";
    let (mut restore_ms, mut restored_ttft, mut reevaluated_ttft) = (Vec::new(), Vec::new(), Vec::new());
    let (mut restored_evaluated, mut reevaluated_evaluated) = (0, 0);
    let result = (|| {
        for _ in 0..options.runs {
            let mut restored = crate::Conversation::new(model, conversation_options.clone())?;
            let started = Instant::now();
            restored.restore(&file)?;
            restore_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            let reply = restored.ask(question)?;
            restored_ttft.push(reply.metrics.ttft_ms);
            restored_evaluated = reply.metrics.prompt_tokens_evaluated;
            drop(restored);

            let mut reevaluated = crate::Conversation::new(model, conversation_options.clone())?;
            reevaluated.restore_transcript(&file)?;
            let reply = reevaluated.ask(question)?;
            reevaluated_ttft.push(reply.metrics.ttft_ms);
            reevaluated_evaluated = reply.metrics.prompt_tokens_evaluated;
        }
        Ok::<(), Error>(())
    })();
    let _ = std::fs::remove_file(&file);
    result?;
    Ok(RestoreBenchReport {
        model: model.path().file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        backend: model.backend().backend.clone(),
        threads,
        kv_type: options.kv_type,
        history_tokens: saved.cached_tokens,
        file_bytes: saved.file_bytes,
        save_ms,
        restore_ms: median(restore_ms),
        restored_ttft_ms: median(restored_ttft),
        restored_evaluated,
        reevaluated_ttft_ms: median(reevaluated_ttft),
        reevaluated_evaluated,
        runs: options.runs,
    })
}
