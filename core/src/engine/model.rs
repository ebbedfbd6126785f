//! Loading a GGUF model safely and describing it.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use serde::{Deserialize, Serialize};

use super::backend::{BackendInfo, BackendRequest};
use super::cpu::CpuInfo;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::plan::WeightLoading;
use crate::session_file::{hex_digest, ModelIdentity};
use crate::template::{generic_tool_messages, render_plain, split_prompt, ChatTemplate, Message, PromptPiece, Role};
use crate::tool::{probe_tool, Tool, ToolFormat};

/// Options for loading a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelOptions {
    /// Map the file or read it into memory; the default (`Auto`) keeps one
    /// copy of every weight (see [`WeightLoading`]).
    pub weights: WeightLoading,
    /// Where to run: the platform default, the CPU, or the GPU after a probe
    /// (see [`BackendRequest`]).
    pub backend: BackendRequest,
    /// Layers to offload when the GPU is used (`None`: all of them).
    pub gpu_layers: Option<u32>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions { weights: WeightLoading::Auto, backend: BackendRequest::Auto, gpu_layers: None }
    }
}

/// What a model is, read from its GGUF metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The model's name from `general.name`, if any.
    pub name: Option<String>,
    /// `general.architecture`, e.g. `qwen2`, `gemma3`, `llama`.
    pub architecture: String,
    /// Number of weights.
    pub parameter_count: u64,
    /// Quantisation scheme, e.g. `Q4_K_M`.
    pub quantization: String,
    /// File size in bytes.
    pub file_size_bytes: u64,
    /// Context length the model was trained with.
    pub context_length_trained: u64,
    /// Vocabulary size.
    pub vocab_size: u64,
    /// Transformer layers.
    pub layers: u64,
    /// Embedding (hidden) size.
    pub embedding_length: u64,
    /// Whether the file carries a Jinja chat template.
    pub has_chat_template: bool,
    /// How prompts are rendered: `jinja`, `llama.cpp` (built-in fallback) or `plain`.
    pub prompt_format: String,
}

/// A loaded model. Cheap to clone and safe to share across threads; each
/// [`crate::Conversation`] on it has its own context and KV cache.
#[derive(Clone)]
pub struct Model {
    pub(crate) inner: Arc<ModelInner>,
}

pub(crate) struct ModelInner {
    pub(crate) llama: LlamaModel,
    pub(crate) info: ModelInfo,
    pub(crate) gguf: GgufFile,
    pub(crate) path: PathBuf,
    pub(crate) load_ms: f64,
    pub(crate) prompt: PromptFormat,
    pub(crate) weights: WeightLoading,
    pub(crate) backend: BackendInfo,
    /// Which file this is (size and header digest), for saved sessions.
    pub(crate) identity: ModelIdentity,
    /// The constrained-decoding engine for this vocabulary, built on first use.
    pub(crate) constraints: OnceLock<super::constraint::Engine>,
    /// How this model's template writes tool calls, found on first use.
    pub(crate) tool_format: OnceLock<ToolFormat>,
}

/// How this model turns messages into a prompt.
pub(crate) enum PromptFormat {
    /// The model's own Jinja template, rendered by minijinja.
    Jinja(Box<ChatTemplate>),
    /// A template minijinja could not handle, rendered by llama.cpp's built-in heuristics.
    LlamaCpp(String),
    /// No template: plain text completion.
    Plain,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("path", &self.inner.path).field("info", &self.inner.info).finish()
    }
}

static LIVE_MODELS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Number of models whose weights are loaded in this process. A model is
/// freed when the last [`Model`] clone and its conversations are dropped.
pub fn live_model_count() -> usize {
    LIVE_MODELS.load(std::sync::atomic::Ordering::SeqCst)
}

impl Drop for ModelInner {
    fn drop(&mut self) {
        LIVE_MODELS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The process-wide llama.cpp backend, started on first use with logging
/// bridged, after checking that this CPU can run the compiled kernels.
pub(crate) fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, Error>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            CpuInfo::detect().check()?;
            super::logging::install();
            // Only fails if initialised twice, which the OnceLock rules out.
            Ok(LlamaBackend::init().expect("llama.cpp backend initialises once"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Forwards llama.cpp's load progress to the caller: increasing values only
/// (a GPU load that falls back to the CPU starts over), and `false` back to
/// llama.cpp, which aborts the load, once the token is cancelled. Shared by
/// the GPU and CPU attempts (llama-cpp-2 wants `'static` callbacks).
///
/// The closure runs inside a C callback, where a panic cannot unwind: one is
/// caught, aborts the load, and is resumed by [`LoadProgress::rethrow`] once
/// llama.cpp has returned.
struct LoadProgress {
    state: Rc<RefCell<ProgressState>>,
    cancel: CancelToken,
}

struct ProgressState {
    progress: Box<dyn FnMut(f32)>,
    last: f32,
    panic: Option<Box<dyn std::any::Any + Send>>,
}

impl LoadProgress {
    fn new(progress: impl FnMut(f32) + 'static, cancel: &CancelToken) -> Self {
        let state = ProgressState { progress: Box::new(progress), last: -1.0, panic: None };
        LoadProgress { state: Rc::new(RefCell::new(state)), cancel: cancel.clone() }
    }

    /// Reports `fraction` if it is larger than the last one; false if the closure panicked.
    fn report(&self, fraction: f32) -> bool {
        // Not re-entrant: a progress closure cannot call back into its own load.
        let Ok(mut state) = self.state.try_borrow_mut() else { return true };
        let fraction = fraction.clamp(0.0, 1.0);
        if state.panic.is_none() && fraction > state.last {
            state.last = fraction;
            let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (state.progress)(fraction)));
            if let Err(panic) = call {
                state.panic = Some(panic);
            }
        }
        state.panic.is_none()
    }

    /// Resumes a panic of the progress closure on the caller's thread.
    fn rethrow(&self) {
        if let Some(panic) = self.state.borrow_mut().panic.take() {
            std::panic::resume_unwind(panic);
        }
    }

    /// The callback for `LlamaModelParams::with_progress_callback`.
    fn callback(&self) -> impl FnMut(f32) -> bool + 'static {
        let this = LoadProgress { state: Rc::clone(&self.state), cancel: self.cancel.clone() };
        move |fraction| !this.cancel.is_cancelled() && this.report(fraction) && !this.cancel.is_cancelled()
    }
}

/// Serialises what mutates a loaded model, and what reads the model's list
/// of adapters: llama.cpp may change the model while creating a context,
/// loading or freeing a LoRA adapter edits that list, and a context's first
/// decode after its adapters change (a graph re-plan) walks it. No two of
/// these may run at once.
static MODEL_MUTATION: Mutex<()> = Mutex::new(());

/// Holds [`MODEL_MUTATION`] (a panic elsewhere does not poison it for good).
pub(super) fn model_mutation_lock() -> std::sync::MutexGuard<'static, ()> {
    MODEL_MUTATION.lock().unwrap_or_else(|p| p.into_inner())
}

// llama-cpp-2 (pinned at =0.1.160) keeps `LlamaModel`'s raw pointer
// crate-private, and its LoRA wrapper needs `&mut LlamaModel` (PocketLM
// shares the model in an `Arc`) and sets one adapter at a time. In that
// release `LlamaModel` is a struct with exactly one field, a non-null
// `llama_model` pointer: a struct whose size equals that field's spans it
// whole, so a pointer to the wrapper is a pointer to it (see also the
// context-params argument in session.rs). The build fails if an upgrade
// changes the size.
const _: () = {
    assert!(std::mem::size_of::<LlamaModel>() == std::mem::size_of::<*mut llama_cpp_sys_2::llama_model>());
    assert!(std::mem::align_of::<LlamaModel>() == std::mem::align_of::<*mut llama_cpp_sys_2::llama_model>());
};

impl Model {
    /// llama.cpp's handle of this model, for the calls llama-cpp-2 does not
    /// wrap (LoRA adapters). Valid while this `Model` (any clone) lives.
    pub(crate) fn raw(&self) -> *mut llama_cpp_sys_2::llama_model {
        let wrapper: *const LlamaModel = &self.inner.llama;
        // SAFETY: see the layout argument above: the wrapper's only field is
        // the (non-null) pointer, at offset 0.
        unsafe { *wrapper.cast::<*mut llama_cpp_sys_2::llama_model>() }
    }

    /// A llama.cpp context on this model with `params` (`context_length`
    /// names it in the error), created one at a time (see [`MODEL_MUTATION`]).
    ///
    /// # Safety
    /// The context borrows the model's weights; the `'static` lifetime is the
    /// caller's promise to drop it before its last clone of this `Model` (the
    /// sessions keep a clone in a field declared after the context).
    pub(crate) unsafe fn new_context(
        &self,
        params: llama_cpp_2::context::params::LlamaContextParams,
        context_length: u32,
    ) -> Result<llama_cpp_2::context::LlamaContext<'static>> {
        let ctx = {
            let _guard = model_mutation_lock();
            self.inner
                .llama
                .new_context(backend()?, params)
                .map_err(|e| Error::ContextCreationFailed { context_length, reason: e.to_string() })?
        };
        // SAFETY: the caller keeps the model (an `Arc` of its weights) alive
        // for longer than the context (this function's contract).
        Ok(unsafe { std::mem::transmute::<llama_cpp_2::context::LlamaContext<'_>, llama_cpp_2::context::LlamaContext<'static>>(ctx) })
    }

    /// Validates and loads the GGUF file at `path`.
    ///
    /// The header and tensor table are checked in Rust first, so a missing,
    /// truncated, corrupt or non-GGUF file gives a typed [`Error`] instead of
    /// reaching llama.cpp (which aborts the process on some malformed files).
    pub fn load(path: impl AsRef<Path>, options: &ModelOptions) -> Result<Model> {
        Model::load_with(path, options, |_| {}, &CancelToken::new())
    }

    /// [`Model::load`] with progress and cancellation.
    ///
    /// `progress` receives the fraction loaded, in `0.0..=1.0`, never
    /// decreasing, and `1.0` once the weights are in; it runs on the calling
    /// thread, between llama.cpp's tensor reads. Cancelling `cancel` (from any
    /// thread, or from `progress` itself) stops the load at the next tensor
    /// and returns [`Error::LoadCancelled`]; nothing stays loaded.
    pub fn load_with(
        path: impl AsRef<Path>,
        options: &ModelOptions,
        progress: impl FnMut(f32) + 'static,
        cancel: &CancelToken,
    ) -> Result<Model> {
        Model::load_for(path.as_ref(), options, progress, cancel, Purpose::Chat)
    }

    /// Validates and loads a model to compute embeddings with (see
    /// [`crate::Embedder`]): an embedding model (BERT family: all-MiniLM,
    /// bge, e5, nomic-embed), which [`Model::load`] refuses because it cannot
    /// chat, or a chat model. Other kinds (speech, diffusion, …) get
    /// [`Error::CannotEmbed`] before llama.cpp sees the file.
    pub fn load_for_embeddings(path: impl AsRef<Path>, options: &ModelOptions) -> Result<Model> {
        Model::load_for(path.as_ref(), options, |_| {}, &CancelToken::new(), Purpose::Embeddings)
    }

    fn load_for(
        path: &Path,
        options: &ModelOptions,
        progress: impl FnMut(f32) + 'static,
        cancel: &CancelToken,
        purpose: Purpose,
    ) -> Result<Model> {
        let path = path.to_path_buf();
        let started = Instant::now();
        let cancelled = || Error::LoadCancelled { path: path.clone() };
        let gguf = inspect_file(&path)?;
        match purpose {
            Purpose::Chat => check_can_chat(&gguf, &path)?,
            Purpose::Embeddings => check_can_embed(&gguf, &path)?,
        }
        let identity =
            ModelIdentity::of_file(&path, &gguf).map_err(|e| Error::ModelUnreadable { path: path.clone(), reason: e.to_string() })?;
        let llama_backend = backend()?;
        let choice = super::backend::choose(options.backend, options.gpu_layers, &gguf);
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        let progress = LoadProgress::new(progress, cancel);
        let mut backend = choice.info;
        // On the GPU the weights are mapped: they are copied to the device,
        // not kept twice on the host. A failed GPU load falls back to the CPU.
        let on_gpu = choice.gpu.map(|device| {
            let params = LlamaModelParams::default()
                .with_use_mmap(true)
                .with_n_gpu_layers(backend.gpu_layers)
                .with_devices(&[device])
                .expect("the device index comes from ggml's list")
                .with_progress_callback(progress.callback());
            let loaded = LlamaModel::load_from_file(llama_backend, &path, &params);
            progress.rethrow();
            match loaded {
                Ok(llama) => Ok(Some(llama)),
                Err(_) if cancel.is_cancelled() => Err(cancelled()),
                Err(_) => {
                    let reason = format!("loading onto {} failed (see the llama.cpp log)", backend.device);
                    backend = backend.clone().fall_back_to_cpu(reason);
                    Ok(None)
                }
            }
        });
        let (llama, weights) = match on_gpu.transpose()?.flatten() {
            Some(llama) => (llama, WeightLoading::Mmap),
            None => {
                let weights = options.weights.resolve(&gguf);
                let params = LlamaModelParams::default()
                    .with_use_mmap(weights == WeightLoading::Mmap)
                    .with_n_gpu_layers(0)
                    .with_devices(&[])
                    .expect("an empty device list is valid")
                    .with_progress_callback(progress.callback());
                let loaded = LlamaModel::load_from_file(llama_backend, &path, &params);
                progress.rethrow();
                let llama =
                    loaded.map_err(|_| if cancel.is_cancelled() { cancelled() } else { Error::ModelLoadFailed { path: path.clone() } })?;
                (llama, weights)
            }
        };
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        progress.report(1.0);
        progress.rethrow();
        let load_ms = started.elapsed().as_secs_f64() * 1000.0;
        let prompt = choose_prompt_format(&gguf, &llama);
        let mut info = describe(&gguf);
        if info.vocab_size == 0 {
            info.vocab_size = llama.n_vocab().max(0) as u64;
        }
        info.prompt_format = match prompt {
            PromptFormat::Jinja(_) => "jinja",
            PromptFormat::LlamaCpp(_) => "llama.cpp",
            PromptFormat::Plain => "plain",
        }
        .to_string();
        log::info!(
            "loaded {} ({}, {}, weights {}) in {load_ms:.0} ms on {} ({})",
            path.display(),
            info.architecture,
            info.quantization,
            weights.as_str(),
            backend.backend,
            backend.device
        );
        LIVE_MODELS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Model {
            inner: Arc::new(ModelInner {
                llama,
                info,
                gguf,
                path,
                load_ms,
                prompt,
                weights,
                backend,
                identity,
                constraints: OnceLock::new(),
                tool_format: OnceLock::new(),
            }),
        })
    }

    /// What the model is.
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How long loading took, in milliseconds.
    pub fn load_ms(&self) -> f64 {
        self.inner.load_ms
    }

    /// How the weights were loaded (`Mmap` or `Read`).
    pub fn weight_loading(&self) -> WeightLoading {
        self.inner.weights
    }

    /// Where the model runs, and why (a GPU request that fell back to the CPU
    /// says so in `fallback_reason`).
    pub fn backend(&self) -> &BackendInfo {
        &self.inner.backend
    }

    /// Which file this is: its size and the SHA-256 of its GGUF header
    /// (what a saved session is bound to).
    pub fn identity(&self) -> &ModelIdentity {
        &self.inner.identity
    }

    /// SHA-256 (hex) of the chat template prompts are rendered with (empty
    /// text for plain completion).
    pub fn template_digest(&self) -> String {
        hex_digest(match &self.inner.prompt {
            PromptFormat::Jinja(t) => t.source(),
            PromptFormat::LlamaCpp(source) => source.as_str(),
            PromptFormat::Plain => "",
        })
    }

    /// The parsed GGUF header and tensor table.
    pub fn gguf(&self) -> &GgufFile {
        &self.inner.gguf
    }

    /// Tokenizes prompt text the way the engine does: special tokens such as
    /// `<|im_start|>` are parsed, and BOS is added only when the model wants
    /// one and the text does not already start with it.
    pub fn tokenize(&self, text: &str) -> Vec<i32> {
        self.tokenize_llama(text).into_iter().map(|t| t.0).collect()
    }

    /// Tokenizes `text` as plain text, the way message content is: no BOS,
    /// and control-token strings such as `<|im_start|>` stay ordinary text.
    pub fn tokenize_plain(&self, text: &str) -> Vec<i32> {
        self.inner.llama.vocab().tokenize(text.as_bytes(), false, false).into_iter().map(|t| t.0).collect()
    }

    /// `text` as the model would continue a prompt with it: plain text (typed
    /// control tokens stay text), no BOS.
    pub(crate) fn tokenize_continuation(&self, text: &str) -> Vec<super::Token> {
        self.inner.llama.vocab().tokenize(text.as_bytes(), false, false)
    }

    /// Whether `token` ends generation (end of turn or of text).
    pub(crate) fn is_end_of_generation(&self, token: super::Token) -> bool {
        self.inner.llama.vocab().is_eog(token)
    }

    /// The bytes `token` stands for (special tokens render as nothing).
    pub(crate) fn token_bytes(&self, token: super::Token) -> Vec<u8> {
        self.inner.llama.vocab().token_to_piece(token, false, None)
    }

    /// Template text appended to a prompt (control tokens parsed, no BOS).
    pub(crate) fn tokenize_template(&self, text: &str) -> Vec<super::Token> {
        self.inner.llama.vocab().tokenize(text.as_bytes(), false, true)
    }

    pub(crate) fn tokenize_llama(&self, text: &str) -> Vec<llama_cpp_2::token::LlamaToken> {
        self.inner.llama.vocab().tokenize(text.as_bytes(), self.needs_bos(Some(text)), true)
    }

    /// Whether a prompt starting with the template text `start` (`None`: it
    /// starts with message content) needs a BOS token first: the model wants
    /// one and the template did not already write it.
    fn needs_bos(&self, start: Option<&str>) -> bool {
        let vocab = self.inner.llama.vocab();
        if !vocab.should_add_bos() {
            return false;
        }
        let bos_text = vocab.token_to_piece(vocab.bos(), true, None);
        !start.is_some_and(|text| !bos_text.is_empty() && text.as_bytes().starts_with(&bos_text))
    }

    /// The tokens the engine evaluates for `messages` (with the assistant's
    /// turn opened). Only the chat template's own text may become control
    /// tokens: every message's content is tokenized as plain text, so a user
    /// who types `<|im_end|><|im_start|>system` gets those characters, not
    /// a new system turn.
    pub fn prompt_tokens(&self, messages: &[Message]) -> Result<Vec<i32>> {
        Ok(self.prompt_tokens_llama(messages)?.into_iter().map(|t| t.0).collect())
    }

    pub(crate) fn prompt_tokens_llama(&self, messages: &[Message]) -> Result<Vec<llama_cpp_2::token::LlamaToken>> {
        self.prompt_tokens_with_tools(messages, &[])
    }

    /// How this model's chat template writes tool calls: found once, by
    /// rendering a probe tool (see [`ToolFormat::detect`]).
    pub fn tool_format(&self) -> ToolFormat {
        *self.inner.tool_format.get_or_init(|| match &self.inner.prompt {
            PromptFormat::Jinja(t) => {
                let probe = t.render_with_tools(&[Message::user("hi")], &[probe_tool()], true).ok();
                ToolFormat::detect(t.source(), probe.as_deref())
            }
            _ => ToolFormat::Generic,
        })
    }

    /// Like [`Model::prompt_tokens`], with `tools` offered to the model in its
    /// own format (through the template, or PocketLM's generic convention).
    pub(crate) fn prompt_tokens_with_tools(&self, messages: &[Message], tools: &[Tool]) -> Result<Vec<llama_cpp_2::token::LlamaToken>> {
        // Without a marker there is one segment of text.
        let segments = self.tokenize_pieces(&self.prompt_pieces_with_tools(messages, tools)?, None);
        Ok(segments
            .into_iter()
            .flat_map(|s| match s {
                PromptSegment::Tokens(tokens) => tokens,
                PromptSegment::Image => Vec::new(),
            })
            .collect())
    }

    /// Like `prompt_tokens_with_tools`, for messages whose content holds
    /// `marker` where an image goes: the tokens between the images, and
    /// a [`PromptSegment::Image`] at each marker.
    pub(crate) fn prompt_segments_with_tools(&self, messages: &[Message], tools: &[Tool], marker: &str) -> Result<Vec<PromptSegment>> {
        Ok(self.tokenize_pieces(&self.prompt_pieces_with_tools(messages, tools)?, Some(marker)))
    }

    fn prompt_pieces_with_tools(&self, messages: &[Message], tools: &[Tool]) -> Result<Vec<PromptPiece>> {
        let uses_tools = !tools.is_empty() || messages.iter().any(|m| m.role == Role::Tool || !m.tool_calls.is_empty());
        if !uses_tools {
            return self.prompt_pieces_rendered(messages, &[]);
        }
        // Tool calls and declarations are written by the template, so they
        // are template text: they must not smuggle control tokens in.
        let declared = tools.iter().map(|t| format!("{}{}{}", t.name, t.description, t.parameters));
        let called = messages.iter().flat_map(|m| &m.tool_calls).map(|c| format!("{}{}", c.name, c.arguments));
        if declared.chain(called).any(|text| self.has_control_text(&text)) {
            return Err(Error::Template(
                "a tool declaration or tool call contains control-token text (such as <|im_start|>); remove it".into(),
            ));
        }
        if self.tool_format() == ToolFormat::Generic {
            return self.prompt_pieces_rendered(&generic_tool_messages(messages, tools), &[]);
        }
        self.prompt_pieces_rendered(messages, tools)
    }

    fn prompt_pieces_rendered(&self, messages: &[Message], tools: &[Tool]) -> Result<Vec<PromptPiece>> {
        let render = |messages: &[Message]| match &self.inner.prompt {
            PromptFormat::Jinja(t) if !tools.is_empty() => t.render_with_tools(messages, tools, true),
            _ => self.render_prompt(messages, true),
        };
        let prompt = render(messages)?;
        let pieces = match &self.inner.prompt {
            // Plain completion has no template text: everything is content.
            PromptFormat::Plain => vec![PromptPiece::Content(prompt)],
            _ => match split_prompt(&prompt, messages, render) {
                Some(pieces) => pieces,
                // A template that rewrites content cannot be split. Tokenizing
                // the whole prompt is safe only when no content holds text
                // that would become a control token.
                None if messages.iter().all(|m| !self.has_control_text(&m.content)) => vec![PromptPiece::Template(prompt)],
                None => {
                    return Err(Error::Template(
                        "a message contains control-token text (such as <|im_start|>) and this model's chat template rewrites message content, so PocketLM cannot keep that text plain; remove it from the message".into(),
                    ))
                }
            },
        };
        Ok(pieces)
    }

    /// Whether `text` would hold a control token if special tokens were parsed.
    fn has_control_text(&self, text: &str) -> bool {
        let vocab = self.inner.llama.vocab();
        vocab.tokenize(text.as_bytes(), false, true) != vocab.tokenize(text.as_bytes(), false, false)
    }

    /// Template text is tokenized with control tokens parsed, content as
    /// plain text; BOS comes first when the model wants one and the template
    /// did not already write it. Each `marker` in the text (an image's
    /// place) ends a segment of tokens and stands as a [`PromptSegment::Image`].
    fn tokenize_pieces(&self, pieces: &[PromptPiece], marker: Option<&str>) -> Vec<PromptSegment> {
        let vocab = self.inner.llama.vocab();
        let mut segments = Vec::new();
        let mut current = Vec::new();
        let start = match pieces.first() {
            Some(PromptPiece::Template(text)) => Some(text.as_str()),
            _ => None,
        };
        if self.needs_bos(start) {
            current.push(vocab.bos());
        }
        for piece in pieces {
            let (text, special) = match piece {
                PromptPiece::Template(text) => (text.as_str(), true),
                PromptPiece::Content(text) => (text.as_str(), false),
            };
            let parts: Vec<&str> = marker.map_or_else(|| vec![text], |m| text.split(m).collect());
            for (i, part) in parts.into_iter().enumerate() {
                if i > 0 {
                    segments.push(PromptSegment::Tokens(std::mem::take(&mut current)));
                    segments.push(PromptSegment::Image);
                }
                current.extend(vocab.tokenize(part.as_bytes(), false, special));
            }
        }
        segments.push(PromptSegment::Tokens(current));
        segments
    }

    /// Renders `messages` into the prompt text the model sees.
    pub fn render_prompt(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        match &self.inner.prompt {
            PromptFormat::Jinja(t) => t.render(messages, add_generation_prompt),
            PromptFormat::LlamaCpp(source) => {
                let tmpl = LlamaChatTemplate::new(source).map_err(|e| Error::Template(e.to_string()))?;
                let chat = messages
                    .iter()
                    .map(|m| {
                        let role = serde_json::to_value(m.role).ok().and_then(|v| v.as_str().map(str::to_owned));
                        LlamaChatMessage::new(role.unwrap_or_default(), m.content.clone())
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| Error::Template(format!("a message contains a NUL byte: {e}")))?;
                self.inner
                    .llama
                    .apply_chat_template(&tmpl, &chat, add_generation_prompt)
                    .map_err(|e| Error::Template(format!("llama.cpp could not apply the chat template: {e}")))
            }
            PromptFormat::Plain => Ok(render_plain(messages)),
        }
    }
}

/// A stretch of a rendered prompt: text tokens, or the place of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PromptSegment {
    /// Text, tokenized.
    Tokens(Vec<llama_cpp_2::token::LlamaToken>),
    /// The next image of the messages, in order.
    Image,
}

/// The GGUF header of a file that goes beside a model (a LoRA adapter, a
/// vision projector), opened from `path`: not a directory, at most
/// `max_bytes` long (else the error `too_large` makes of a reason), and
/// well formed.
pub(crate) fn read_side_header(
    file: &std::fs::File,
    path: &Path,
    max_bytes: u64,
    too_large: impl FnOnce(String) -> Error,
) -> Result<GgufFile> {
    let meta = file.metadata().map_err(|e| Error::from_io(path.to_path_buf(), &e))?;
    if meta.is_dir() {
        return Err(Error::ModelUnreadable { path: path.to_path_buf(), reason: "it is a directory".into() });
    }
    if meta.len() > max_bytes {
        return Err(too_large(format!("it is {} bytes, more than the {max_bytes} it may be", meta.len())));
    }
    GgufFile::read_open(file).map_err(|e| Error::from_io(path.to_path_buf(), &e))?.map_err(|e| Error::from_gguf(path.to_path_buf(), e))
}

/// SHA-256 (hex) of the whole of an open `file`, read from its start.
pub(crate) fn file_sha256(file: &std::fs::File) -> std::io::Result<String> {
    use std::io::Seek;
    let mut file = file;
    file.rewind()?;
    crate::session_file::hex_digest_of(file)
}

/// Reads and validates a model file's header and tensor table without loading
/// any weights. This is what [`Model::load`] checks before calling llama.cpp.
pub fn inspect_file(path: &Path) -> Result<GgufFile> {
    let meta = std::fs::metadata(path).map_err(|e| Error::from_io(path.to_path_buf(), &e))?;
    if meta.is_dir() {
        return Err(Error::ModelUnreadable { path: path.to_path_buf(), reason: "it is a directory".into() });
    }
    let gguf =
        GgufFile::read(path).map_err(|e| Error::from_io(path.to_path_buf(), &e))?.map_err(|e| Error::from_gguf(path.to_path_buf(), e))?;
    let architecture = gguf.architecture().unwrap_or("(missing)").to_string();
    if !crate::arch::is_supported(&architecture) {
        return Err(Error::UnsupportedArchitecture { path: path.to_path_buf(), architecture });
    }
    if gguf.tensors.is_empty() {
        return Err(Error::ModelCorrupt { path: path.to_path_buf(), detail: "it contains no tensors".into() });
    }
    Ok(gguf)
}

/// What a model is loaded for, which decides the check made before llama.cpp sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Chat,
    Embeddings,
}

/// Refuses, before llama.cpp sees the file, an architecture that can neither
/// encode nor decode text (speech, diffusion, draft heads, encoder-decoders).
fn check_can_embed(gguf: &GgufFile, path: &Path) -> Result<()> {
    use crate::arch::ArchKind;
    let kind = crate::arch::kind(gguf.architecture().unwrap_or_default());
    if let other @ (ArchKind::EncoderDecoder | ArchKind::Audio | ArchKind::Diffusion | ArchKind::DraftHead) = kind {
        return Err(Error::CannotEmbed {
            path: path.display().to_string(),
            reason: other.why_not_chat().unwrap_or("it has no text encoder").to_string(),
        });
    }
    // BERT-family graphs add the token-type row straight to F32 activations,
    // and ggml's CPU add aborts the process on any other type there.
    match gguf.tensors.iter().find(|t| t.name == "token_types.weight") {
        Some(t) if t.ggml_type.name != "F32" => Err(Error::ModelCorrupt {
            path: path.to_path_buf(),
            detail: format!("its token_types.weight is {}, but llama.cpp needs it in F32; convert the model again", t.ggml_type.name),
        }),
        _ => Ok(()),
    }
}

/// Refuses, before llama.cpp sees the file, an architecture that loads but
/// cannot chat (see [`crate::arch::kind`]).
pub(crate) fn check_can_chat(gguf: &GgufFile, path: &Path) -> Result<()> {
    let architecture = gguf.architecture().unwrap_or_default();
    match crate::arch::kind(architecture).why_not_chat() {
        None => Ok(()),
        Some(reason) => {
            Err(Error::NotAChatModel { path: path.to_path_buf(), architecture: architecture.to_string(), reason: reason.to_string() })
        }
    }
}

/// Model info from the GGUF metadata alone.
pub fn describe(gguf: &GgufFile) -> ModelInfo {
    let architecture = gguf.architecture().unwrap_or_default().to_string();
    let vocab_size = match gguf.get("tokenizer.ggml.tokens") {
        Some(crate::gguf::GgufValue::Array { len, .. }) => *len,
        _ => gguf.arch_u64("vocab_size").unwrap_or(0),
    };
    ModelInfo {
        name: gguf.get_str("general.name").map(str::to_owned),
        parameter_count: gguf.n_params(),
        quantization: quantization_name(gguf),
        file_size_bytes: gguf.file_size,
        context_length_trained: gguf.arch_u64("context_length").unwrap_or(0),
        vocab_size,
        layers: gguf.arch_u64("block_count").unwrap_or(0),
        embedding_length: gguf.arch_u64("embedding_length").unwrap_or(0),
        has_chat_template: gguf.get_str("tokenizer.chat_template").is_some(),
        prompt_format: if gguf.get_str("tokenizer.chat_template").is_some() { "jinja" } else { "plain" }.to_string(),
        architecture,
    }
}

fn quantization_name(gguf: &GgufFile) -> String {
    let by_ftype = gguf.get_u64("general.file_type").and_then(|ft| {
        Some(match ft {
            0 => "F32",
            1 => "F16",
            2 => "Q4_0",
            3 => "Q4_1",
            7 => "Q8_0",
            8 => "Q5_0",
            9 => "Q5_1",
            10 => "Q2_K",
            11 => "Q3_K_S",
            12 => "Q3_K_M",
            13 => "Q3_K_L",
            14 => "Q4_K_S",
            15 => "Q4_K_M",
            16 => "Q5_K_S",
            17 => "Q5_K_M",
            18 => "Q6_K",
            19 => "IQ2_XXS",
            20 => "IQ2_XS",
            21 => "Q2_K_S",
            22 => "IQ3_XS",
            23 => "IQ3_XXS",
            24 => "IQ1_S",
            25 => "IQ4_NL",
            26 => "IQ3_S",
            27 => "IQ3_M",
            28 => "IQ2_S",
            29 => "IQ2_M",
            30 => "IQ4_XS",
            31 => "IQ1_M",
            32 => "BF16",
            36 => "TQ1_0",
            37 => "TQ2_0",
            38 => "MXFP4_MOE",
            _ => return None,
        })
    });
    if let Some(name) = by_ftype {
        return name.to_string();
    }
    // No (known) file type: name the type holding the most bytes.
    let mut bytes: std::collections::BTreeMap<&str, u64> = Default::default();
    for t in &gguf.tensors {
        *bytes.entry(t.ggml_type.name).or_default() += t.size_bytes;
    }
    bytes.into_iter().max_by_key(|&(_, b)| b).map_or_else(|| "unknown".into(), |(n, _)| n.to_string())
}

fn token_text(gguf: &GgufFile, llama: &LlamaModel, key: &str) -> String {
    let Some(id) = gguf.get_u64(key) else { return String::new() };
    let token = llama_cpp_2::token::LlamaToken::new(id as i32);
    if id >= llama.n_vocab().max(0) as u64 {
        return String::new();
    }
    String::from_utf8_lossy(&llama.vocab().token_to_piece(token, true, None)).into_owned()
}

fn choose_prompt_format(gguf: &GgufFile, llama: &LlamaModel) -> PromptFormat {
    let Some(source) = gguf.get_str("tokenizer.chat_template") else { return PromptFormat::Plain };
    let bos = token_text(gguf, llama, "tokenizer.ggml.bos_token_id");
    let eos = token_text(gguf, llama, "tokenizer.ggml.eos_token_id");
    let template = ChatTemplate::new(source, &bos, &eos);
    // A template must also render a simple exchange to be trusted.
    match template {
        Ok(t) if t.render(&[Message::user("u")], true).is_ok() => PromptFormat::Jinja(Box::new(t)),
        Ok(_) | Err(_) => {
            log::warn!("the model's Jinja chat template failed to render; using llama.cpp's built-in template detection");
            PromptFormat::LlamaCpp(source.to_string())
        }
    }
}
