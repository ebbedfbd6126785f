//! `pocketlm`: the PocketLM desktop CLI (info, generate, chat, bench, plan, serve, eval, embed, fetch, …).

mod chat;
mod embed;
mod eval;
mod models;
mod output;
mod route;
mod serve;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use pocketlm::plan::{fit_budget_with_adapters, plan_at_with_adapters, smallest_request, WeightLoading};
use pocketlm::{
    BackendRequest, BenchOptions, Constraint, Conversation, ConversationOptions, Error, KvType, LoraAdapter, MemoryPlan, Model,
    ModelOptions, OverflowPolicy, PlanRequest, RouteOptions, RoutePolicy, RoutedChat, SamplingParams, Tool, ToolChoice, TurnBenchOptions,
};

/// Run a small language model on this machine, offline.
#[derive(Parser)]
#[command(name = "pocketlm", version, about)]
struct Cli {
    /// Log level for PocketLM (error, warn, info, debug); also RUST_LOG.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    /// Log level for llama.cpp's own messages (off, error, warn, info, debug).
    #[arg(long, global = true, default_value = "error")]
    llama_log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Describe a GGUF model file.
    Info {
        /// Path to the .gguf file (default: the default model).
        model: Option<PathBuf>,
        #[command(flatten)]
        backend: BackendArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Answer one prompt, streaming the answer to stdout.
    Generate {
        #[command(flatten)]
        run: RunArgs,
        /// The user message (or, for base models, the text to continue).
        #[arg(long)]
        prompt: String,
    },
    /// Chat interactively (or one message per stdin line when piped).
    Chat {
        #[command(flatten)]
        run: RunArgs,
        /// Keep the conversation in FILE: restored from it when it exists
        /// (its KV cache too, when it matches the model and settings), saved
        /// after each answer.
        #[arg(long, value_name = "FILE")]
        session: Option<PathBuf>,
    },
    /// Measure prefill and decode speed, time to first token and peak memory.
    Bench {
        /// Path to the .gguf file (default: the default model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Prompt length in tokens.
        #[arg(long, default_value_t = 512)]
        prompt_tokens: u32,
        /// Tokens to generate.
        #[arg(long, default_value_t = 128)]
        gen_tokens: u32,
        /// Measured runs (after one warm-up); the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Inference threads (default: the performance cores).
        #[arg(long)]
        threads: Option<u32>,
        /// KV cache type: f16, q8_0 or q4_0.
        #[arg(long, default_value = "f16")]
        kv_type: KvType,
        /// Context length to allocate (default: prompt + generation, rounded up to 256).
        #[arg(long)]
        ctx: Option<u32>,
        /// How to load the weights: auto, mmap or read.
        #[arg(long, default_value = "auto")]
        weights: WeightLoading,
        #[command(flatten)]
        backend: BackendArgs,
        /// Instead, time the first token over a scripted chat of N equal-length turns
        /// (answers of at most --gen-tokens), with KV reuse and with a full re-evaluation.
        #[arg(long)]
        turns: Option<u32>,
        /// Instead, save a conversation of about N tokens to a session file and time the
        /// next turn after restoring it, against re-evaluating the history (--runs each).
        #[arg(long, value_name = "N", conflicts_with = "turns")]
        restore_history: Option<u32>,
        /// Keep each token's final hidden state, as a router probe needs (to measure its cost).
        #[arg(long)]
        hidden_states: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Predict memory use and choose a configuration that fits a budget.
    Plan {
        /// Path to the .gguf file (default: the default model).
        model: Option<PathBuf>,
        /// Memory budget, e.g. 4GiB, 3500MB, 2.5G (default 4GiB).
        #[arg(long, default_value = "4GiB", value_parser = parse_size)]
        budget: u64,
        /// Cost exactly this context length instead of choosing the largest that fits.
        #[arg(long)]
        ctx: Option<u32>,
        /// KV cache type: f16, q8_0 or q4_0 (default: f16, quantised only if needed).
        #[arg(long)]
        kv_type: Option<KvType>,
        /// LoRA adapter to count too, as FILE or FILE@SCALE (repeatable).
        #[arg(long = "lora", value_name = "FILE[@SCALE]", value_parser = parse_lora)]
        lora: Vec<LoraArg>,
        /// Vision projector (mmproj) to count too: its memory comes out of the budget first.
        #[arg(long)]
        mmproj: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Embed texts (the arguments, or one per stdin line): one JSON line per text on stdout.
    Embed {
        #[command(flatten)]
        embed: EmbedCliArgs,
        /// The texts (default: one per line of stdin).
        texts: Vec<String>,
    },
    /// Measure retrieval on labelled pairs (ARC JSONL: each question should find its correct
    /// answer's text among all answers): recall@1/5/10, MRR, embedding throughput, search time.
    Retrieval {
        #[command(flatten)]
        embed: EmbedCliArgs,
        /// The JSONL file (ARC layout).
        #[arg(long)]
        dataset: PathBuf,
        /// Only the first N questions.
        #[arg(long)]
        limit: Option<usize>,
        /// Also time a search over this many chunks (random vectors of the model's width).
        #[arg(long, default_value_t = 50_000)]
        scale: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/models,
    /// and /v1/embeddings with --embedding-model).
    Serve {
        /// Path to the .gguf file (default: the default model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Address to bind; loopback unless told otherwise.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Port to listen on (0 picks a free one; the URL is printed).
        #[arg(long)]
        port: u16,
        /// Environment variable holding the API key clients must send as a bearer token.
        #[arg(long)]
        api_key_env: Option<String>,
        /// Context length of each request.
        #[arg(long, default_value_t = 4096)]
        ctx: u32,
        /// Requests generating at once (each has its own context); the rest wait.
        #[arg(long, default_value_t = 1)]
        parallel: usize,
        /// Inference threads per request (default: the performance cores).
        #[arg(long)]
        threads: Option<u32>,
        /// A router probe trained for the model: each answer's `confidence.probe` is its score.
        #[arg(long)]
        router_probe: Option<PathBuf>,
        /// An embedding model to serve POST /v1/embeddings with (`default` for all-MiniLM-L6-v2).
        #[arg(long)]
        embedding_model: Option<PathBuf>,
        /// The model's vision projector (mmproj): user messages may then carry images as
        /// `image_url` parts with data: URLs (JPEG or PNG).
        #[arg(long)]
        mmproj: Option<PathBuf>,
    },
    /// Evaluate routing on a labelled multiple-choice set (ARC JSONL): device accuracy, each
    /// confidence signal's AUROC and, with a cloud, routing curves, APGR and cost per correct answer.
    Eval {
        /// The JSONL file (ARC layout: id, question, choices {text, label}, answerKey).
        #[arg(long)]
        dataset: PathBuf,
        /// The device model (default: the default model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// OpenAI-compatible base URL of the cloud model, ending in /v1 (omit to evaluate the device alone).
        #[arg(long, requires = "cloud_model")]
        cloud_url: Option<String>,
        /// Cloud model name.
        #[arg(long, requires = "cloud_url")]
        cloud_model: Option<String>,
        /// Environment variable holding the cloud API key.
        #[arg(long)]
        cloud_key_env: Option<String>,
        /// A probe trained for the device model: its score is reported as the signal `probe`.
        #[arg(long)]
        router_probe: Option<PathBuf>,
        /// Only the first N questions.
        #[arg(long)]
        limit: Option<usize>,
        /// Cloud price per million prompt tokens.
        #[arg(long, default_value_t = 0.0)]
        price_in: f64,
        /// Cloud price per million generated tokens.
        #[arg(long, default_value_t = 0.0)]
        price_out: f64,
        /// Inference threads on the device.
        #[arg(long)]
        threads: Option<u32>,
        /// Keep each question's device and cloud results in this file, and reuse them.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Instead of a cloud endpoint: the --per-question file of the cloud model's own device
        /// run on the same questions (its constrained answers stand for the cloud's).
        #[arg(long, conflicts_with = "cloud_url")]
        cloud_results: Option<PathBuf>,
        /// Write one JSON line per question (id, answers, correctness, scores) to this file.
        #[arg(long)]
        per_question: Option<PathBuf>,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Train a router probe for a device model on labelled multiple-choice questions (ARC JSONL):
    /// runs the model on each, fits the probe, prints its cross-validated AUROC.
    TrainRouter {
        /// The device model the probe is for (default: the default model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// The labelled training questions (never the set you evaluate on).
        #[arg(long)]
        dataset: PathBuf,
        /// Where to write the probe.
        #[arg(long)]
        out: PathBuf,
        /// Keep each question's run (labels and hidden states) in this file, and reuse them.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// The answers it judges: choice (the label through the choice constraint) or
        /// free-text (what generate, chat and serve answer without a constraint).
        #[arg(long, default_value = "choice", value_parser = parse_answer_form)]
        answer_form: pocketlm::AnswerForm,
        /// Only the first N questions.
        #[arg(long)]
        limit: Option<usize>,
        /// Inference threads.
        #[arg(long)]
        threads: Option<u32>,
    },
    /// Download a known test model into the cache (qwen2.5-0.5b, gemma3-270m, all-minilm-l6-v2, qwen2.5-0.5b-lora or all).
    Fetch {
        /// Which model.
        #[arg(default_value = "qwen2.5-0.5b")]
        name: String,
    },
    /// The model catalog, costed for a memory budget: which models fit, largest first.
    Catalog {
        /// Memory the model may use (the device's RAM or a budget), e.g. 4GiB, 3500MB (default 4GiB).
        #[arg(long, visible_alias = "ram", default_value = "4GiB", value_parser = parse_size)]
        budget: u64,
        /// Context length the app needs, in tokens.
        #[arg(long, default_value_t = 4096)]
        ctx: u32,
        /// Count the vision projector (image input).
        #[arg(long)]
        images: bool,
        /// A catalog JSON file to use instead of the built-in one.
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a model file into the models directory: verified, resumed when run again.
    Pull {
        /// The file's http(s) URL, or a catalog id (see `pocketlm catalog`).
        url: String,
        /// With a catalog id: also download the model's vision projector.
        #[arg(long)]
        projector: bool,
        /// With a catalog id: a catalog JSON file to use instead of the built-in one.
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// Expected SHA-256 (64 hex digits); without it, the host's own is checked when it sends one.
        #[arg(long)]
        sha256: Option<String>,
        /// File name in the directory (default: the URL's last segment).
        #[arg(long)]
        name: Option<String>,
        /// Models directory (default: $XDG_DATA_HOME/pocketlm/models).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Environment variable holding a bearer token for gated models (e.g. HF_TOKEN).
        #[arg(long)]
        token_env: Option<String>,
    },
    /// List the models in the models directory.
    Models {
        /// Models directory (default: $XDG_DATA_HOME/pocketlm/models).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a model from the models directory.
    Rm {
        /// The file's name in the directory.
        name: String,
        /// Models directory (default: $XDG_DATA_HOME/pocketlm/models).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Options shared by `embed` and `retrieval`.
#[derive(Args)]
struct EmbedCliArgs {
    /// The embedding model (default: all-MiniLM-L6-v2, fetched on first use); a chat model needs --pooling.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Pooling: mean, cls or last (default: what the model declares).
    #[arg(long)]
    pooling: Option<pocketlm::Pooling>,
    /// Longest text in tokens (default: the model's trained context, at most 512).
    #[arg(long)]
    max_tokens: Option<u32>,
    /// Cut longer texts instead of failing.
    #[arg(long)]
    truncate: bool,
    /// Keep the vectors as the model gives them (no L2 normalisation).
    #[arg(long)]
    raw: bool,
    /// Inference threads (default: the performance cores).
    #[arg(long)]
    threads: Option<u32>,
}

impl EmbedCliArgs {
    fn resolve(self) -> embed::EmbedArgs {
        let EmbedCliArgs { model, pooling, max_tokens, truncate, raw, threads } = self;
        embed::EmbedArgs { model, pooling, max_tokens, truncate, raw, threads }
    }
}

/// Options shared by `generate` and `chat`.
#[derive(Args)]
struct RunArgs {
    /// Path to the .gguf file (default: Qwen2.5-Coder 0.5B, fetched on first use).
    #[arg(long)]
    model: Option<PathBuf>,
    /// System prompt.
    #[arg(long)]
    system: Option<String>,
    /// Most tokens to generate per answer.
    #[arg(long, default_value_t = 512)]
    max_tokens: u32,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    temperature: f32,
    /// Top-k (0 disables).
    #[arg(long, default_value_t = 40)]
    top_k: u32,
    /// Top-p, in (0, 1].
    #[arg(long, default_value_t = 0.95, allow_negative_numbers = true)]
    top_p: f32,
    /// Min-p, in [0, 1].
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    min_p: f32,
    /// Repeat penalty (1 disables).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    repeat_penalty: f32,
    /// Random seed (same seed, same answer).
    #[arg(long)]
    seed: Option<u32>,
    /// Stop sequence (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Context length in tokens.
    #[arg(long)]
    ctx: Option<u32>,
    /// Inference threads (default: the performance cores).
    #[arg(long)]
    threads: Option<u32>,
    /// Drop the oldest turns instead of failing when the context is full.
    #[arg(long)]
    drop_oldest: bool,
    /// KV cache type: f16, q8_0 or q4_0.
    #[arg(long)]
    kv_type: Option<KvType>,
    /// How to load the weights: auto (one copy of every weight), mmap or read.
    #[arg(long, default_value = "auto")]
    weights: WeightLoading,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    route: route::RouteArgs,
    /// Memory budget (e.g. 4GiB): choose the largest context (and KV type) that
    /// fits, or fail before loading. --ctx then caps the context.
    #[arg(long, value_parser = parse_size)]
    budget: Option<u64>,
    /// LoRA adapter to apply, as FILE or FILE@SCALE (scale 1 by default;
    /// repeatable, for several at once). It must be made for this model.
    #[arg(long = "lora", value_name = "FILE[@SCALE]", value_parser = parse_lora)]
    lora: Vec<LoraArg>,
    /// Vision projector (the model's mmproj file) that lets it see --image files.
    #[arg(long)]
    mmproj: Option<PathBuf>,
    /// JPEG or PNG image to send with the prompt (generate only; repeatable;
    /// needs --mmproj; answered on the device, never routed).
    #[arg(long = "image", value_name = "FILE")]
    images: Vec<PathBuf>,
    /// Print JSON: one object for generate, one per line per answer for chat.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    constraint: ConstraintArgs,
    #[command(flatten)]
    tools: ToolArgs,
}

/// Tools the model may call (answered on the device; the calls are printed).
#[derive(Args)]
struct ToolArgs {
    /// A JSON file with tools in OpenAI's format (`[{"type": "function", "function": {…}}]`).
    #[arg(long, value_name = "FILE")]
    tools: Option<PathBuf>,
    /// auto, none, required, or a tool's name.
    #[arg(long, default_value = "auto", requires = "tools")]
    tool_choice: String,
}

impl ToolArgs {
    /// The tools and the choice, read and checked.
    fn read(&self) -> Result<(Vec<Tool>, ToolChoice), Error> {
        let Some(path) = &self.tools else { return Ok((Vec::new(), ToolChoice::Auto)) };
        let bad = |detail: String| Error::InvalidConstraint { detail };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("{} is not JSON: {e}", path.display())))?;
        let list = value.as_array().ok_or_else(|| bad(format!("{} must hold a JSON array of tools", path.display())))?;
        let tools = list.iter().map(Tool::from_openai).collect::<Result<Vec<_>, _>>()?;
        let choice = match self.tool_choice.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            name => ToolChoice::Tool(name.to_string()),
        };
        pocketlm::tool_validate(&tools, &choice)?;
        Ok((tools, choice))
    }
}

/// What every answer must look like, enforced while decoding (at most one).
#[derive(Args)]
#[group(multiple = false)]
struct ConstraintArgs {
    /// A JSON Schema file: every answer is JSON valid against it (`--json` prints the value).
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Every answer is a JSON object.
    #[arg(long)]
    json_object: bool,
    /// A grammar file: llama.cpp GBNF (start rule `root`), or llguidance Lark if it ends in `.lark`.
    #[arg(long, value_name = "FILE")]
    grammar: Option<PathBuf>,
    /// Answer with exactly one of these options (comma-separated); `--json` adds each option's probability.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    choice: Vec<String>,
}

impl ConstraintArgs {
    /// The constraint asked for, with its files read and parsed.
    fn constraint(&self) -> Result<Option<Constraint>, Error> {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path).map_err(|e| Error::InvalidConstraint { detail: format!("cannot read {}: {e}", path.display()) })
        };
        if let Some(path) = &self.schema {
            let schema = serde_json::from_str(&read(path)?)
                .map_err(|e| Error::InvalidConstraint { detail: format!("{} is not JSON: {e}", path.display()) })?;
            return Ok(Some(Constraint::JsonSchema { schema }));
        }
        if self.json_object {
            return Ok(Some(Constraint::JsonObject));
        }
        if let Some(path) = &self.grammar {
            let grammar = read(path)?;
            return Ok(Some(if path.extension().is_some_and(|e| e == "lark") {
                Constraint::Lark { grammar }
            } else {
                Constraint::Gbnf { grammar }
            }));
        }
        if !self.choice.is_empty() {
            return Ok(Some(Constraint::Choice { options: self.choice.clone() }));
        }
        Ok(None)
    }
}

/// Where to run the model.
#[derive(Args, Clone, Copy)]
struct BackendArgs {
    /// Compute backend: auto (Metal on Apple, else CPU), cpu, or gpu (probed
    /// first; falls back to the CPU with the reason).
    #[arg(long, default_value = "auto")]
    backend: BackendRequest,
    /// Layers to offload when the GPU is used (default: all).
    #[arg(long)]
    gpu_layers: Option<u32>,
}

impl BackendArgs {
    fn model_options(self, weights: WeightLoading) -> ModelOptions {
        ModelOptions { weights, backend: self.backend, gpu_layers: self.gpu_layers }
    }
}

impl RunArgs {
    fn conversation_options(&self) -> ConversationOptions {
        ConversationOptions {
            context_length: self.ctx,
            threads: self.threads,
            system_prompt: self.system.clone(),
            sampling: SamplingParams {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                seed: self.seed,
                max_tokens: self.max_tokens,
                stop: self.stop.clone(),
                ..SamplingParams::default()
            },
            overflow: if self.drop_oldest { OverflowPolicy::DropOldest } else { OverflowPolicy::Error },
            kv_type: self.kv_type.unwrap_or_default(),
            ..ConversationOptions::default()
        }
    }

    /// Validates the options, loads the model and opens a routed conversation.
    /// With cloud routing, a device model that cannot load is a reason to
    /// escalate rather than an error.
    fn open(&self) -> Result<RoutedChat, Error> {
        let config = self.route.config()?;
        // A probe reads hidden states: the context keeps them from the start.
        let options = ConversationOptions { hidden_states: config.probe.is_some(), ..self.conversation_options() };
        options.sampling.validate()?;
        let local = self.open_local(options.clone());
        if let (Err(e), RoutePolicy::LocalOnly) = (&local, config.policy) {
            return Err(e.clone());
        }
        if let Err(e) = &local {
            log::warn!("device model unavailable, the cloud will answer: {e}");
        }
        RoutedChat::new(local, config, options.sampling)
    }

    fn open_local(&self, mut options: ConversationOptions) -> Result<Conversation, Error> {
        let path = models::resolve(self.model.clone())?;
        if let Some(budget) = self.budget {
            // Plan from the headers alone, before any large allocation.
            let gguf = pocketlm::inspect_file(&path)?;
            let adapters = adapter_shapes(&gguf, &self.lora)?;
            let plan = pocketlm::plan::fit_budget_with_adapters(&gguf, budget, self.ctx, self.kv_type, &adapters)?;
            log::info!("budget plan: ctx {} kv {} batch {}", plan.ctx, plan.kv_type.as_str(), plan.batch_size);
            options.context_length = Some(plan.ctx);
            options.kv_type = plan.kv_type;
            options.batch_size = plan.batch_size;
        }
        let model = Model::load(path, &self.backend.model_options(self.weights))?;
        let mut chat = Conversation::new(&model, options)?;
        let adapters = self.lora.iter().map(|a| Ok((LoraAdapter::load(&model, &a.path)?, a.scale))).collect::<Result<Vec<_>, Error>>()?;
        chat.set_adapters(&adapters)?;
        if let Some(mmproj) = &self.mmproj {
            chat.set_projector(Some(pocketlm::Projector::load(&model, mmproj)?))?;
        }
        Ok(chat)
    }
}

/// A `--lora FILE[@SCALE]` argument.
#[derive(Debug, Clone)]
struct LoraArg {
    path: PathBuf,
    scale: f32,
}

fn parse_lora(text: &str) -> Result<LoraArg, String> {
    match text.rsplit_once('@') {
        Some((path, scale)) if !path.is_empty() => {
            let scale: f32 = scale.parse().map_err(|_| format!("'{scale}' is not a scale (try FILE@0.5)"))?;
            if !scale.is_finite() {
                return Err(format!("the scale {scale} is not a finite number"));
            }
            Ok(LoraArg { path: path.into(), scale })
        }
        _ => Ok(LoraArg { path: text.into(), scale: 1.0 }),
    }
}

/// `generate --image`: the prompt and its images, answered by the device
/// model (images are never routed), the text streamed to stdout.
fn generate_with_images(run: &RunArgs, prompt: &str) -> Result<(), Error> {
    if run.mmproj.is_none() {
        return Err(Error::ImagesUnsupported { reason: "--image needs --mmproj FILE, the model's vision projector".into() });
    }
    if !run.tools.read()?.0.is_empty() {
        return Err(Error::ImagesUnsupported { reason: "--image does not combine with --tools yet".into() });
    }
    let images = run
        .images
        .iter()
        .enumerate()
        .map(|(index, path)| {
            let bytes = std::fs::read(path).map_err(|e| Error::InvalidImage { index, reason: format!("{}: {e}", path.display()) })?;
            pocketlm::Image::decode(&bytes).map_err(|reason| Error::InvalidImage { index, reason: format!("{}: {reason}", path.display()) })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut chat = run.open_local(run.conversation_options())?;
    let options = pocketlm::SendOptions { constraint: run.constraint.constraint()?, ..Default::default() };
    let mut stdout = std::io::stdout();
    let reply = chat.send_with_images_events(prompt, &images, &options, &mut |event| {
        if let (pocketlm::ChatEvent::Text(delta), false) = (event, run.json) {
            use std::io::Write;
            let _ = write!(stdout, "{delta}");
            let _ = stdout.flush();
        }
    })?;
    if run.json {
        println!("{}", serde_json::json!({ "text": reply.text, "metrics": reply.metrics }));
    } else {
        println!();
        log::info!("{} prompt positions evaluated, {} reused", reply.metrics.prompt_tokens_evaluated, reply.metrics.prompt_tokens_reused);
    }
    Ok(())
}

/// The adapters' shapes, each checked against the model in `gguf` from the
/// headers alone (for the memory plan, before anything is loaded).
fn adapter_shapes(gguf: &pocketlm::gguf::GgufFile, lora: &[LoraArg]) -> Result<Vec<pocketlm::lora::AdapterShape>, Error> {
    lora.iter().map(|a| pocketlm::inspect_adapter(&a.path, gguf)).collect()
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("pocketlm: internal error: {info}");
    }));
    let cli = Cli::parse();
    init_logging(&cli.log, &cli.llama_log);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str, llama_level: &str) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(level);
    if let Ok(filters) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filters);
    }
    builder.filter_module("llama.cpp", log::LevelFilter::Trace).format_timestamp(None).init();
    pocketlm::set_llama_log_level(llama_level.parse().unwrap_or(log::LevelFilter::Error));
}

fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Info { model, backend, json } => {
            let path = models::resolve(model)?;
            let gguf = pocketlm::inspect_file(&path)?;
            let info = pocketlm::describe(&gguf);
            let backend = pocketlm::choose_backend(&gguf, &backend.model_options(WeightLoading::Auto))?;
            output::print_info(&path, &info, &backend, json);
            Ok(())
        }
        Command::Generate { run, prompt } => {
            let constraint = run.constraint.constraint()?;
            if let Some(c) = &constraint {
                c.validate()?;
            }
            let (tools, tool_choice) = run.tools.read()?;
            if !run.images.is_empty() {
                return generate_with_images(&run, &prompt);
            }
            let mut chat = run.open()?;
            let json = run.json;
            let mut stdout = std::io::stdout();
            let options = RouteOptions { constraint, tools, tool_choice, ..RouteOptions::default() };
            let reply = chat.send(&prompt, &options, &mut |event| {
                if !json {
                    output::print_event(&mut stdout, &event);
                }
            })?;
            output::print_reply(&reply, json);
            Ok(())
        }
        Command::Chat { run, session } => {
            let json = run.json;
            let constraint = run.constraint.constraint()?;
            let tools = run.tools.read()?;
            chat::run(run.open()?, constraint, tools, json, session.as_deref())
        }
        Command::Plan { model, budget, ctx, kv_type, lora, mmproj, json } => {
            let path = models::resolve(model)?;
            let gguf = pocketlm::inspect_file(&path)?;
            let adapters = adapter_shapes(&gguf, &lora)?;
            let planned = match mmproj {
                Some(p) => {
                    let bytes = pocketlm::vision::projector_bytes(&pocketlm::inspect_projector(&p, &gguf)?);
                    pocketlm::plan::with_projector(budget, bytes, |b| plan(&gguf, b, ctx, kv_type, &adapters))?
                }
                None => plan(&gguf, budget, ctx, kv_type, &adapters)?,
            };
            output::print_plan(&planned, json);
            Ok(())
        }
        Command::Bench {
            model,
            prompt_tokens,
            gen_tokens,
            runs,
            threads,
            kv_type,
            ctx,
            weights,
            backend,
            turns,
            restore_history,
            hidden_states,
            json,
        } => {
            let model = Model::load(models::resolve(model)?, &backend.model_options(weights))?;
            if let Some(history_tokens) = restore_history {
                let options = pocketlm::RestoreBenchOptions {
                    history_tokens,
                    runs,
                    threads,
                    kv_type,
                    context_length: ctx.unwrap_or(4096),
                    dir: None,
                };
                output::print_restore(&pocketlm::bench_restore(&model, &options)?, json);
                return Ok(());
            }
            if let Some(turns) = turns {
                let options = TurnBenchOptions {
                    turns,
                    reply_tokens: gen_tokens,
                    threads,
                    kv_type,
                    context_length: ctx.unwrap_or(4096),
                    ..TurnBenchOptions::default()
                };
                output::print_turns(&pocketlm::bench_turns(&model, &options)?, json);
                return Ok(());
            }
            let options = BenchOptions {
                prompt_tokens,
                gen_tokens,
                runs,
                threads,
                kv_type,
                context_length: ctx,
                hidden_states,
                ..BenchOptions::default()
            };
            let report = pocketlm::bench(&model, &options)?;
            output::print_bench(&report, json);
            Ok(())
        }
        Command::Embed { embed, texts } => embed::run(&embed.resolve(), texts),
        Command::Retrieval { embed, dataset, limit, scale, json } => embed::retrieval(&embed.resolve(), &dataset, limit, scale, json),
        Command::Serve { model, host, port, api_key_env, ctx, parallel, threads, router_probe, embedding_model, mmproj } => {
            let api_key = route::key_from_env("api_key_env", api_key_env.as_deref())?;
            let model = Model::load(models::resolve(model)?, &ModelOptions::default())?;
            let addr = std::net::SocketAddr::new(host, port);
            let probe = router_probe.as_deref().map(pocketlm::Probe::load).transpose()?;
            if let Some(p) = &probe {
                p.check_model(model.identity())?;
            }
            let probe = probe.map(std::sync::Arc::new);
            let embedding_model = match embedding_model {
                Some(p) if p.as_os_str() == "default" => Some(embed::default_model()?),
                other => other,
            };
            let embedder = embedding_model.map(|p| Model::load_for_embeddings(p, &ModelOptions::default())).transpose()?;
            let projector = mmproj.map(|p| pocketlm::Projector::load(&model, p)).transpose()?;
            serve::run(model, serve::ServeOptions { addr, api_key, context_length: ctx, parallel, threads, probe, embedder, projector })
        }
        Command::Eval {
            dataset,
            model,
            cloud_url,
            cloud_model,
            cloud_key_env,
            router_probe,
            limit,
            price_in,
            price_out,
            threads,
            cache,
            cloud_results,
            per_question,
            json,
        } => {
            let items = eval::load(&dataset, limit)?;
            let cloud = match (cloud_url, cloud_model) {
                (Some(url), Some(name)) => {
                    let key = route::key_from_env("cloud_key_env", cloud_key_env.as_deref())?;
                    Some(pocketlm::CloudConfig { read_timeout_ms: 120_000, ..pocketlm::CloudConfig::new(url, name, key) })
                }
                _ => None,
            };
            let options = eval::EvalOptions {
                device_model: models::resolve(model)?,
                cloud,
                threads,
                probe: router_probe.as_deref().map(pocketlm::Probe::load).transpose()?,
                cache,
                cloud_results,
            };
            let total = items.len();
            let records = eval::run(&items, &options, &mut |i, r| {
                let cloud = r.cloud_correct.map_or(String::new(), |c| format!(", cloud {}", if c { "right" } else { "wrong" }));
                eprintln!("[{}/{total}] device {}{cloud}", i + 1, if r.device_correct { "right" } else { "wrong" });
            })?;
            if let Some(path) = per_question {
                let lines: Vec<String> = records.iter().map(|r| serde_json::to_string(r).expect("records serialise")).collect();
                std::fs::write(&path, lines.join("\n") + "\n").map_err(|e| pocketlm::Error::InvalidOption {
                    name: "per_question",
                    value: path.display().to_string(),
                    expected: format!("a writable file ({e})"),
                })?;
            }
            let pricing = pocketlm::Pricing { input_per_million: price_in, output_per_million: price_out };
            let summary = eval::report::summarise(&records, pricing);
            if json {
                println!("{}", serde_json::to_string(&summary).expect("the summary serialises"));
            } else {
                println!("{}", eval::report::markdown(&summary));
            }
            Ok(())
        }
        Command::TrainRouter { model, dataset, out, cache, answer_form, limit, threads } => {
            let items = eval::load(&dataset, limit)?;
            let total = items.len();
            let name = dataset.file_name().map_or_else(|| dataset.display().to_string(), |n| n.to_string_lossy().into_owned());
            let mut right = 0;
            let probe =
                eval::train_router(&items, &models::resolve(model)?, answer_form, threads, &name, cache.as_deref(), &mut |i, correct| {
                    right += usize::from(correct);
                    eprintln!("[{}/{total}] device {} ({right} right so far)", i + 1, if correct { "right" } else { "wrong" });
                })?;
            probe.save(&out)?;
            let t = &probe.training;
            println!(
                "probe written to {}: {} examples ({} right), L2 {}, cross-validated AUROC {:.3} (95 % CI {:.3} to {:.3})",
                out.display(),
                t.examples,
                t.correct,
                t.l2,
                t.cv_auroc,
                t.cv_auroc_ci[0],
                t.cv_auroc_ci[1]
            );
            Ok(())
        }
        Command::Fetch { name } => {
            let path = models::fetch(&name)?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Catalog { budget, ctx, images, catalog, json } => store::catalog(catalog.as_deref(), budget, ctx, images, json),
        Command::Pull { url, projector, catalog, sha256, name, dir, token_env } => {
            let dir = dir.unwrap_or_else(store::default_dir);
            let requests = store::requests(&url, projector, catalog.as_deref(), sha256, name)?;
            store::pull(&requests, &dir, token_env.as_deref())
        }
        Command::Models { dir, json } => store::list(&dir.unwrap_or_else(store::default_dir), json),
        Command::Rm { name, dir } => store::remove(&dir.unwrap_or_else(store::default_dir), &name),
    }
}

/// `plan`: a fixed context is costed as given; otherwise the largest that fits
/// is chosen, and when nothing fits the cheapest configuration is shown with `fits: false`.
fn plan(
    gguf: &pocketlm::gguf::GgufFile,
    budget: u64,
    ctx: Option<u32>,
    kv_type: Option<KvType>,
    adapters: &[pocketlm::lora::AdapterShape],
) -> Result<MemoryPlan, Error> {
    match ctx {
        Some(ctx) => {
            let request = PlanRequest {
                context_length: ctx,
                kv_type: kv_type.unwrap_or_default(),
                batch_size: 512,
                full_swa_cache: false,
                weights: WeightLoading::Auto,
            };
            plan_at_with_adapters(gguf, budget, request, adapters)
        }
        None => match fit_budget_with_adapters(gguf, budget, None, kv_type, adapters) {
            Err(Error::InsufficientMemory { .. }) => plan_at_with_adapters(gguf, budget, smallest_request(None, kv_type), adapters),
            other => other,
        },
    }
}

/// Parses sizes like `4GiB`, `3500MB`, `2.5G`, `512MiB` or plain bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{text}' is not a size (try 4GiB or 3500MB)"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        other => return Err(format!("unknown size unit '{other}' (use B, KiB, MiB, GiB, KB, MB or GB)")),
    };
    Ok((value * scale) as u64)
}

/// `choice` or `free-text`.
fn parse_answer_form(s: &str) -> Result<pocketlm::AnswerForm, String> {
    match s {
        "choice" => Ok(pocketlm::AnswerForm::Choice),
        "free-text" => Ok(pocketlm::AnswerForm::FreeText),
        other => Err(format!("{other:?} is not an answer form: choice or free-text")),
    }
}
