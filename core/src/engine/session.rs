//! One llama.cpp context and the bookkeeping of what its KV cache holds.
//!
//! [`Session::prefill`] is where KV-cache reuse happens: the cache keeps the
//! longest common prefix with the new prompt and only the rest is evaluated.
//! It is also where cancellation must be quick: a prompt batch takes seconds on
//! a phone CPU, so llama.cpp's abort callback checks the request's
//! [`CancelToken`] between the graph nodes of a batch.

use std::ffi::c_void;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::session::LlamaStateSeqFlags;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;
use llama_cpp_sys_2::llama_context_params;

use super::adapter::LoraAdapter;
use super::model::Model;
use super::sampler::Sampler;
use super::vision::Projector;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::plan::KvType;

fn kv_cache_type(t: KvType) -> llama_cpp_2::context::params::KvCacheType {
    use llama_cpp_2::context::params::KvCacheType;
    match t {
        KvType::F16 => KvCacheType::F16,
        KvType::Q8_0 => KvCacheType::Q8_0,
        KvType::Q4_0 => KvCacheType::Q4_0,
    }
}

/// What llama.cpp's abort callback reads: the flag of the [`CancelToken`] of
/// the prefill in progress, or null outside [`Session::prefill`].
///
/// Only the thread running `llama_decode` reads it (ggml's CPU backend calls
/// the callback from its first worker thread between graph nodes, while
/// `prefill` waits), and only `prefill` writes it, before and after decoding.
/// The atomic makes that hand-over between threads well-defined.
#[derive(Default)]
struct AbortSlot(AtomicPtr<AtomicBool>);

/// llama.cpp's `ggml_abort_callback`: `true` stops the batch being evaluated.
/// A relaxed-cost check (two atomic loads) called once per graph node.
unsafe extern "C" fn abort_requested(data: *mut c_void) -> bool {
    // SAFETY: `data` is the session's boxed `AbortSlot`. The box is a field
    // declared after the context, so it outlives every call llama.cpp makes.
    let slot = unsafe { &*data.cast::<AbortSlot>() };
    let flag = slot.0.load(Ordering::Acquire);
    // SAFETY: the pointer is non-null only inside `prefill`, which borrows the
    // token owning the flag for the whole time it is set (see `Armed`).
    !flag.is_null() && unsafe { (*flag).load(Ordering::Acquire) }
}

/// Clears the abort slot when a prefill ends, on every path (panics included),
/// so the callback never reads the flag of a token that is gone.
struct Armed(*const AbortSlot);

impl Drop for Armed {
    fn drop(&mut self) {
        // SAFETY: points into the session's box, which outlives this guard
        // (the guard is a local of a `&mut self` method).
        unsafe { (*self.0).0.store(std::ptr::null_mut(), Ordering::Release) };
    }
}

// llama-cpp-2 (pinned at =0.1.160) has no setter for the abort callback, and
// both the raw `llama_context_params` inside `LlamaContextParams` and the
// context's raw pointer (for `llama_set_abort_callback`) are crate-private.
// In that release `LlamaContextParams` is a struct with exactly one field,
// `context_params: llama_context_params`. A struct whose size equals the size
// of one of its fields holds nothing else that takes space: that field spans
// the whole struct, so it sits at offset 0 and a pointer to the wrapper is a
// valid pointer to it (zero-sized fields, if any were ever added, carry no
// data). These assertions fail the build if an upgrade changes the size or the
// alignment; an upgrade that adds a proper setter should replace this.
const _: () = {
    assert!(std::mem::size_of::<LlamaContextParams>() == std::mem::size_of::<llama_context_params>());
    assert!(std::mem::align_of::<LlamaContextParams>() == std::mem::align_of::<llama_context_params>());
};

/// Installs [`abort_requested`] with `slot` as its data.
fn with_abort_callback(mut params: LlamaContextParams, slot: *const AbortSlot) -> LlamaContextParams {
    let raw = std::ptr::addr_of_mut!(params).cast::<llama_context_params>();
    // SAFETY: see the layout argument above; the fields written are plain
    // C data (a function pointer and a `void *`).
    unsafe {
        (*raw).abort_callback = Some(abort_requested);
        (*raw).abort_callback_data = slot.cast_mut().cast::<c_void>();
    }
    params
}

/// The final hidden states of the last evaluated batch's outputs, one row
/// of `width` floats per output position, in batch order. llama.cpp's
/// scheduler hands the tensor named `result_norm` (the output norm, just
/// before the vocabulary projection) to [`tap_states`] as it is computed.
/// Reading states this way leaves the logits and the outputs unchanged:
/// turning on llama.cpp's embeddings instead would make every prompt token
/// an output, with full-vocabulary logits for each.
#[derive(Default)]
struct StateTap(std::sync::Mutex<(usize, Vec<f32>)>);

impl StateTap {
    /// Runs `read` on the last batch's rows and their width, without copying them.
    fn read<T>(&self, read: impl FnOnce(usize, &[f32]) -> T) -> T {
        let guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        read(guard.0, &guard.1)
    }
}

/// The name llama.cpp's graphs give the final hidden state (llama, qwen2, gemma3, phi3, …).
const HIDDEN_STATE_TENSOR: &[u8] = b"result_norm";

/// ggml's scheduler eval callback: asks (`ask`) for the hidden-state tensor
/// only, then copies it into the session's [`StateTap`]. Returning `true`
/// when observing lets the graph continue.
unsafe extern "C" fn tap_states(t: *mut llama_cpp_sys_2::ggml_tensor, ask: bool, data: *mut c_void) -> bool {
    // SAFETY: ggml passes a live tensor of the graph being computed.
    let tensor = unsafe { &*t };
    // SAFETY: ggml tensor names are NUL-terminated within their 64 bytes.
    let name = unsafe { std::ffi::CStr::from_ptr(tensor.name.as_ptr()) };
    if name.to_bytes() != HIDDEN_STATE_TENSOR {
        return !ask;
    }
    if ask {
        return true;
    }
    let (width, rows) = (tensor.ne[0].max(0) as usize, tensor.ne[1].max(0) as usize);
    let contiguous_f32 = tensor.type_ == llama_cpp_sys_2::GGML_TYPE_F32 && tensor.nb[0] == 4 && tensor.nb[1] == width * 4;
    let mut states = vec![0f32; if contiguous_f32 { width * rows } else { 0 }];
    if !states.is_empty() {
        // SAFETY: the tensor holds `width * rows` f32 values (checked above);
        // ggml copies them from whichever backend holds them.
        unsafe { llama_cpp_sys_2::ggml_backend_tensor_get(t, states.as_mut_ptr().cast(), 0, states.len() * 4) };
    }
    // SAFETY: `data` is the session's boxed `StateTap`, which outlives the context.
    let tap = unsafe { &*data.cast::<StateTap>() };
    *tap.0.lock().unwrap_or_else(|p| p.into_inner()) = (width, states);
    true
}

/// Installs [`tap_states`] with `tap` as its data (see the layout argument
/// at [`with_abort_callback`]).
fn with_state_tap(mut params: LlamaContextParams, tap: *const StateTap) -> LlamaContextParams {
    let raw = std::ptr::addr_of_mut!(params).cast::<llama_context_params>();
    // SAFETY: as in `with_abort_callback`: plain C data in the one field.
    unsafe {
        (*raw).cb_eval = Some(tap_states);
        (*raw).cb_eval_user_data = tap.cast_mut().cast::<c_void>();
    }
    params
}

/// What `llama_decode` did with a batch.
enum Decoded {
    Done,
    /// The abort callback stopped it; the cache holds exactly `cached` again.
    Aborted,
}

/// llama_decode's return value for an aborted batch (see llama.h).
const DECODE_ABORTED: i32 = 2;

/// The llama.cpp build whose KV-state layout saved sessions hold: a state
/// is loaded only by the build that wrote it (the `llama-cpp-sys-2` pin in
/// the workspace `Cargo.toml`; a test keeps the two equal).
pub const STATE_LAYOUT: &str = "llama.cpp via llama-cpp-sys-2 0.1.160";

/// Context settings fixed for a session's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionParams {
    pub context_length: u32,
    pub threads: u32,
    pub batch_size: u32,
    pub kv_type: KvType,
    pub full_swa_cache: bool,
    /// Keep each output position's final hidden state next to its logits
    /// (for the router probe): llama.cpp copies `n_embd` floats per output.
    pub hidden_states: bool,
}

/// How a prefill went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefill {
    /// Tokens kept from the cache.
    pub reused: usize,
    /// Tokens evaluated now.
    pub evaluated: usize,
    /// Whether cancellation interrupted it.
    pub cancelled: bool,
}

/// One stretch of a prompt for [`Session::prefill_parts`].
pub(crate) enum PromptPart<'a> {
    /// Text tokens.
    Tokens(&'a [LlamaToken]),
    /// An image, with the cache keys of the positions it takes
    /// ([`Projector::group_keys`]) and the projector that encodes it.
    Image { image: &'a Image, keys: &'a [LlamaToken], projector: &'a Projector },
}

impl PromptPart<'_> {
    fn keys(&self) -> &[LlamaToken] {
        match self {
            PromptPart::Tokens(tokens) => tokens,
            PromptPart::Image { keys, .. } => keys,
        }
    }

    fn len(&self) -> usize {
        self.keys().len()
    }
}

pub(crate) struct Session {
    // Declared before `model` so it is dropped first: it borrows the model.
    ctx: LlamaContext<'static>,
    model: Model,
    /// Exactly the tokens in the KV cache (sequence 0), in order.
    cached: Vec<LlamaToken>,
    /// Batch index whose logits the next sample reads.
    logits_index: i32,
    params: SessionParams,
    /// Sliding-window size of SWA layers (Gemma 3), 0 if none.
    swa_window: u32,
    /// Read by llama.cpp's abort callback. Declared after `ctx` so it is
    /// dropped after it; boxed so its address survives moves of the session.
    abort: Box<AbortSlot>,
    /// Written by llama.cpp's eval callback when hidden states are kept
    /// (same lifetime rules as `abort`).
    tap: Box<StateTap>,
    /// The LoRA adapters set on the context, with their scales. Declared
    /// after `ctx`, which points at them, so they outlive it.
    adapters: Vec<(LoraAdapter, f32)>,
    /// The adapters changed since the last decode: llama.cpp re-plans the
    /// graph on the next one, walking the model's list of adapters, which
    /// loading or freeing an adapter elsewhere edits (see `decode`).
    replan_pending: bool,
}

// SAFETY: a llama.cpp context may move between threads as long as only one
// uses it at a time, which `&mut self` on every method guarantees.
unsafe impl Send for Session {}

impl Session {
    pub fn new(model: &Model, params: SessionParams) -> Result<Session> {
        // A model loaded for embeddings may be an encoder, which cannot chat.
        super::model::check_can_chat(model.gguf(), model.path())?;
        let ctx_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(params.context_length))
            .with_n_batch(params.batch_size)
            .with_n_ubatch(params.batch_size)
            .with_n_threads(params.threads as i32)
            .with_n_threads_batch(params.threads as i32)
            .with_type_k(kv_cache_type(params.kv_type))
            .with_type_v(kv_cache_type(params.kv_type))
            .with_swa_full(params.full_swa_cache);
        let abort = Box::<AbortSlot>::default();
        let ctx_params = with_abort_callback(ctx_params, &*abort);
        let tap = Box::<StateTap>::default();
        let ctx_params = if params.hidden_states { with_state_tap(ctx_params, &*tap) } else { ctx_params };
        // SAFETY: the session holds a clone of `model` (field `model`, declared
        // after `ctx`), so the weights outlive the context.
        let ctx = unsafe { model.new_context(ctx_params, params.context_length)? };
        let swa_window = if model.gguf().architecture().is_some_and(|a| a.starts_with("gemma")) {
            model.gguf().arch_u64("attention.sliding_window").unwrap_or(0) as u32
        } else {
            0
        };
        Ok(Session {
            ctx,
            model: model.clone(),
            cached: Vec::new(),
            logits_index: -1,
            params,
            swa_window,
            abort,
            tap,
            adapters: Vec::new(),
            replan_pending: false,
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The settings the session was made with.
    pub fn params(&self) -> SessionParams {
        self.params
    }

    pub fn context_length(&self) -> u32 {
        self.params.context_length
    }

    /// Tokens currently in the KV cache.
    pub fn cached_len(&self) -> usize {
        self.cached.len()
    }

    /// Drops everything from the KV cache.
    pub fn clear(&mut self) {
        self.ctx.clear_kv_cache();
        self.cached.clear();
        self.logits_index = -1;
    }

    /// The LoRA adapters set on this session, with their scales.
    pub fn adapters(&self) -> &[(LoraAdapter, f32)] {
        &self.adapters
    }

    /// Sets the LoRA adapters applied from the next evaluation on, replacing
    /// those set before (an empty list detaches them all). Each must be
    /// loaded onto this session's model, at most once, with a finite scale.
    ///
    /// llama.cpp does not touch the KV cache when adapters change, yet what
    /// it holds was computed with the old weights: so when the adapters that
    /// count (a scale of 0 changes nothing) differ, the cache is dropped and
    /// the next prompt is evaluated in full.
    pub fn set_adapters(&mut self, adapters: &[(LoraAdapter, f32)]) -> Result<()> {
        for (i, (adapter, scale)) in adapters.iter().enumerate() {
            if !adapter.belongs_to(&self.model) {
                return Err(Error::AdapterMismatch {
                    path: adapter.info().path.clone(),
                    reason: "it was loaded onto another model; load it onto this conversation's model".into(),
                });
            }
            if !scale.is_finite() {
                return Err(Error::InvalidOption {
                    name: "adapter scale",
                    value: scale.to_string(),
                    expected: "a finite number (1 applies the adapter as trained, 0 turns it off)".into(),
                });
            }
            if adapters[..i].iter().any(|(other, _)| other == adapter) {
                return Err(Error::InvalidOption {
                    name: "adapters",
                    value: adapter.info().path.display().to_string(),
                    expected: "each adapter once (give it one scale)".into(),
                });
            }
        }
        if active(adapters) != active(&self.adapters) {
            let ctx = raw_context(&self.ctx, &self.model)?;
            let mut pointers: Vec<_> = adapters.iter().map(|(a, _)| a.raw()).collect();
            let mut scales: Vec<f32> = adapters.iter().map(|&(_, s)| s).collect();
            let (p, s) = if adapters.is_empty() {
                (std::ptr::null_mut(), std::ptr::null_mut())
            } else {
                (pointers.as_mut_ptr(), scales.as_mut_ptr())
            };
            // SAFETY: `ctx` is this session's live context; the pointers are
            // adapters loaded onto its model, kept alive by `self.adapters`
            // for as long as the context may read them; llama.cpp copies the
            // list and the scales.
            unsafe { llama_cpp_sys_2::llama_set_adapters_lora(ctx, p, adapters.len(), s) };
            self.replan_pending = true;
            self.clear();
        }
        self.adapters = adapters.to_vec();
        Ok(())
    }

    /// Brings the KV cache to `tokens`: keeps the longest common prefix with
    /// what is cached, evicts the rest, and evaluates the new suffix. At least
    /// the last token is always evaluated, so its logits are ready to sample.
    ///
    /// `cancel` is checked between batches and, on the CPU backend, inside
    /// each batch by llama.cpp (between graph nodes, a few milliseconds
    /// apart). A cancelled prefill returns `cancelled: true`, not an error,
    /// and keeps every batch already evaluated, so the next prompt with the
    /// same prefix still reuses it. GPU backends ignore the abort callback:
    /// there the check is between batches only.
    #[cfg_attr(not(any(test, feature = "bench")), allow(dead_code))]
    pub fn prefill(&mut self, tokens: &[LlamaToken], cancel: &CancelToken) -> Result<Prefill> {
        self.prefill_parts(&[PromptPart::Tokens(tokens)], cancel)
    }

    /// [`Session::prefill`] for a prompt with images: the cache is compared
    /// by keys (text tokens, and each image's pseudo-tokens), a reused
    /// prefix never ends inside an image (one is evaluated whole, or not at
    /// all), and each image not cached is encoded by its projector.
    pub fn prefill_parts(&mut self, parts: &[PromptPart<'_>], cancel: &CancelToken) -> Result<Prefill> {
        let total: usize = parts.iter().map(PromptPart::len).sum();
        if total == 0 {
            return Err(Error::Inference("the prompt is empty; send some text".into()));
        }
        if matches!(parts.iter().rev().find(|p| p.len() > 0), Some(PromptPart::Image { .. })) {
            return Err(Error::Inference("a prompt cannot end with an image; the chat template adds text after it".into()));
        }
        let keys: Vec<LlamaToken> = parts.iter().flat_map(|p| p.keys().iter().copied()).collect();
        let mut keep = self.cached.iter().zip(&keys).take_while(|(a, b)| a == b).count();
        keep = keep.min(total - 1);
        // An image is evaluated whole: never resume inside one.
        let mut start = 0;
        for part in parts {
            let end = start + part.len();
            if matches!(part, PromptPart::Image { .. }) && keep > start && keep < end {
                keep = start;
            }
            start = end;
        }
        if keep > 0 && !self.prefix_still_cached(keep) {
            keep = 0;
        }
        if keep < self.cached.len() {
            if keep == 0 || self.ctx.kv_cache_seq_rm(0, Some(keep as u32), None).is_err() {
                self.ctx.clear_kv_cache();
                keep = 0;
            }
            self.cached.truncate(keep);
        }
        let mut evaluated = 0;
        self.abort.0.store(std::ptr::from_ref(cancel.flag()).cast_mut(), Ordering::Release);
        let _armed = Armed(&*self.abort);
        let batch_size = self.params.batch_size as usize;
        let mut batch = LlamaBatch::new(batch_size, 1);
        let cancelled = |evaluated| Ok(Prefill { reused: keep, evaluated, cancelled: true });
        let mut start = 0;
        for part in parts {
            let end = start + part.len();
            if end <= keep {
                start = end;
                continue;
            }
            match *part {
                PromptPart::Tokens(tokens) => {
                    for chunk in tokens[keep.max(start) - start..].chunks(batch_size) {
                        if cancel.is_cancelled() {
                            return cancelled(evaluated);
                        }
                        batch.clear();
                        let base = self.cached.len();
                        for (i, &token) in chunk.iter().enumerate() {
                            let want_logits = base + i == total - 1;
                            batch.add(token, (base + i) as i32, &[0], want_logits).map_err(|e| Error::Inference(e.to_string()))?;
                        }
                        if let Decoded::Aborted = self.decode(&mut batch, chunk)? {
                            return cancelled(evaluated);
                        }
                        evaluated += chunk.len();
                        self.logits_index = chunk.len() as i32 - 1;
                    }
                }
                PromptPart::Image { image, keys, projector } => {
                    if cancel.is_cancelled() {
                        return cancelled(evaluated);
                    }
                    if self.cached.len() + keys.len() > self.params.context_length as usize {
                        return Err(Error::Inference("the context window is full".into()));
                    }
                    let _replanning = std::mem::take(&mut self.replan_pending).then(super::model::model_mutation_lock);
                    let n_past = self.cached.len() as i32;
                    if let Err(e) = projector.evaluate(image, &mut self.ctx, n_past, batch_size as i32, false) {
                        // Forget whatever part of the image reached the cache.
                        self.logits_index = -1;
                        if self.ctx.kv_cache_seq_rm(0, Some(self.cached.len() as u32), None).is_err() {
                            self.clear();
                        }
                        return if cancel.is_cancelled() { cancelled(evaluated) } else { Err(e) };
                    }
                    self.cached.extend_from_slice(keys);
                    evaluated += keys.len();
                    self.logits_index = -1;
                }
            }
            start = end;
        }
        Ok(Prefill { reused: keep, evaluated, cancelled: false })
    }

    /// Evaluates one generated token so the next can be sampled.
    pub fn decode_one(&mut self, token: LlamaToken) -> Result<()> {
        let mut batch = LlamaBatch::new(1, 1);
        batch.add(token, self.cached.len() as i32, &[0], true).map_err(|e| Error::Inference(e.to_string()))?;
        // Outside `prefill` the abort slot is null, so this cannot be aborted.
        if let Decoded::Aborted = self.decode(&mut batch, &[token])? {
            return Err(Error::Inference("llama.cpp aborted a single-token step".into()));
        }
        self.logits_index = 0;
        Ok(())
    }

    /// Appends `tokens` (text the engine writes itself, such as a tool
    /// call's closing tag) to the cache in one batch; the last one's logits
    /// are ready to sample.
    pub fn extend(&mut self, tokens: &[LlamaToken]) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        if tokens.len() > self.params.batch_size as usize {
            return Err(Error::Inference(format!("{} tokens do not fit in one batch", tokens.len())));
        }
        if let Decoded::Aborted = self.evaluate_after_cache(tokens, false)? {
            return Err(Error::Inference("llama.cpp aborted a forced step".into()));
        }
        self.logits_index = tokens.len() as i32 - 1;
        Ok(())
    }

    /// Evaluates `tokens` in one batch at the positions after what is cached
    /// (the caller checks they fit a batch): every token an output with
    /// `all_outputs`, else only the last. Outside `prefill` the abort slot is
    /// null, so llama.cpp cannot abort it.
    fn evaluate_after_cache(&mut self, tokens: &[LlamaToken], all_outputs: bool) -> Result<Decoded> {
        let base = self.cached.len();
        let mut batch = LlamaBatch::new(tokens.len(), 1);
        for (i, &token) in tokens.iter().enumerate() {
            let output = all_outputs || i == tokens.len() - 1;
            batch.add(token, (base + i) as i32, &[0], output).map_err(|e| Error::Inference(e.to_string()))?;
        }
        self.decode(&mut batch, tokens)
    }

    /// Drops every cached position from `base` on, after tokens evaluated
    /// only to be read (`what` names them in the error, which leaves the
    /// cache empty but consistent).
    fn forget_after(&mut self, base: usize, what: &str) -> Result<()> {
        if self.ctx.kv_cache_seq_rm(0, Some(base as u32), None).is_err() {
            self.clear();
            return Err(Error::Inference(format!("the KV cache could not drop {what}")));
        }
        self.cached.truncate(base);
        Ok(())
    }

    fn decode(&mut self, batch: &mut LlamaBatch, tokens: &[LlamaToken]) -> Result<Decoded> {
        if self.cached.len() + tokens.len() > self.params.context_length as usize {
            return Err(Error::Inference("the context window is full".into()));
        }
        // The first decode after the adapters changed re-plans the graph and
        // reads the model's adapter list: hold the lock that loading and
        // freeing adapters take, so the list does not change under it.
        let _replanning = std::mem::take(&mut self.replan_pending).then(super::model::model_mutation_lock);
        match self.ctx.decode(batch) {
            Ok(()) => {
                self.cached.extend_from_slice(tokens);
                Ok(Decoded::Done)
            }
            Err(DecodeError::Unknown(DECODE_ABORTED)) => {
                // llama.cpp already drops the aborted batch's cells; removing
                // every position past what `cached` records makes sure of it
                // while keeping the prefix for reuse.
                self.logits_index = -1;
                if self.ctx.kv_cache_seq_rm(0, Some(self.cached.len() as u32), None).is_err() {
                    self.clear();
                }
                Ok(Decoded::Aborted)
            }
            Err(e) => {
                // The cache may hold part of the batch now: forget it all to stay consistent.
                self.clear();
                Err(Error::Inference(format!("llama.cpp could not evaluate the batch: {e}")))
            }
        }
    }

    /// The log-probability the model gives each continuation of what is
    /// cached (a prompt just prefilled), by teacher forcing: each
    /// continuation is evaluated in one batch after the prompt, then removed
    /// from the cache again. The prompt's own logits are not kept for sampling.
    pub fn score_continuations(&mut self, continuations: &[Vec<LlamaToken>]) -> Result<Vec<f64>> {
        if self.logits_index < 0 {
            return Err(Error::Inference("nothing to score after: the prompt was not evaluated".into()));
        }
        if continuations.iter().any(Vec::is_empty) {
            return Err(Error::Inference("an empty continuation cannot be scored".into()));
        }
        let base = self.cached.len();
        // Every first token is scored on the prompt's logits, before any decode overwrites them.
        let prompt_logits = self.logits();
        let firsts: Vec<f64> = continuations.iter().map(|tokens| log_prob(prompt_logits, tokens[0])).collect();
        let mut scores = Vec::with_capacity(continuations.len());
        for (tokens, first) in continuations.iter().zip(firsts) {
            let mut log_prob_sum = first;
            let forced = &tokens[..tokens.len() - 1];
            if !forced.is_empty() {
                if forced.len() > self.params.batch_size as usize {
                    return Err(Error::Inference(format!("a continuation of {} tokens is longer than a batch", tokens.len())));
                }
                self.evaluate_after_cache(forced, true)?;
                for (i, &next) in tokens[1..].iter().enumerate() {
                    log_prob_sum += log_prob(self.ctx.get_logits_ith(i as i32), next);
                }
                self.forget_after(base, "a scored continuation")?;
            }
            scores.push(log_prob_sum);
        }
        self.logits_index = -1;
        Ok(scores)
    }

    /// The KV cache as saved: the tokens it holds and llama.cpp's state of
    /// sequence 0 for them.
    pub fn save_state(&self) -> Result<(Vec<i32>, Vec<u8>)> {
        let size = self.ctx.state_seq_get_size_ext(0, LlamaStateSeqFlags::default());
        let mut state = vec![0u8; size];
        // SAFETY: `state` holds the `size` bytes llama.cpp just asked for, and
        // nothing changes the context in between (`&self` on a `&mut` API).
        let written = unsafe { self.ctx.state_seq_get_data_ext(state.as_mut_ptr(), 0, LlamaStateSeqFlags::default()) };
        if written != size {
            return Err(Error::Inference(format!("llama.cpp wrote {written} bytes of KV state, not the {size} it announced")));
        }
        Ok((self.cached.iter().map(|t| t.0).collect(), state))
    }

    /// Replaces the KV cache with a saved one (see [`Session::save_state`]).
    /// The caller has verified the bytes came from `save_state` of a session
    /// with the same model and settings (the session file's digests and
    /// identity). On failure the cache is empty and the session usable.
    pub fn restore_state(&mut self, tokens: &[i32], state: &[u8]) -> std::result::Result<(), String> {
        let n_vocab = self.model.inner.llama.n_vocab();
        if let Some(bad) = tokens.iter().find(|&&t| t < 0 || t >= n_vocab) {
            return Err(format!("token {bad} is not in this model's vocabulary"));
        }
        if tokens.len() > self.params.context_length as usize {
            return Err(format!("{} saved tokens do not fit in a context of {}", tokens.len(), self.params.context_length));
        }
        self.clear();
        if tokens.is_empty() {
            return Ok(());
        }
        // SAFETY: llama.cpp reads at most `state.len()` bytes (its reader is
        // bounds-checked and reports a short or mismatched buffer as failure);
        // the bytes are ones its own writer produced (checked by the caller).
        let ok = unsafe { self.ctx.state_seq_set_data_ext(state, 0, LlamaStateSeqFlags::default()) };
        let end = self.ctx.kv_cache_seq_pos_max(0);
        if !ok || end + 1 != tokens.len() as i32 {
            self.clear();
            return Err(if ok {
                format!("the restored cache ends at position {end}, not at {} as the file says", tokens.len() - 1)
            } else {
                "llama.cpp refused the saved state".into()
            });
        }
        self.cached = tokens.iter().map(|&t| LlamaToken(t)).collect();
        self.logits_index = -1;
        Ok(())
    }

    /// The final hidden state (after the output norm, before the vocabulary
    /// projection) of the last evaluated position; `None` unless the session
    /// keeps hidden states and a position was just evaluated.
    pub fn hidden_state(&self) -> Option<Vec<f32>> {
        if !self.params.hidden_states || self.logits_index < 0 {
            return None;
        }
        // Every batch that leaves logits to sample has its last output last.
        self.tap.read(|width, rows| (width > 0 && rows.len() >= width).then(|| rows[rows.len() - width..].to_vec()))
    }

    /// The mean final hidden state over `tokens` evaluated after what is
    /// cached (with each token as input), without keeping them: they are
    /// removed from the cache again. `None` unless the session keeps hidden
    /// states. The last logits are not kept for sampling.
    pub fn mean_state_after(&mut self, tokens: &[LlamaToken]) -> Result<Option<Vec<f32>>> {
        if !self.params.hidden_states || tokens.is_empty() {
            return Ok(None);
        }
        if tokens.len() > self.params.batch_size as usize {
            return Err(Error::Inference(format!("{} tokens do not fit in one batch", tokens.len())));
        }
        let base = self.cached.len();
        self.evaluate_after_cache(tokens, true)?;
        let mean = self.tap.read(|width, rows| {
            (width > 0 && rows.len() == width * tokens.len()).then(|| {
                let mut mean = vec![0.0f32; width];
                for row in rows.chunks(width) {
                    for (m, &v) in mean.iter_mut().zip(row) {
                        *m += v / tokens.len() as f32;
                    }
                }
                mean
            })
        });
        self.forget_after(base, "the answer's tokens")?;
        self.logits_index = -1;
        Ok(mean)
    }

    /// The logits of the last evaluated position (one per vocabulary entry).
    pub fn logits(&self) -> &[f32] {
        self.ctx.get_logits_ith(self.logits_index)
    }

    /// Samples the next token from the last evaluated logits.
    pub fn sample(&mut self, sampler: &mut Sampler) -> LlamaToken {
        sampler.sample(&self.ctx, self.logits_index)
    }

    /// With sliding-window attention the cache forgets positions older than the
    /// window, so a prefix is only reusable if what the new suffix will attend
    /// to is still there (the rule llama-server uses).
    fn prefix_still_cached(&self, keep: usize) -> bool {
        if self.swa_window == 0 {
            return true;
        }
        let pos_min = self.ctx.kv_cache_seq_pos_min(0);
        pos_min <= 0 || (pos_min as usize) <= keep.saturating_sub(self.swa_window as usize)
    }
}

/// The adapters that change the weights (a scale of 0 changes nothing), as
/// llama.cpp compares them: a set of (adapter, scale).
fn active(adapters: &[(LoraAdapter, f32)]) -> Vec<(usize, u32)> {
    let mut set: Vec<_> = adapters.iter().filter(|(_, s)| *s != 0.0).map(|(a, s)| (a.raw() as usize, s.to_bits())).collect();
    set.sort_unstable();
    set
}

/// llama.cpp's handle of `ctx`. llama-cpp-2 (pinned at =0.1.160) keeps it
/// crate-private, and `LlamaContext` has more than one field, so it is read
/// from the one place the crate shows it: its `Debug` output,
/// `LlamaContext { context: 0x… }`. It is checked against the model it must
/// belong to before use, and a unit test keeps the format honest.
fn raw_context(ctx: &LlamaContext<'_>, model: &Model) -> Result<*mut llama_cpp_sys_2::llama_context> {
    let shown = format!("{ctx:?}");
    let pointer = shown
        .split("context: 0x")
        .nth(1)
        .and_then(|rest| usize::from_str_radix(rest.trim_end_matches([' ', '}']), 16).ok())
        .filter(|&p| p != 0)
        .ok_or_else(|| {
            Error::Inference(format!("cannot find llama.cpp's context handle in {shown:?}; this llama-cpp-2 is not the pinned one"))
        })?;
    let raw = pointer as *mut llama_cpp_sys_2::llama_context;
    // SAFETY: `raw` is the context `ctx` wraps (the field shown above).
    if unsafe { llama_cpp_sys_2::llama_get_model(raw) }.cast_mut() != model.raw() {
        return Err(Error::Inference("llama.cpp's context handle does not belong to this model".into()));
    }
    Ok(raw)
}

/// [`raw_context`] of a session, for the adapter tests.
#[cfg(test)]
pub(crate) fn raw_context_for_tests(session: &Session) -> Result<*mut llama_cpp_sys_2::llama_context> {
    raw_context(&session.ctx, &session.model)
}

/// `ln softmax(logits)[token]`, in f64 (minus infinity for a token out of range).
fn log_prob(logits: &[f32], token: LlamaToken) -> f64 {
    let Some(&logit) = logits.get(token.0 as usize) else { return f64::NEG_INFINITY };
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    logit as f64 - (max + sum.ln())
}

#[cfg(test)]
mod tests {
    #[test]
    fn state_layout_names_the_pinned_llama_cpp() {
        let manifest = include_str!("../../../Cargo.toml");
        let pin = manifest.lines().find(|l| l.starts_with("llama-cpp-sys-2 =")).expect("the workspace pins llama-cpp-sys-2");
        let version = pin.split('"').nth(1).expect("a quoted version").trim_start_matches('=');
        assert!(super::STATE_LAYOUT.ends_with(version), "update STATE_LAYOUT to {version}");
    }
}
