//! The model catalog and recommendations: `PocketCatalog`, its entries and
//! which of them fit a device. Pure computation (no network): available
//! with or without the `download` feature.

use std::sync::{Arc, Mutex};

use crate::convert::{amount, count, opt_amount, saturating_i64};
use crate::error::FfiError;
use crate::model::MemoryPlan;

/// One file of a catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CatalogFile {
    /// The file's `https://` URL, pinned to a revision where one is known.
    pub url: String,
    /// Its name in the models directory.
    pub file_name: String,
    /// The host repository's revision the URL is pinned to, if any.
    #[uniffi(default = None)]
    pub revision: Option<String>,
    /// Size in bytes, if known.
    #[uniffi(default = None)]
    pub size: Option<i64>,
    /// SHA-256 (64 hex digits), if known.
    #[uniffi(default = None)]
    pub sha256: Option<String>,
}

/// A model's shapes, as its `config.json` declares them: what the planner
/// needs to cost it before download.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ModelShape {
    /// llama.cpp's architecture name (`llama`, `gemma3`, `qwen2`, `qwen3`, `phi3`).
    pub architecture: String,
    /// Transformer layers (`num_hidden_layers`).
    pub layers: i64,
    /// Hidden width (`hidden_size`).
    pub embedding: i64,
    /// Query heads (`num_attention_heads`).
    pub heads: i64,
    /// Key/value heads (`num_key_value_heads`).
    pub kv_heads: i64,
    /// Width of one head (`head_dim`).
    pub head_dim: i64,
    /// Feed-forward width (`intermediate_size`).
    pub feed_forward: i64,
    /// Rows of the embedding matrix (`vocab_size`).
    pub vocab: i64,
    /// Trained context length (`max_position_embeddings`).
    pub context_length: i64,
    /// Sliding-window length (Gemma 3); 0 for none.
    #[uniffi(default = 0)]
    pub sliding_window: i64,
    /// The output matrix is the embedding matrix (`tie_word_embeddings`).
    pub tied_embeddings: bool,
}

/// One model of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CatalogEntry {
    /// Stable identifier (lower case, digits, `.`, `_`, `-`).
    pub id: String,
    /// Name to show.
    pub name: String,
    /// Quantisation of the file, e.g. `Q4_K_M`.
    pub quantization: String,
    /// Licence name.
    pub license: String,
    /// Where the licence text is.
    #[uniffi(default = None)]
    pub license_url: Option<String>,
    /// The host wants a token (a licence accepted) before it serves the file.
    #[uniffi(default = false)]
    pub gated: bool,
    /// The model file.
    pub file: CatalogFile,
    /// The vision projector for image input, if any.
    #[uniffi(default = None)]
    pub projector: Option<CatalogFile>,
    /// The shapes the memory planner needs.
    pub shape: ModelShape,
    /// Where each fact comes from.
    #[uniffi(default = [])]
    pub sources: Vec<String>,
}

/// One catalog model costed for a device.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Recommendation {
    /// The entry's id.
    pub id: String,
    /// It fits the budget at the requested context.
    pub fits: bool,
    /// The configuration the planner chose (the cheapest when nothing fits), with its
    /// predicted peak; `None` when the shapes are beyond what the planner can cost.
    pub plan: Option<MemoryPlan>,
    /// Model weights counted, in bytes.
    pub weights_bytes: i64,
    /// The weights are estimated from the shape (the file size is not in the catalog).
    pub weights_estimated: bool,
    /// Projector weights counted, in bytes (0 without images).
    pub projector_bytes: i64,
    /// Bytes to download, if known.
    pub download_bytes: Option<i64>,
    /// Why it does not fit; `None` when it fits.
    pub reason: Option<String>,
}

/// The models an app can offer: the built-in ones, plus the app's own.
/// Shared between threads; reads never block on the network.
#[derive(uniffi::Object)]
pub struct PocketCatalog {
    inner: Mutex<pocketlm::Catalog>,
}

#[uniffi::export]
impl PocketCatalog {
    /// The models PocketLM targets (Llama 3.2, Gemma 3, Qwen 2.5 and 3, Phi-4-mini; Q4_K_M).
    #[uniffi::constructor]
    pub fn builtin() -> Arc<Self> {
        Arc::new(PocketCatalog { inner: Mutex::new(pocketlm::Catalog::builtin()) })
    }

    /// A catalog from a JSON document `{"version": 1, "models": [...]}` (docs/downloads.md).
    #[uniffi::constructor]
    pub fn from_json(json: String) -> Result<Arc<Self>, FfiError> {
        Ok(Arc::new(PocketCatalog { inner: Mutex::new(pocketlm::Catalog::from_json(&json)?) }))
    }

    /// Adds an entry after checking it (replacing one with the same id).
    pub fn add(&self, entry: CatalogEntry) -> Result<(), FfiError> {
        let entry = pocketlm::CatalogEntry::try_from(entry)?;
        Ok(self.lock().add(entry)?)
    }

    /// Every entry, in order.
    pub fn entries(&self) -> Vec<CatalogEntry> {
        self.lock().entries().iter().map(CatalogEntry::from).collect()
    }

    /// The entry with this id.
    pub fn get(&self, id: String) -> Option<CatalogEntry> {
        self.lock().get(&id).map(CatalogEntry::from)
    }

    /// Every entry costed for a device with `budget_bytes` of memory at
    /// `context_length` tokens (with the vision projector when
    /// `with_projector`): the ones that fit first, largest first.
    pub fn recommend(&self, budget_bytes: i64, context_length: i32, with_projector: bool) -> Result<Vec<Recommendation>, FfiError> {
        let request = pocketlm::RecommendRequest {
            budget_bytes: amount("budget_bytes", budget_bytes)?,
            context_length: count("context_length", context_length)?,
            with_projector,
        };
        let recommendations = self.lock().recommend(&request)?;
        Ok(recommendations.iter().map(Recommendation::from).collect())
    }

    /// The catalog as a JSON document `from_json` reads back.
    pub fn to_json(&self) -> String {
        self.lock().to_json()
    }
}

impl PocketCatalog {
    fn lock(&self) -> std::sync::MutexGuard<'_, pocketlm::Catalog> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl From<&pocketlm::CatalogFile> for CatalogFile {
    fn from(f: &pocketlm::CatalogFile) -> Self {
        CatalogFile {
            url: f.url.clone(),
            file_name: f.file_name.clone(),
            revision: f.revision.clone(),
            size: f.size.map(saturating_i64),
            sha256: f.sha256.clone(),
        }
    }
}

impl TryFrom<CatalogFile> for pocketlm::CatalogFile {
    type Error = pocketlm::Error;
    fn try_from(f: CatalogFile) -> Result<Self, Self::Error> {
        Ok(pocketlm::CatalogFile {
            url: f.url,
            file_name: f.file_name,
            revision: f.revision,
            size: opt_amount("size", f.size)?,
            sha256: f.sha256,
        })
    }
}

impl From<&pocketlm::ModelShape> for ModelShape {
    fn from(s: &pocketlm::ModelShape) -> Self {
        ModelShape {
            architecture: s.architecture.clone(),
            layers: saturating_i64(s.layers),
            embedding: saturating_i64(s.embedding),
            heads: saturating_i64(s.heads),
            kv_heads: saturating_i64(s.kv_heads),
            head_dim: saturating_i64(s.head_dim),
            feed_forward: saturating_i64(s.feed_forward),
            vocab: saturating_i64(s.vocab),
            context_length: saturating_i64(s.context_length),
            sliding_window: saturating_i64(s.sliding_window),
            tied_embeddings: s.tied_embeddings,
        }
    }
}

impl TryFrom<ModelShape> for pocketlm::ModelShape {
    type Error = pocketlm::Error;
    fn try_from(s: ModelShape) -> Result<Self, Self::Error> {
        Ok(pocketlm::ModelShape {
            architecture: s.architecture,
            layers: amount("shape.layers", s.layers)?,
            embedding: amount("shape.embedding", s.embedding)?,
            heads: amount("shape.heads", s.heads)?,
            kv_heads: amount("shape.kv_heads", s.kv_heads)?,
            head_dim: amount("shape.head_dim", s.head_dim)?,
            feed_forward: amount("shape.feed_forward", s.feed_forward)?,
            vocab: amount("shape.vocab", s.vocab)?,
            context_length: amount("shape.context_length", s.context_length)?,
            sliding_window: amount("shape.sliding_window", s.sliding_window)?,
            tied_embeddings: s.tied_embeddings,
        })
    }
}

impl From<&pocketlm::CatalogEntry> for CatalogEntry {
    fn from(e: &pocketlm::CatalogEntry) -> Self {
        CatalogEntry {
            id: e.id.clone(),
            name: e.name.clone(),
            quantization: e.quantization.clone(),
            license: e.license.clone(),
            license_url: e.license_url.clone(),
            gated: e.gated,
            file: (&e.file).into(),
            projector: e.projector.as_ref().map(CatalogFile::from),
            shape: (&e.shape).into(),
            sources: e.sources.clone(),
        }
    }
}

impl TryFrom<CatalogEntry> for pocketlm::CatalogEntry {
    type Error = pocketlm::Error;
    fn try_from(e: CatalogEntry) -> Result<Self, Self::Error> {
        Ok(pocketlm::CatalogEntry {
            id: e.id,
            name: e.name,
            quantization: e.quantization,
            license: e.license,
            license_url: e.license_url,
            gated: e.gated,
            file: e.file.try_into()?,
            projector: e.projector.map(TryInto::try_into).transpose()?,
            shape: e.shape.try_into()?,
            sources: e.sources,
        })
    }
}

impl From<&pocketlm::Recommendation> for Recommendation {
    fn from(r: &pocketlm::Recommendation) -> Self {
        Recommendation {
            id: r.id.clone(),
            fits: r.fits,
            plan: r.plan.as_ref().map(MemoryPlan::from),
            weights_bytes: saturating_i64(r.weights_bytes),
            weights_estimated: r.weights_estimated,
            projector_bytes: saturating_i64(r.projector_bytes),
            download_bytes: r.download_bytes.map(saturating_i64),
            reason: r.reason.clone(),
        }
    }
}
