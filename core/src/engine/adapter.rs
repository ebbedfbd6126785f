//! LoRA adapters loaded onto a model, and setting them on a context.
//!
//! The file is opened once: its header is checked in Rust against the base
//! model (`pocketlm_base::lora::check_adapter`), then llama.cpp reads that
//! same open file (a duplicate of its descriptor), so a file renamed over it
//! in between is never what llama.cpp parses. The tensor data is read once,
//! straight into llama.cpp's buffers.

use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::model::{model_mutation_lock, Model};
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::lora::{check_adapter, AdapterShape};

/// Largest adapter file read: a rank-256 adapter on every matrix of a 4B
/// model is about 500 MB in F16.
pub const MAX_ADAPTER_FILE_BYTES: u64 = 2 << 30;

/// What a loaded LoRA adapter is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterInfo {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// `general.name`, if the file has one.
    pub name: Option<String>,
    /// The base model's architecture, which the adapter names too.
    pub architecture: String,
    /// The largest rank among its matrices.
    pub rank: u32,
    /// `adapter.lora.alpha` (0: absent, no `alpha / rank` factor).
    pub alpha: f32,
    /// How many of the model's matrices it changes.
    pub targets: u32,
    /// Bytes of its tensors, held in memory while it is loaded.
    pub tensor_bytes: u64,
    /// SHA-256 (hex) of the file, which names it in saved sessions.
    pub sha256: String,
}

/// A LoRA adapter loaded onto a [`Model`]: cheap to clone and shared across
/// threads. Set it on a conversation with
/// [`crate::Conversation::set_adapters`], with a scale, alone or with
/// others; the base model is not reloaded, and other conversations on the
/// same model are not affected. Its memory is freed when the last clone and
/// the last conversation using it are dropped.
#[derive(Clone)]
pub struct LoraAdapter {
    pub(crate) inner: Arc<AdapterInner>,
}

pub(crate) struct AdapterInner {
    raw: NonNull<llama_cpp_sys_2::llama_adapter_lora>,
    shape: AdapterShape,
    info: AdapterInfo,
    // Declared last: the adapter is freed (in `drop`) before the model can be.
    model: Model,
}

// SAFETY: llama.cpp never changes a loaded adapter; contexts only read it,
// and it is freed once, under the model lock, when the last clone drops.
unsafe impl Send for AdapterInner {}
// SAFETY: as above: shared references only read.
unsafe impl Sync for AdapterInner {}

impl Drop for AdapterInner {
    fn drop(&mut self) {
        // Every session using the adapter holds a clone, so none is left.
        let _guard = model_mutation_lock();
        // SAFETY: the pointer came from llama_adapter_lora_init on `model`,
        // which is still alive (a field dropped after this), and is freed once.
        unsafe { llama_cpp_sys_2::llama_adapter_lora_free(self.raw.as_ptr()) };
    }
}

impl std::fmt::Debug for LoraAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoraAdapter").field("info", &self.inner.info).finish()
    }
}

/// Two handles are equal when they are the same loaded adapter.
impl PartialEq for LoraAdapter {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl LoraAdapter {
    /// Reads the GGUF LoRA adapter at `path`, checks it against `model`, and
    /// loads it onto the model (the base weights are shared, not copied).
    ///
    /// A file that is not an adapter, was made for another base model
    /// (architecture, tensor shapes), or is malformed in a way llama.cpp
    /// would not survive is [`Error::AdapterMismatch`]; a missing, unreadable
    /// or damaged file gets the same errors as a model file. Blocks for the
    /// time it takes to read the file (milliseconds for typical adapters).
    pub fn load(model: &Model, path: impl AsRef<Path>) -> Result<LoraAdapter> {
        let path = path.as_ref().to_path_buf();
        let mismatch = |reason: String| Error::AdapterMismatch { path: path.clone(), reason };
        let file = std::fs::File::open(&path).map_err(|e| Error::from_io(path.clone(), &e))?;
        let shape = check_open(&file, &path, model.gguf())?;
        let sha256 = super::model::file_sha256(&file).map_err(|e| Error::from_io(path.clone(), &e))?;
        let raw = load_from_file(model, &file).ok_or_else(|| {
            mismatch("llama.cpp could not load it (its log says why); check that it was converted for this base model".into())
        })?;
        let info = AdapterInfo {
            path: path.clone(),
            name: shape.name.clone(),
            architecture: shape.architecture.clone(),
            rank: shape.rank,
            alpha: shape.alpha,
            targets: shape.targets.len() as u32,
            tensor_bytes: shape.tensor_bytes,
            sha256,
        };
        Ok(LoraAdapter { inner: Arc::new(AdapterInner { raw, shape, info, model: model.clone() }) })
    }

    /// What the adapter is.
    pub fn info(&self) -> &AdapterInfo {
        &self.inner.info
    }

    /// Its shape as the memory planner reads it (see [`crate::plan::estimate_with_adapters`]).
    pub fn shape(&self) -> &AdapterShape {
        &self.inner.shape
    }

    /// Whether it was loaded onto `model` (or a clone of it).
    pub fn belongs_to(&self, model: &Model) -> bool {
        Arc::ptr_eq(&self.inner.model.inner, &model.inner)
    }

    pub(crate) fn raw(&self) -> *mut llama_cpp_sys_2::llama_adapter_lora {
        self.inner.raw.as_ptr()
    }
}

/// Checks the LoRA adapter file at `path` against the model whose header is
/// `base`, from the adapter's header alone (nothing is loaded): its shape
/// for the memory planner, or the error [`LoraAdapter::load`] would give.
pub fn inspect_adapter(path: &Path, base: &GgufFile) -> Result<AdapterShape> {
    let file = std::fs::File::open(path).map_err(|e| Error::from_io(path.to_path_buf(), &e))?;
    check_open(&file, path, base)
}

/// The checks of an adapter file opened from `path`: not a directory, not
/// too large, a well-formed GGUF header, and an adapter that fits `base`.
fn check_open(file: &std::fs::File, path: &Path, base: &GgufFile) -> Result<AdapterShape> {
    let mismatch = |reason| Error::AdapterMismatch { path: path.to_path_buf(), reason };
    let gguf = super::model::read_side_header(file, path, MAX_ADAPTER_FILE_BYTES, mismatch)?;
    check_adapter(&gguf, base).map_err(mismatch)
}

/// llama.cpp's loader on `file`, through a stream on a duplicate of its
/// descriptor, from the start; `None` if llama.cpp refuses it.
fn load_from_file(model: &Model, file: &std::fs::File) -> Option<NonNull<llama_cpp_sys_2::llama_adapter_lora>> {
    use std::os::fd::AsRawFd;
    // SAFETY: `dup` of an open descriptor; the copy is owned by the stream
    // below (closed by fclose) or closed here if the stream cannot be made.
    let fd = unsafe { libc::dup(file.as_raw_fd()) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is an open descriptor this function owns.
    let stream = unsafe { libc::fdopen(fd, c"rb".as_ptr()) };
    if stream.is_null() {
        // SAFETY: `fd` is still ours when fdopen fails.
        unsafe { libc::close(fd) };
        return None;
    }
    // SAFETY: `stream` is open; llama.cpp reads from the current position.
    let adapter = if unsafe { libc::fseek(stream, 0, libc::SEEK_SET) } == 0 {
        let _guard = model_mutation_lock();
        // SAFETY: `model.raw()` is live for the call; `stream` is an open
        // stream. llama.cpp catches its loader's exceptions (null on failure).
        unsafe { llama_cpp_sys_2::llama_adapter_lora_init_from_file_ptr(model.raw(), stream.cast()) }
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: `stream` came from fdopen and is closed once (with its descriptor).
    unsafe { libc::fclose(stream) };
    NonNull::new(adapter)
}

#[cfg(test)]
mod tests {
    //! The numbers an adapter must produce, read from the logits of the
    //! real Qwen test model with the adapters of scripts/lora_adapters.py.
    use std::path::PathBuf;
    use std::sync::OnceLock;

    use super::*;
    use crate::cancel::CancelToken;
    use crate::engine::{Session, SessionParams};
    use crate::plan::KvType;

    fn model_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("POCKETLM_MODEL_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
        cache.join("pocketlm").join("models")
    }

    fn qwen() -> &'static Model {
        static MODEL: OnceLock<Model> = OnceLock::new();
        MODEL.get_or_init(|| {
            let path = model_dir().join("qwen2.5-coder-0.5b-instruct-q4.gguf");
            assert!(path.exists(), "{} is missing: run scripts/fetch-test-models.sh first", path.display());
            Model::load(path, &crate::ModelOptions::default()).expect("qwen loads")
        })
    }

    fn adapter_path(name: &str) -> PathBuf {
        let path = model_dir().join("lora").join(format!("qwen-lora-{name}.gguf"));
        assert!(path.exists(), "{} is missing: run scripts/fetch-test-models.sh first", path.display());
        path
    }

    fn adapter(name: &str) -> LoraAdapter {
        LoraAdapter::load(qwen(), adapter_path(name)).expect("the test adapter loads")
    }

    fn session() -> Session {
        let params = SessionParams {
            context_length: 256,
            threads: 2,
            batch_size: 64,
            kv_type: KvType::F16,
            full_swa_cache: false,
            hidden_states: true,
        };
        Session::new(qwen(), params).expect("session starts")
    }

    const PROMPT: &str = "The capital of France is";

    /// The logits and the final hidden state after `PROMPT`, with `adapters` set.
    fn run(session: &mut Session, adapters: &[(LoraAdapter, f32)]) -> (Vec<f32>, Vec<f32>) {
        session.set_adapters(adapters).expect("adapters set");
        let tokens = qwen().tokenize_llama(PROMPT);
        let prefill = session.prefill(&tokens, &CancelToken::new()).expect("prefill");
        assert!(!prefill.cancelled);
        (session.logits().to_vec(), session.hidden_state().expect("hidden state kept"))
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn scale_zero_and_detaching_give_exactly_the_base_logits() {
        let mut s = session();
        let (base, _) = run(&mut s, &[]);
        let attn = adapter("attn");
        let (on, _) = run(&mut s, &[(attn.clone(), 1.0)]);
        assert!(max_diff(&on, &base) > 0.05, "the adapter changes the logits ({})", max_diff(&on, &base));
        let (zero, _) = run(&mut s, &[(attn.clone(), 0.0)]);
        assert_eq!(zero, base, "scale 0 is the base model");
        run(&mut s, &[(attn, 1.0)]);
        let (detached, _) = run(&mut s, &[]);
        assert_eq!(detached, base, "detaching restores the base model");
    }

    #[test]
    fn the_scale_multiplies_alpha_over_rank() {
        let mut s = session();
        // alpha 8 at scale 2 and alpha 16 at scale 1 both apply 4·B·A.
        let (doubled, _) = run(&mut s, &[(adapter("attn"), 2.0)]);
        let (alpha16, _) = run(&mut s, &[(adapter("attn-alpha16"), 1.0)]);
        assert_eq!(doubled, alpha16);
        let (once, _) = run(&mut s, &[(adapter("attn"), 1.0)]);
        assert!(max_diff(&once, &doubled) > 0.05);
    }

    #[test]
    fn two_adapters_add_up_like_one_stacked_along_the_rank() {
        let mut s = session();
        let (base, _) = run(&mut s, &[]);
        let (both, _) = run(&mut s, &[(adapter("attn"), 1.0), (adapter("ffn"), 1.0)]);
        let (stacked, _) = run(&mut s, &[(adapter("sum"), 1.0)]);
        let (attn_only, _) = run(&mut s, &[(adapter("attn"), 1.0)]);
        let effect = max_diff(&both, &base);
        assert!(max_diff(&both, &attn_only) > 0.05, "the second adapter counts");
        // Same sums in another order: float rounding only.
        assert!(max_diff(&both, &stacked) < effect * 0.02, "{} against an effect of {effect}", max_diff(&both, &stacked));
    }

    /// The F32 tensor `name` of the adapter file, as stored (row-major in numpy order).
    fn tensor_f32(path: &Path, name: &str) -> Vec<f32> {
        let bytes = std::fs::read(path).unwrap();
        let gguf = GgufFile::parse(&bytes).unwrap();
        let t = gguf.tensors.iter().find(|t| t.name == name).unwrap();
        assert_eq!(t.ggml_type.name, "F32");
        let start = (gguf.data_offset + t.offset) as usize;
        bytes[start..start + t.size_bytes as usize].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    }

    #[test]
    fn an_output_adapter_moves_each_logit_by_scale_alpha_over_rank_times_b_a_h() {
        let mut s = session();
        let (base, h) = run(&mut s, &[]);
        let output = adapter("output");
        let scale = 1.5f32;
        let (adapted, h_adapted) = run(&mut s, &[(output.clone(), scale)]);
        assert_eq!(h, h_adapted, "an adapter on the output matrix leaves the hidden state alone");
        let path = adapter_path("output");
        let (a, b) = (tensor_f32(&path, "output.weight.lora_a"), tensor_f32(&path, "output.weight.lora_b"));
        let (rank, n_embd) = (output.info().rank as usize, h.len());
        assert_eq!(a.len(), rank * n_embd);
        assert_eq!(b.len(), rank * base.len());
        let ah: Vec<f64> = (0..rank).map(|k| (0..n_embd).map(|i| f64::from(a[k * n_embd + i]) * f64::from(h[i])).sum()).collect();
        let factor = f64::from(scale) * f64::from(output.info().alpha) / rank as f64;
        let mut worst = 0f64;
        let mut largest = 0f64;
        for (j, (&with, &without)) in adapted.iter().zip(&base).enumerate() {
            let expected: f64 = factor * (0..rank).map(|k| f64::from(b[j * rank + k]) * ah[k]).sum::<f64>();
            worst = worst.max((f64::from(with - without) - expected).abs());
            largest = largest.max(expected.abs());
        }
        assert!(largest > 1.0, "the expected change is large enough to see ({largest})");
        assert!(worst < 1e-3, "each logit moves by the expected amount (worst error {worst}, largest change {largest})");
    }

    #[test]
    fn changing_the_adapters_drops_the_kv_cache_and_keeping_them_reuses_it() {
        let mut s = session();
        let tokens = qwen().tokenize_llama(PROMPT);
        let attn = adapter("attn");
        let (fresh, _) = run(&mut s, &[(attn.clone(), 1.0)]);
        // Cached under the base weights, then the adapter is set again.
        run(&mut s, &[]);
        s.set_adapters(&[(attn.clone(), 1.0)]).unwrap();
        assert_eq!(s.cached_len(), 0, "the base model's cache is gone");
        let prefill = s.prefill(&tokens, &CancelToken::new()).unwrap();
        assert_eq!(prefill.reused, 0);
        assert_eq!(s.logits(), &fresh[..], "the same logits as a fresh start with the adapter");
        // Setting the same adapters again keeps the cache.
        s.set_adapters(&[(attn, 1.0)]).unwrap();
        assert_eq!(s.cached_len(), tokens.len());
    }

    #[test]
    fn refuses_what_does_not_fit_before_llama_cpp_sees_it() {
        for (name, expected) in [
            ("bad-arch", "made for gemma3"),
            ("bad-shape", "[896, 896] in the model"),
            ("bad-alpha", "not FLOAT32"),
            ("bad-embd", "do not fit"),
        ] {
            match LoraAdapter::load(qwen(), adapter_path(name)) {
                Err(Error::AdapterMismatch { reason, .. }) => assert!(reason.contains(expected), "{name}: {reason}"),
                other => panic!("{name}: expected AdapterMismatch, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_context_handle_is_found_in_llama_cpp_2s_debug_output() {
        let s = session();
        let raw = super::super::session::raw_context_for_tests(&s).expect("found");
        assert!(!raw.is_null());
    }
}
