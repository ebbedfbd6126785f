//! The optional cloud layer (cargo feature `cloud`): an OpenAI-compatible
//! client with bounded server-sent-event parsing, retries and a circuit
//! breaker, and the router that answers on the device first and escalates
//! only when the app allows it, counting what each answer cost. Without the
//! feature, the core depends on no HTTP, TLS or async runtime crate.

mod client;
mod cost;
mod router;
mod sse;

pub use client::{CloudClient, CloudConfig, CloudReply, CloudRequest, CloudUsage};
pub use cost::{Cost, CostTotals, Pricing};
pub use router::{
    AnsweredBy, CloudBudget, CloudEstimate, CloudTokenizer, Redactor, RouteEvent, RouteInfo, RouteOptions, RoutePolicy, RouteReason,
    RoutedChat, RoutedReply, RouterConfig,
};
