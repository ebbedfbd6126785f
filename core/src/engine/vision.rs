//! Vision projectors loaded beside a model, and evaluating images into a
//! context through llama.cpp's multimodal library (`mtmd`).
//!
//! The projector file is checked in Rust first
//! (`pocketlm_base::vision::check_projector`): clip.cpp aborts on keys of
//! the wrong type and on tensor shapes that disagree. Images arrive already
//! decoded ([`crate::image::Image`], safe Rust), so llama.cpp's own decoders
//! (stb_image; ffmpeg in some builds) never see an app's bytes.
//!
//! Each image is placed in the prompt by a media marker made of random
//! bytes at load time: text from a user cannot guess it, so it cannot
//! smuggle an image slot in, and a prompt whose marker count differs from
//! its image count is refused.

use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::mtmd::{MtmdBitmap, MtmdContext, MtmdContextParams, MtmdInputChunkType, MtmdInputChunks, MtmdInputText};
use serde::{Deserialize, Serialize};

use super::model::Model;
use super::Token;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::image::Image;
use crate::vision::{check_projector, projector_bytes, ProjectorShape};

/// Largest projector file read (the Gemma 3 4B projector is 851 MB in F16).
pub const MAX_PROJECTOR_FILE_BYTES: u64 = 4 << 30;

/// Image-token groups remembered per projector (by image digest), so a
/// history's images are not preprocessed again on every turn.
const REMEMBERED_GROUPS: usize = 256;

/// What a loaded vision projector is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectorInfo {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// `general.name`, if the file has one.
    pub name: Option<String>,
    /// `clip.projector_type` (`gemma3`).
    pub projector_type: String,
    /// Context positions one image takes (its embeddings and the text
    /// tokens around them).
    pub tokens_per_image: u32,
    /// Embeddings one image becomes: evaluated in one batch, so a
    /// conversation's `batch_size` must be at least this.
    pub embeddings_per_image: u32,
    /// Side of the square images are resized to, in pixels.
    pub image_size: u32,
    /// Bytes of its tensors, held in memory while it is loaded.
    pub tensor_bytes: u64,
    /// What the planner counts for it: tensors and one image's encoding.
    pub memory_bytes: u64,
    /// SHA-256 (hex) of the file.
    pub sha256: String,
}

/// A vision projector loaded beside a [`Model`]: lets conversations on that
/// model take images ([`crate::Conversation::set_projector`]). Cheap to
/// clone and shared across threads; encoding an image holds it exclusively
/// (conversations sharing it take turns), text never does.
#[derive(Clone)]
pub struct Projector {
    inner: Arc<ProjectorInner>,
}

struct ProjectorInner {
    // Declared before `model`: the multimodal context reads the model's vocabulary.
    ctx: Mutex<MtmdContext>,
    /// Each image digest's keys, as `group_keys` returns them.
    groups: Mutex<HashMap<String, Vec<Token>>>,
    marker: String,
    shape: ProjectorShape,
    info: ProjectorInfo,
    model: Model,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector").field("info", &self.inner.info).finish()
    }
}

/// Two handles are equal when they are the same loaded projector.
impl PartialEq for Projector {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Projector {
    /// Reads the vision projector (mmproj GGUF) at `path`, checks it against
    /// `model`, and loads it. A file that is not a projector, is not the
    /// Gemma 3 layout, was made for another model, or is malformed is
    /// [`Error::ProjectorMismatch`]; a missing, unreadable or damaged file
    /// gets the same errors as a model file. Blocks while the weights are
    /// read and the encoder's buffers are reserved (about a second for
    /// Gemma 3 4B's 851 MB). The projector holds its model: the weights stay
    /// in memory until the projector is dropped too.
    pub fn load(model: &Model, path: impl AsRef<Path>) -> Result<Projector> {
        let path = path.as_ref().to_path_buf();
        let mismatch = |reason: String| Error::ProjectorMismatch { path: path.clone(), reason };
        let file = std::fs::File::open(&path).map_err(|e| Error::from_io(path.clone(), &e))?;
        let shape = check_open(&file, &path, model.gguf())?;
        let sha256 = super::model::file_sha256(&file).map_err(|e| Error::from_io(path.clone(), &e))?;
        let marker = random_marker();
        let params = MtmdContextParams {
            use_gpu: model.backend().gpu_layers > 0,
            print_timings: false,
            n_threads: super::threads::default_threads() as i32,
            media_marker: CString::new(marker.clone()).expect("the marker is hex"),
            image_min_tokens: -1,
            image_max_tokens: -1,
        };
        // llama.cpp reads the file that was checked: on Linux and Android
        // through this process's descriptor, so a file renamed over the
        // path meanwhile is not what it parses.
        let read_from = checked_file_path(&file, &path);
        let read_from = read_from.to_str().ok_or_else(|| mismatch("its path is not valid UTF-8; rename it".into()))?;
        let ctx = super::cpp_guard::catching(|| MtmdContext::init_from_file(read_from, &model.inner.llama, &params))
            .map_err(|e| mismatch(format!("llama.cpp threw while loading it ({e})")))?
            .map_err(|e| mismatch(format!("llama.cpp could not load it ({e}; its log says why)")))?;
        if !ctx.support_vision() || ctx.decode_use_mrope() {
            return Err(mismatch("llama.cpp loaded it without image support; use the model's image projector".into()));
        }
        // One image's positions: its embeddings and the text around them.
        let blank = Image::from_rgb(1, 1, vec![128; 3]).map_err(|e| Error::Inference(format!("the built-in probe image: {e}")))?;
        let keys = image_keys(&ctx, &marker, &sha256, &blank)?;
        let info = ProjectorInfo {
            path: path.clone(),
            name: shape.name.clone(),
            projector_type: shape.projector_type.clone(),
            tokens_per_image: keys.len() as u32,
            embeddings_per_image: keys.iter().filter(|t| t.0 < 0).count() as u32,
            image_size: shape.image_size,
            tensor_bytes: shape.tensor_bytes,
            memory_bytes: projector_bytes(&shape),
            sha256,
        };
        Ok(Projector {
            inner: Arc::new(ProjectorInner {
                ctx: Mutex::new(ctx),
                groups: Mutex::new(HashMap::new()),
                marker,
                shape,
                info,
                model: model.clone(),
            }),
        })
    }

    /// What the projector is.
    pub fn info(&self) -> &ProjectorInfo {
        &self.inner.info
    }

    /// Its shape as the memory planner reads it.
    pub fn shape(&self) -> &ProjectorShape {
        &self.inner.shape
    }

    /// Whether it was loaded for `model` (or a clone of it).
    pub fn belongs_to(&self, model: &Model) -> bool {
        Arc::ptr_eq(&self.inner.model.inner, &model.inner)
    }

    /// The marker standing for one image in rendered prompt text.
    pub(crate) fn marker(&self) -> &str {
        &self.inner.marker
    }

    /// The cache keys of the positions `image` takes: the text tokens
    /// around it as they are, and its embeddings as negative pseudo-tokens
    /// derived from its digest and this projector's (no real token id is
    /// negative), so equal images at equal places reuse the KV cache, and
    /// different images, or one seen through another projector, do not.
    pub(crate) fn group_keys(&self, image: &Image) -> Result<Vec<Token>> {
        if let Some(keys) = self.inner.groups.lock().unwrap_or_else(|p| p.into_inner()).get(image.sha256()) {
            return Ok(keys.clone());
        }
        let keys = {
            let ctx = self.inner.ctx.lock().unwrap_or_else(|p| p.into_inner());
            image_keys(&ctx, &self.inner.marker, &self.inner.info.sha256, image)?
        };
        let mut groups = self.inner.groups.lock().unwrap_or_else(|p| p.into_inner());
        if groups.len() >= REMEMBERED_GROUPS {
            groups.clear();
        }
        groups.insert(image.sha256().to_string(), keys.clone());
        Ok(keys)
    }

    /// Evaluates `image` (with the text tokens around it) into `ctx` at
    /// position `n_past`, in batches of at most `n_batch`; the last
    /// position's logits are kept when `logits_last`. Holds the projector
    /// while the image is encoded.
    pub(crate) fn evaluate(
        &self,
        image: &Image,
        ctx: &mut LlamaContext<'static>,
        n_past: i32,
        n_batch: i32,
        logits_last: bool,
    ) -> Result<()> {
        let mut mtmd = self.inner.ctx.lock().unwrap_or_else(|p| p.into_inner());
        let chunks = tokenize(&mtmd, &self.inner.marker, image)?;
        let done = super::cpp_guard::catching(|| chunks.eval_chunks(&mut mtmd, ctx, n_past, 0, n_batch, logits_last))
            .map_err(|e| Error::Inference(format!("llama.cpp threw while evaluating an image ({e})")))?;
        done.map(|_| ()).map_err(|e| Error::Inference(format!("llama.cpp could not evaluate the image ({e})")))
    }
}

/// `image` as `ctx` turns it into chunks: the text tokens around it and its embeddings to come.
fn tokenize(ctx: &MtmdContext, marker: &str, image: &Image) -> Result<MtmdInputChunks> {
    let bitmap = MtmdBitmap::from_image_data(image.width(), image.height(), image.rgb())
        .map_err(|e| Error::Inference(format!("llama.cpp could not take the image's pixels ({e})")))?;
    let text = MtmdInputText { text: marker.to_string(), add_special: false, parse_special: true };
    ctx.tokenize(text, &[&bitmap]).map_err(|e| Error::Inference(format!("llama.cpp could not prepare the image ({e})")))
}

/// The cache keys of `image` seen through the projector whose file digest
/// is `projector_sha256` (see [`Projector::group_keys`]).
fn image_keys(ctx: &MtmdContext, marker: &str, projector_sha256: &str, image: &Image) -> Result<Vec<Token>> {
    let chunks = tokenize(ctx, marker, image)?;
    let digest = |hex: &str| u64::from_str_radix(&hex[..16], 16).unwrap_or(0);
    let seed = digest(image.sha256()) ^ digest(projector_sha256).rotate_left(29);
    let mut keys = Vec::new();
    for i in 0..chunks.len() {
        let chunk = chunks.get(i).expect("index below len");
        match chunk.chunk_type() {
            MtmdInputChunkType::Text => keys.extend_from_slice(chunk.text_tokens().unwrap_or_default()),
            _ => keys.extend((0..chunk.n_tokens() as u64).map(|k| pseudo_token(seed, k))),
        }
    }
    Ok(keys)
}

/// Checks the vision projector file at `path` against the model whose
/// header is `base`, from the projector's header alone (nothing is loaded):
/// its shape for the memory planner, or the error [`Projector::load`] would give.
pub fn inspect_projector(path: &Path, base: &GgufFile) -> Result<ProjectorShape> {
    let file = std::fs::File::open(path).map_err(|e| Error::from_io(path.to_path_buf(), &e))?;
    check_open(&file, path, base)
}

/// The checks of a projector file opened from `path`: a side file's header
/// checks, and a projector that fits `base`.
fn check_open(file: &std::fs::File, path: &Path, base: &GgufFile) -> Result<ProjectorShape> {
    let mismatch = |reason| Error::ProjectorMismatch { path: path.to_path_buf(), reason };
    let gguf = super::model::read_side_header(file, path, MAX_PROJECTOR_FILE_BYTES, mismatch)?;
    check_projector(&gguf, base).map_err(mismatch)
}

/// The path under which llama.cpp opens the file already checked.
fn checked_file_path(file: &std::fs::File, path: &Path) -> PathBuf {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::AsRawFd;
        let through_fd = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if through_fd.exists() {
            return through_fd;
        }
    }
    let _ = file;
    path.to_path_buf()
}

/// A negative pseudo-token for position `k` of the image whose digest starts with `seed`.
fn pseudo_token(seed: u64, k: u64) -> Token {
    let mixed = seed.wrapping_add(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(17) ^ seed;
    llama_cpp_2::token::LlamaToken(-1 - (mixed & 0x3fff_ffff) as i32)
}

/// 128 random bits as the media marker: never in text a user typed.
fn random_marker() -> String {
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if random.is_err() {
        // No /dev/urandom (not seen on Android or iOS): the time and the
        // address of a stack value, hashed.
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        h.write_usize(&bytes as *const _ as usize);
        bytes[..8].copy_from_slice(&h.finish().to_le_bytes());
        bytes[8..].copy_from_slice(&std::collections::hash_map::RandomState::new().build_hasher().finish().to_le_bytes());
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("<__pocketlm_image_{hex}__>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_tokens_are_negative_and_depend_on_the_image() {
        let a: Vec<Token> = (0..256).map(|k| pseudo_token(42, k)).collect();
        let b: Vec<Token> = (0..256).map(|k| pseudo_token(43, k)).collect();
        assert!(a.iter().chain(&b).all(|t| t.0 < 0));
        assert_ne!(a, b);
        assert_eq!(a, (0..256).map(|k| pseudo_token(42, k)).collect::<Vec<_>>());
    }

    #[test]
    fn markers_are_random() {
        let (a, b) = (random_marker(), random_marker());
        assert_ne!(a, b);
        assert_eq!(a.len(), "<__pocketlm_image___>".len() + 32);
    }
}
