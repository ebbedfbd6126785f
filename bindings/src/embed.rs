//! Embeddings and retrieval: `PocketEmbedder` (an embedding model and its
//! context: texts to vectors) and `PocketVectorIndex` (chunks and their
//! vectors, top-k by cosine, saved to a file). Loading, embedding, saving
//! and reading an index block: the Kotlin and Swift wrappers run them off the
//! caller's thread. Adding, removing and searching are quick and run on it.

use std::sync::{Arc, Mutex};

use crate::convert::{count, opt_count, saturating_i32, saturating_i64};
use crate::error::FfiError;

/// How the token states of a text become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum EmbedPooling {
    /// The mean over every token (sentence-transformers' default).
    Mean,
    /// The first token's state (BERT's `[CLS]`).
    Cls,
    /// The last token's state (decoder embedding models).
    Last,
}

impl From<EmbedPooling> for pocketlm::Pooling {
    fn from(p: EmbedPooling) -> Self {
        match p {
            EmbedPooling::Mean => pocketlm::Pooling::Mean,
            EmbedPooling::Cls => pocketlm::Pooling::Cls,
            EmbedPooling::Last => pocketlm::Pooling::Last,
        }
    }
}

/// How a [`PocketEmbedder`] embeds (the core's `EmbedOptions`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct EmbedConfig {
    /// `None`: the pooling the model declares (embedding models do; a chat model needs one).
    #[uniffi(default = None)]
    pub pooling: Option<EmbedPooling>,
    /// Scale every vector to length 1 (cosine similarity becomes a dot product).
    #[uniffi(default = true)]
    pub normalize: bool,
    /// Longest text in tokens; `None`: the model's trained context, at most 512.
    #[uniffi(default = None)]
    pub max_tokens: Option<i32>,
    /// Cut longer texts instead of failing with `EmbeddingInputTooLong`.
    #[uniffi(default = false)]
    pub truncate: bool,
    /// Inference threads; `None`: the performance cores.
    #[uniffi(default = None)]
    pub threads: Option<i32>,
}

/// An embedding model loaded with its embedder. Calls are serialised: one
/// embedding batch runs at a time.
#[derive(uniffi::Object)]
pub struct PocketEmbedder {
    embedder: Mutex<pocketlm::Embedder>,
    dimensions: i32,
}

#[uniffi::export]
impl PocketEmbedder {
    /// Loads the model at `path` for embeddings (an embedding model, or a
    /// chat model with a pooling) and makes its embedder. Bad files and
    /// models that cannot embed give typed errors.
    #[uniffi::constructor]
    pub fn load(path: String, config: EmbedConfig) -> Result<Arc<Self>, FfiError> {
        let options = pocketlm::EmbedOptions {
            pooling: config.pooling.map(Into::into),
            normalize: config.normalize,
            max_tokens: opt_count("max_tokens", config.max_tokens)?,
            truncate: config.truncate,
            threads: opt_count("threads", config.threads)?,
        };
        let model = pocketlm::Model::load_for_embeddings(&path, &pocketlm::ModelOptions::default())?;
        let embedder = pocketlm::Embedder::new(&model, options)?;
        let dimensions = saturating_i32(u32::try_from(embedder.dimensions()).unwrap_or(u32::MAX));
        Ok(Arc::new(PocketEmbedder { embedder: Mutex::new(embedder), dimensions }))
    }

    /// The width of the vectors.
    pub fn dimensions(&self) -> i32 {
        self.dimensions
    }

    /// One vector per text, in order. A text over `max_tokens` fails the
    /// call with `EmbeddingInputTooLong` naming it (unless `truncate`).
    pub fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, FfiError> {
        let mut embedder = self.embedder.lock().unwrap_or_else(|p| p.into_inner());
        Ok(embedder.embed(&texts)?.vectors)
    }
}

/// One result of a search.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SearchHit {
    /// The chunk's id.
    pub id: String,
    /// The chunk's text.
    pub text: String,
    /// Cosine similarity with the query (higher is closer).
    pub score: f32,
}

/// Chunks of text and their vectors, searchable by cosine similarity
/// (exact search; fast for tens of thousands of chunks).
#[derive(uniffi::Object)]
pub struct PocketVectorIndex {
    index: Mutex<pocketlm::VectorIndex>,
}

impl PocketVectorIndex {
    fn with<T>(&self, f: impl FnOnce(&mut pocketlm::VectorIndex) -> T) -> T {
        f(&mut self.index.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[uniffi::export]
impl PocketVectorIndex {
    /// An empty index for vectors of `dimensions` values.
    #[uniffi::constructor]
    pub fn new(dimensions: i32) -> Result<Arc<Self>, FfiError> {
        let index = pocketlm::VectorIndex::new(count("dimensions", dimensions)? as usize)?;
        Ok(Arc::new(PocketVectorIndex { index: Mutex::new(index) }))
    }

    /// Reads an index saved with [`PocketVectorIndex::save`]; a damaged file is a `VectorIndex` error.
    #[uniffi::constructor]
    pub fn load(path: String) -> Result<Arc<Self>, FfiError> {
        Ok(Arc::new(PocketVectorIndex { index: Mutex::new(pocketlm::VectorIndex::load(std::path::Path::new(&path))?) }))
    }

    /// Adds a chunk, or replaces the one with the same id.
    pub fn add(&self, id: String, text: String, vector: Vec<f32>) -> Result<(), FfiError> {
        Ok(self.with(|i| i.add(&id, &text, &vector))?)
    }

    /// Removes a chunk; `false` if there was none with this id.
    pub fn remove(&self, id: String) -> bool {
        self.with(|i| i.remove(&id))
    }

    /// How many chunks it holds.
    pub fn size(&self) -> i64 {
        self.with(|i| saturating_i64(i.len() as u64))
    }

    /// The `k` chunks closest to `query`, closest first.
    pub fn search(&self, query: Vec<f32>, k: i32) -> Result<Vec<SearchHit>, FfiError> {
        let k = count("k", k)? as usize;
        let hits = self.with(|i| i.search(&query, k))?;
        Ok(hits.into_iter().map(|h| SearchHit { id: h.id, text: h.text, score: h.score }).collect())
    }

    /// Writes the index to `path` (atomically: a temporary file, then a rename).
    pub fn save(&self, path: String) -> Result<(), FfiError> {
        Ok(self.with(|i| i.save(std::path::Path::new(&path)))?)
    }
}
