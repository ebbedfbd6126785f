//! LoRA adapters: `PocketAdapter` (an adapter loaded onto a `PocketModel`,
//! shared by any number of conversations) and `AdapterSetting` (an adapter
//! with its scale, as `PocketConversation::set_adapters` takes them).
//! Loading blocks: the Kotlin and Swift wrappers run it off the caller's thread.

use std::sync::Arc;

use crate::convert::{amount, saturating_i32, saturating_i64};
use crate::error::FfiError;
use crate::model::{MemoryPlan, PocketModel};

/// What a loaded adapter is.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AdapterInfo {
    /// The file it was loaded from.
    pub path: String,
    /// Its `general.name`, if any.
    pub name: Option<String>,
    /// The base model's architecture, which the adapter names too.
    pub architecture: String,
    /// The largest rank among its matrices.
    pub rank: i32,
    /// Its `alpha` (0: none; the change is then `scale · B·A`, not `scale · alpha/rank · B·A`).
    pub alpha: f32,
    /// How many of the model's matrices it changes.
    pub targets: i32,
    /// Bytes of its tensors, held in memory while it is loaded.
    pub tensor_bytes: i64,
    /// SHA-256 (hex) of the file.
    pub sha256: String,
}

impl From<&pocketlm::AdapterInfo> for AdapterInfo {
    fn from(i: &pocketlm::AdapterInfo) -> Self {
        AdapterInfo {
            path: i.path.display().to_string(),
            name: i.name.clone(),
            architecture: i.architecture.clone(),
            rank: saturating_i32(i.rank),
            alpha: i.alpha,
            targets: saturating_i32(i.targets),
            tensor_bytes: saturating_i64(i.tensor_bytes),
            sha256: i.sha256.clone(),
        }
    }
}

/// A LoRA adapter loaded onto a model. Freed when released and no
/// conversation uses it any more.
#[derive(uniffi::Object)]
pub struct PocketAdapter {
    pub(crate) adapter: pocketlm::LoraAdapter,
}

#[uniffi::export]
impl PocketAdapter {
    /// Reads the GGUF LoRA adapter at `path` and loads it onto `model`
    /// (whose weights are shared, not reloaded). An adapter made for another
    /// base model, or malformed, is `FfiError.AdapterMismatch`; a missing or
    /// damaged file gets the same errors as a model file.
    #[uniffi::constructor]
    pub fn load(model: Arc<PocketModel>, path: String) -> Result<Arc<Self>, FfiError> {
        Ok(Arc::new(PocketAdapter { adapter: pocketlm::LoraAdapter::load(model.core(), &path)? }))
    }

    /// What the adapter is.
    pub fn info(&self) -> AdapterInfo {
        self.adapter.info().into()
    }
}

/// An adapter and the scale to apply it with (1: as trained; 0: off).
#[derive(Clone, uniffi::Record)]
pub struct AdapterSetting {
    /// The adapter, loaded onto the conversation's model.
    pub adapter: Arc<PocketAdapter>,
    /// Its scale.
    #[uniffi(default = 1.0)]
    pub scale: f32,
}

/// Plans memory for the model at `path` with the adapters at `adapter_paths`
/// loaded, without loading anything: like `plan_memory`, with the adapters'
/// memory taken from the budget first. Each adapter is checked against the
/// model (`FfiError.AdapterMismatch`).
#[uniffi::export]
pub fn plan_memory_with_adapters(path: String, budget_bytes: i64, adapter_paths: Vec<String>) -> Result<MemoryPlan, FfiError> {
    let budget = amount("budget_bytes", budget_bytes)?;
    let gguf = pocketlm::inspect_file(std::path::Path::new(&path))?;
    let shapes = adapter_paths.iter().map(|a| pocketlm::inspect_adapter(std::path::Path::new(a), &gguf)).collect::<Result<Vec<_>, _>>()?;
    Ok((&pocketlm::plan::fit_budget_with_adapters(&gguf, budget, None, None, &shapes)?).into())
}
