//! uniffi bindings for PocketLM: small wrappers that convert types and
//! delegate to the `pocketlm` core. Kotlin and Swift are generated from this
//! crate in library mode (`uniffi-bindgen generate --library`); the idiomatic
//! Kotlin (`Flow`, `suspend`) and Swift (`AsyncThrowingStream`, `async`) APIs
//! are thin hand-written layers over the generated code.

mod conversation;
mod error;
mod live;
mod logging;
mod model;
mod routing;
mod types;

pub use conversation::{GenerationHandle, PocketConversation, ReplyListener};
pub use error::PocketLmError;
pub use logging::{init_logging, LogLevel, LogSink};
pub use model::{CancelSignal, LoadProgressListener, PocketModel};
pub use routing::{
    CloudEndpoint, Cost, Redactor, RouteListener, RoutePolicy, RouteReason, RouteRequest, RoutedConversation, RoutedReply, RouterConfig,
};
pub use types::*;

uniffi::setup_scaffolding!();
