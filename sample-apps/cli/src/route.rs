//! Routing options of `generate` and `chat`: where answers may come from.

use clap::Args;
use std::sync::Arc;

use pocketlm::{CloudBudget, CloudConfig, CloudTokenizer, ConfidenceOptions, Error, Pricing, Probe, RoutePolicy, RouterConfig};

/// Flags that turn on the opt-in cloud path. The API key is read from an
/// environment variable, never from the command line.
#[derive(Args, Debug, Clone)]
pub struct RouteArgs {
    /// Where answers come from: local-only (default), prefer-local, prefer-cloud or cloud-only.
    #[arg(long, default_value = "local-only")]
    pub route: RoutePolicy,
    /// OpenAI-compatible base URL ending in /v1 (e.g. https://api.openai.com/v1).
    #[arg(long)]
    pub cloud_url: Option<String>,
    /// Model name to request from the cloud.
    #[arg(long)]
    pub cloud_model: Option<String>,
    /// Environment variable holding the cloud API key.
    #[arg(long)]
    pub cloud_key_env: Option<String>,
    /// Escalate (prefer-local) when the device's confidence score falls below this, in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    pub confidence_threshold: f32,
    /// Escalate (prefer-local) when the device answer takes longer than this, in ms.
    #[arg(long)]
    pub latency_budget_ms: Option<u64>,
    /// Cloud price per million prompt tokens, for cost accounting.
    #[arg(long, default_value_t = 0.0)]
    pub price_in: f64,
    /// Cloud price per million generated tokens, for cost accounting.
    #[arg(long, default_value_t = 0.0)]
    pub price_out: f64,
    /// Cloud read timeout (longest silence), in ms.
    #[arg(long, default_value_t = 30_000)]
    pub cloud_timeout_ms: u64,
    /// A probe trained for the device model (`pocketlm train-router`): it judges device
    /// answers against --confidence-threshold.
    #[arg(long)]
    pub router_probe: Option<std::path::PathBuf>,
    /// Most one request may spend in the cloud (requests that could cost more stay on the device).
    #[arg(long)]
    pub budget_per_request: Option<f64>,
    /// Most the whole session may spend in the cloud.
    #[arg(long)]
    pub budget_total: Option<f64>,
    /// The cloud model's tokenizer.json, for exact cost estimates.
    #[arg(long)]
    pub cloud_tokenizer: Option<std::path::PathBuf>,
}

/// Reads an API key from the environment variable named by option `name`
/// (keys never come from the command line); `None` when no variable is named.
pub fn key_from_env(name: &'static str, var: Option<&str>) -> Result<Option<String>, Error> {
    var.map(|var| {
        std::env::var(var).map_err(|_| Error::InvalidOption {
            name,
            value: var.to_string(),
            expected: "the name of a set environment variable holding the API key".into(),
        })
    })
    .transpose()
}

impl RouteArgs {
    /// The router configuration these flags describe.
    pub fn config(&self) -> Result<RouterConfig, Error> {
        let cloud = match (&self.cloud_url, &self.cloud_model) {
            (Some(url), Some(model)) => {
                let api_key = key_from_env("cloud_key_env", self.cloud_key_env.as_deref())?;
                Some(CloudConfig { read_timeout_ms: self.cloud_timeout_ms, ..CloudConfig::new(url, model, api_key) })
            }
            (None, None) => None,
            _ => {
                return Err(Error::InvalidOption {
                    name: "cloud",
                    value: "only one of --cloud-url and --cloud-model".into(),
                    expected: "both --cloud-url and --cloud-model, or neither".into(),
                })
            }
        };
        if cloud.is_none() && matches!(self.route, RoutePolicy::CloudOnly) {
            return Err(Error::InvalidOption {
                name: "route",
                value: self.route.as_str().into(),
                expected: "--cloud-url and --cloud-model for cloud routing".into(),
            });
        }
        Ok(RouterConfig {
            policy: self.route,
            cloud,
            pricing: Pricing { input_per_million: self.price_in, output_per_million: self.price_out },
            confidence: ConfidenceOptions { threshold: self.confidence_threshold, ..ConfidenceOptions::default() },
            latency_budget_ms: self.latency_budget_ms,
            redact: None,
            probe: self.router_probe.as_deref().map(Probe::load).transpose()?.map(Arc::new),
            budget: CloudBudget { per_request: self.budget_per_request, total: self.budget_total },
            cloud_tokenizer: self.cloud_tokenizer.as_deref().map(CloudTokenizer::from_file).transpose()?.map(Arc::new),
        })
    }
}
