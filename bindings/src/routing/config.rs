//! How a routed conversation routes: policy, cloud endpoint, thresholds, prices.

use crate::chat::RequestOptions;

/// Where requests go. Nothing leaves the device under `LocalOnly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RoutePolicy {
    /// Only the device (the safe default to pass).
    LocalOnly,
    /// The device, escalating when it cannot or should not answer.
    PreferLocal,
    /// The cloud, falling back to the device when it fails.
    PreferCloud,
    /// Only the cloud.
    CloudOnly,
}

impl From<RoutePolicy> for pocketlm::RoutePolicy {
    fn from(p: RoutePolicy) -> Self {
        match p {
            RoutePolicy::LocalOnly => pocketlm::RoutePolicy::LocalOnly,
            RoutePolicy::PreferLocal => pocketlm::RoutePolicy::PreferLocal,
            RoutePolicy::PreferCloud => pocketlm::RoutePolicy::PreferCloud,
            RoutePolicy::CloudOnly => pocketlm::RoutePolicy::CloudOnly,
        }
    }
}

/// An OpenAI-compatible endpoint. The key stays in memory and is never logged.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CloudEndpoint {
    /// Base URL ending in `/v1`.
    pub base_url: String,
    /// Model name to request.
    pub model: String,
    /// Bearer token, if the endpoint needs one.
    #[uniffi(default = None)]
    pub api_key: Option<String>,
    /// Longest silence while waiting for data, in ms.
    #[uniffi(default = 30000)]
    pub read_timeout_ms: i64,
    /// Retries after transient failures (before any text streamed).
    #[uniffi(default = 2)]
    pub max_retries: i32,
}

/// How a routed conversation routes.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RouterConfig {
    /// The default policy.
    pub policy: RoutePolicy,
    /// The cloud endpoint; without one nothing can leave the device.
    #[uniffi(default = None)]
    pub cloud: Option<CloudEndpoint>,
    /// Escalate (prefer-local) when the confidence score falls below this, in [0, 1].
    #[uniffi(default = 0.0)]
    pub confidence_threshold: f32,
    /// Escalate (prefer-local) when a device answer takes longer, in ms.
    #[uniffi(default = None)]
    pub latency_budget_ms: Option<i64>,
    /// Cloud price per million prompt tokens.
    #[uniffi(default = 0.0)]
    pub price_input_per_million: f64,
    /// Cloud price per million generated tokens.
    #[uniffi(default = 0.0)]
    pub price_output_per_million: f64,
    /// A router probe file trained for the device model (`pocketlm
    /// train-router`): its calibrated score is what `confidence_threshold`
    /// judges, when the answer finishes. A bad or mismatched file fails creation.
    #[uniffi(default = None)]
    pub probe_path: Option<String>,
    /// Most one request may spend in the cloud; requests that could cost more stay on the device.
    #[uniffi(default = None)]
    pub budget_per_request: Option<f64>,
    /// Most this conversation may spend in the cloud in total.
    #[uniffi(default = None)]
    pub budget_total: Option<f64>,
    /// The cloud model's `tokenizer.json`, for exact cost estimates.
    #[uniffi(default = None)]
    pub cloud_tokenizer_path: Option<String>,
}

/// Per-request routing.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RouteRequest {
    /// Overrides the conversation's policy for this request.
    #[uniffi(default = None)]
    pub policy: Option<RoutePolicy>,
    /// `false` keeps this request on the device whatever the policy.
    #[uniffi(default = true)]
    pub allow_cloud: bool,
    /// Ask for the cloud explicitly (when allowed).
    #[uniffi(default = false)]
    pub escalate: bool,
    /// Structured output or tools, on whichever side answers (the cloud
    /// gets JSON Schema as `response_format` and tools as OpenAI `tools`).
    #[uniffi(default = None)]
    pub options: Option<RequestOptions>,
}
