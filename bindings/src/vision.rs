//! Image input: `PocketProjector` (a vision projector, the model's mmproj
//! file, loaded beside a `PocketModel` and shared by its conversations).
//! Images themselves cross as encoded JPEG or PNG bytes
//! (`PocketConversation::send_with_images`) and are decoded on the worker
//! thread. Loading blocks: the Kotlin and Swift wrappers run it off the
//! caller's thread.

use std::sync::Arc;

use crate::convert::{saturating_i32, saturating_i64};
use crate::error::FfiError;
use crate::model::PocketModel;

/// What a loaded vision projector is.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ProjectorInfo {
    /// The file it was loaded from.
    pub path: String,
    /// Its `general.name`, if any.
    pub name: Option<String>,
    /// Its projector type (`gemma3`).
    pub projector_type: String,
    /// Context positions one image takes.
    pub tokens_per_image: i32,
    /// Embeddings one image becomes (the conversation's batch must hold them).
    pub embeddings_per_image: i32,
    /// Side of the square images are resized to, in pixels.
    pub image_size: i32,
    /// Bytes of its tensors, held in memory while it is loaded.
    pub tensor_bytes: i64,
    /// What the memory planner counts for it (tensors and one image's encoding).
    pub memory_bytes: i64,
    /// SHA-256 (hex) of the file.
    pub sha256: String,
}

impl From<&pocketlm::ProjectorInfo> for ProjectorInfo {
    fn from(i: &pocketlm::ProjectorInfo) -> Self {
        ProjectorInfo {
            path: i.path.display().to_string(),
            name: i.name.clone(),
            projector_type: i.projector_type.clone(),
            tokens_per_image: saturating_i32(i.tokens_per_image),
            embeddings_per_image: saturating_i32(i.embeddings_per_image),
            image_size: saturating_i32(i.image_size),
            tensor_bytes: saturating_i64(i.tensor_bytes),
            memory_bytes: saturating_i64(i.memory_bytes),
            sha256: i.sha256.clone(),
        }
    }
}

/// A vision projector loaded beside a model. Freed when released and no
/// conversation uses it any more.
#[derive(uniffi::Object)]
pub struct PocketProjector {
    pub(crate) projector: pocketlm::Projector,
}

#[uniffi::export]
impl PocketProjector {
    /// Reads the vision projector (mmproj GGUF) at `path` and loads it for
    /// `model`. One that is not the Gemma 3 layout, was made for another
    /// model, or is malformed is `FfiError.ProjectorMismatch`; a missing or
    /// damaged file gets the same errors as a model file.
    #[uniffi::constructor]
    pub fn load(model: Arc<PocketModel>, path: String) -> Result<Arc<Self>, FfiError> {
        Ok(Arc::new(PocketProjector { projector: pocketlm::Projector::load(model.core(), &path)? }))
    }

    /// What the projector is.
    pub fn info(&self) -> ProjectorInfo {
        self.projector.info().into()
    }
}

/// Decodes the images of one message (JPEG or PNG bytes each): a bad one is
/// `InvalidImage` with its position.
pub(crate) fn decode_images(images: &[Vec<u8>]) -> pocketlm::Result<Vec<pocketlm::Image>> {
    images
        .iter()
        .enumerate()
        .map(|(index, bytes)| pocketlm::Image::decode(bytes).map_err(|reason| pocketlm::Error::InvalidImage { index, reason }))
        .collect()
}

/// Plans memory for the model at `path` with the adapters at `adapter_paths`
/// and the vision projector at `projector_path` loaded, without loading
/// anything: like `plan_memory_with_adapters`, with the projector's memory
/// (its tensors and one image's encoding) taken from the budget first.
/// A projector that does not fit the model is `FfiError.ProjectorMismatch`.
#[uniffi::export]
pub fn plan_memory_with_projector(
    path: String,
    budget_bytes: i64,
    adapter_paths: Vec<String>,
    projector_path: String,
) -> Result<crate::model::MemoryPlan, FfiError> {
    let budget = crate::convert::amount("budget_bytes", budget_bytes)?;
    let gguf = pocketlm::inspect_file(std::path::Path::new(&path))?;
    let shapes = adapter_paths.iter().map(|a| pocketlm::inspect_adapter(std::path::Path::new(a), &gguf)).collect::<Result<Vec<_>, _>>()?;
    let projector = pocketlm::inspect_projector(std::path::Path::new(&projector_path), &gguf)?;
    let bytes = pocketlm::vision::projector_bytes(&projector);
    let plan = pocketlm::plan::with_projector(budget, bytes, |b| pocketlm::plan::fit_budget_with_adapters(&gguf, b, None, None, &shapes))?;
    Ok((&plan).into())
}
