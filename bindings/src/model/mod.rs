//! Loading a model: `PocketModel` (a loaded model, shared by its
//! conversations), its configuration and description, load progress and
//! cancellation, and memory planning from the file header.

mod config;
mod info;

pub use config::{BackendRequest, ModelConfig, WeightLoading};
pub use info::{BackendInfo, MemoryPlan, ModelInfo};

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::chat::{ConversationConfig, PocketConversation};
use crate::convert::{amount, opt_amount, opt_count, saturating_i64};
use crate::error::FfiError;
use crate::task::panic_text;

fn plan_for(path: &str, budget_bytes: u64, max_context: Option<u32>) -> Result<pocketlm::MemoryPlan, pocketlm::Error> {
    let gguf = pocketlm::inspect_file(std::path::Path::new(path))?;
    pocketlm::plan::fit_budget(&gguf, budget_bytes, max_context, None)
}

/// Plans memory for the model at `path` without loading it: the largest
/// context (and KV cache type) whose predicted peak fits `budget_bytes`.
#[uniffi::export]
pub fn plan_memory(path: String, budget_bytes: i64) -> Result<MemoryPlan, FfiError> {
    Ok((&plan_for(&path, amount("budget_bytes", budget_bytes)?, None)?).into())
}

/// Cancels a [`PocketModel::load_cancellable`] from any thread.
#[derive(uniffi::Object, Default)]
pub struct CancelSignal {
    token: pocketlm::CancelToken,
}

#[uniffi::export]
impl CancelSignal {
    /// A signal not yet raised.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(CancelSignal::default())
    }

    /// Raises it; safe from any thread, any number of times.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether it was raised.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// Receives a model's load progress. Implemented in Kotlin or Swift.
#[uniffi::export(with_foreign)]
pub trait LoadProgressListener: Send + Sync {
    /// The fraction loaded, in [0, 1], increasing by at least 1 % between
    /// calls, ending with 1. Called on the loading thread.
    fn on_progress(&self, fraction: f32);
}

/// A loaded GGUF model. Loading is blocking: the Kotlin and Swift wrappers
/// run it off the main thread. Freed when closed (Kotlin) or released (Swift)
/// and no conversation uses it any more.
#[derive(uniffi::Object)]
pub struct PocketModel {
    model: pocketlm::Model,
    config: ModelConfig,
    plan: Option<pocketlm::MemoryPlan>,
}

#[uniffi::export]
impl PocketModel {
    /// Validates and loads the model at `path`. Bad files give typed errors.
    #[uniffi::constructor]
    pub fn load(path: String, config: ModelConfig) -> Result<Arc<Self>, FfiError> {
        Ok(Arc::new(PocketModel::load_core(&path, config)?))
    }

    /// [`PocketModel::load`] with progress and cancellation: raising `cancel`
    /// stops the load at the next tensor with `LoadCancelled`. A listener that
    /// fails (a Kotlin exception) gets no further calls; the load goes on.
    #[uniffi::constructor]
    pub fn load_cancellable(
        path: String,
        config: ModelConfig,
        progress: Option<Arc<dyn LoadProgressListener>>,
        cancel: Arc<CancelSignal>,
    ) -> Result<Arc<Self>, FfiError> {
        let mut last = f32::NEG_INFINITY;
        let mut failed = false;
        let report = move |fraction: f32| {
            let Some(listener) = progress.as_ref() else { return };
            if failed || (fraction < last + 0.01 && fraction < 1.0) {
                return;
            }
            last = fraction;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| listener.on_progress(fraction))) {
                failed = true;
                log::warn!("the load progress listener failed: {}", panic_text(&*panic));
            }
        };
        Ok(Arc::new(PocketModel::load_core_with(&path, config, report, &cancel.token)?))
    }

    /// What the model is.
    pub fn info(&self) -> ModelInfo {
        self.model.info().into()
    }

    /// The configuration chosen for the memory budget, if one was given.
    pub fn memory_plan(&self) -> Option<MemoryPlan> {
        self.plan.as_ref().map(Into::into)
    }

    /// Where the model runs (a GPU request that fell back to the CPU says why).
    pub fn backend(&self) -> BackendInfo {
        self.model.backend().into()
    }

    /// Milliseconds the load took.
    pub fn load_ms(&self) -> f64 {
        self.model.load_ms()
    }

    /// Starts a conversation with its own context and KV cache.
    pub fn new_conversation(&self, config: ConversationConfig) -> Result<Arc<PocketConversation>, FfiError> {
        let conversation = pocketlm::Conversation::new(&self.model, self.conversation_options(config)?)?;
        Ok(Arc::new(PocketConversation::new(conversation)))
    }
}

impl PocketModel {
    /// Loads with core errors (the router keeps them as escalation reasons).
    pub(crate) fn load_core(path: &str, config: ModelConfig) -> Result<PocketModel, pocketlm::Error> {
        PocketModel::load_core_with(path, config, |_| {}, &pocketlm::CancelToken::new())
    }

    fn load_core_with(
        path: &str,
        config: ModelConfig,
        progress: impl FnMut(f32) + 'static,
        cancel: &pocketlm::CancelToken,
    ) -> Result<PocketModel, pocketlm::Error> {
        let options = pocketlm::ModelOptions {
            weights: config.weight_loading.unwrap_or_default().into(),
            backend: config.backend.unwrap_or_default().into(),
            gpu_layers: opt_count("gpu_layers", config.gpu_layers)?,
        };
        let context_length = opt_count("context_length", config.context_length)?;
        opt_count("threads", config.threads)?;
        // With a budget, plan from the header alone, before any large allocation.
        let plan = match opt_amount("memory_budget_bytes", config.memory_budget_bytes)? {
            Some(budget) => Some(plan_for(path, budget, context_length)?),
            None => None,
        };
        let model = pocketlm::Model::load_with(path, &options, progress, cancel)?;
        Ok(PocketModel { model, config, plan })
    }

    /// The core model.
    pub(crate) fn core(&self) -> &pocketlm::Model {
        &self.model
    }

    /// A conversation's options: the budget plan's context and KV type, then the config's.
    pub(crate) fn conversation_options(&self, config: ConversationConfig) -> Result<pocketlm::ConversationOptions, pocketlm::Error> {
        let planned = self.plan.as_ref();
        let model_context = opt_count("context_length", self.config.context_length)?;
        Ok(pocketlm::ConversationOptions {
            context_length: opt_count("context_length", config.context_length)?.or(planned.map(|p| p.ctx)).or(model_context),
            kv_type: planned.map_or_else(Default::default, |p| p.kv_type),
            batch_size: planned.map_or(512, |p| p.batch_size),
            threads: opt_count("threads", self.config.threads)?,
            system_prompt: config.system_prompt,
            sampling: config.sampling.try_into()?,
            overflow: if config.drop_oldest_on_overflow { pocketlm::OverflowPolicy::DropOldest } else { pocketlm::OverflowPolicy::Error },
            ..pocketlm::ConversationOptions::default()
        })
    }
}

/// Number of models whose weights are still in memory in this process
/// (a model lives until it and all its conversations are freed).
#[uniffi::export]
pub fn live_model_count() -> i64 {
    saturating_i64(pocketlm::live_model_count() as u64)
}
