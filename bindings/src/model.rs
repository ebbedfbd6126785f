//! `PocketModel`: a loaded model, shared by its conversations.

use std::sync::Arc;

use crate::conversation::PocketConversation;
use crate::error::PocketLmError;
use crate::types::{ConversationConfig, ModelConfig, ModelInfo};

/// A loaded GGUF model. Loading is blocking: the Kotlin and Swift wrappers
/// run it off the main thread. Freed when closed (Kotlin) or released (Swift)
/// and no conversation uses it any more.
#[derive(uniffi::Object)]
pub struct PocketModel {
    model: pocketlm::Model,
    config: ModelConfig,
}

#[uniffi::export]
impl PocketModel {
    /// Validates and loads the model at `path`. Bad files give typed errors.
    #[uniffi::constructor]
    pub fn load(path: String, config: ModelConfig) -> Result<Arc<Self>, PocketLmError> {
        let options = pocketlm::ModelOptions { use_mmap: config.use_mmap, gpu_layers: if config.use_gpu { u32::MAX } else { 0 } };
        let model = pocketlm::Model::load(&path, &options)?;
        Ok(Arc::new(PocketModel { model, config }))
    }

    /// What the model is.
    pub fn info(&self) -> ModelInfo {
        self.model.info().into()
    }

    /// Milliseconds the load took.
    pub fn load_ms(&self) -> f64 {
        self.model.load_ms()
    }

    /// Starts a conversation with its own context and KV cache.
    pub fn new_conversation(&self, config: ConversationConfig) -> Result<Arc<PocketConversation>, PocketLmError> {
        let options = pocketlm::ConversationOptions {
            context_length: config.context_length.or(self.config.context_length),
            threads: self.config.threads,
            system_prompt: config.system_prompt,
            sampling: config.sampling.into(),
            overflow: if config.drop_oldest_on_overflow {
                pocketlm::OverflowPolicy::DropOldest
            } else {
                pocketlm::OverflowPolicy::Error
            },
            ..pocketlm::ConversationOptions::default()
        };
        let conversation = pocketlm::Conversation::new(&self.model, options)?;
        Ok(Arc::new(PocketConversation::new(conversation)))
    }
}

/// Number of models whose weights are still in memory in this process
/// (a model lives until it and all its conversations are freed).
#[uniffi::export]
pub fn live_model_count() -> u64 {
    pocketlm::live_model_count() as u64
}
