//! One logging setup for the whole SDK: the core's and llama.cpp's logs go to
//! logcat on Android, the unified log on Apple platforms, and optionally to a
//! callback the app provides.

use std::sync::{Arc, OnceLock, RwLock};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Failures.
    Error,
    /// Unexpected but handled.
    Warn,
    /// Milestones (model loaded, turns dropped).
    Info,
    /// Per-answer details.
    Debug,
}

impl LogLevel {
    fn filter(self) -> LevelFilter {
        match self {
            LogLevel::Off => LevelFilter::Off,
            LogLevel::Error => LevelFilter::Error,
            LogLevel::Warn => LevelFilter::Warn,
            LogLevel::Info => LevelFilter::Info,
            LogLevel::Debug => LevelFilter::Debug,
        }
    }

    fn from_level(level: Level) -> Self {
        match level {
            Level::Error => LogLevel::Error,
            Level::Warn => LogLevel::Warn,
            Level::Info => LogLevel::Info,
            Level::Debug | Level::Trace => LogLevel::Debug,
        }
    }
}

/// Receives log lines in the app (optional). Implemented in Kotlin or Swift.
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    /// One log line; `target` is `pocketlm` or `llama.cpp`.
    fn log(&self, level: LogLevel, target: String, message: String);
}

struct SdkLogger {
    /// PocketLM's own level (llama.cpp's is filtered in the core).
    level: std::sync::atomic::AtomicUsize,
    platform: Option<Box<dyn Log>>,
    sink: RwLock<Option<Arc<dyn LogSink>>>,
}

impl Log for SdkLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("llama.cpp") || (metadata.level() as usize) <= self.level.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if let Some(platform) = &self.platform {
            platform.log(record);
        }
        let sink = self.sink.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(sink) = sink {
            let target = if record.target().starts_with("llama.cpp") { "llama.cpp" } else { "pocketlm" };
            sink.log(LogLevel::from_level(record.level()), target.to_owned(), record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static LOGGER: OnceLock<&'static SdkLogger> = OnceLock::new();

fn platform_logger() -> Option<Box<dyn Log>> {
    #[cfg(target_os = "android")]
    {
        return Some(Box::new(android_logger::AndroidLogger::new(
            android_logger::Config::default().with_max_level(LevelFilter::Trace).with_tag("PocketLM"),
        )));
    }
    #[cfg(any(target_os = "ios", target_os = "macos"))]
    {
        return Some(Box::new(oslog::OsLogger::new("dev.pocketlm").level_filter(LevelFilter::Trace)));
    }
    #[allow(unreachable_code)]
    None
}

/// Sets up logging: `level` for PocketLM's own messages, `llama_level` for
/// llama.cpp's (keep it at `Error` or `Off` unless debugging), and an
/// optional `sink`. The platform logger is installed on the first call;
/// later calls change the levels and the sink.
#[uniffi::export]
pub fn init_logging(level: LogLevel, llama_level: LogLevel, sink: Option<Arc<dyn LogSink>>) {
    let logger = *LOGGER.get_or_init(|| {
        let logger: &'static SdkLogger =
            Box::leak(Box::new(SdkLogger { level: Default::default(), platform: platform_logger(), sink: RwLock::new(None) }));
        // Fails only if the app installed its own `log` logger first; then
        // PocketLM's records go to that logger instead.
        let _ = log::set_logger(logger);
        logger
    });
    *logger.sink.write().unwrap_or_else(|p| p.into_inner()) = sink;
    logger.level.store(level.filter() as usize, std::sync::atomic::Ordering::Relaxed);
    let max = level.filter().max(if llama_level == LogLevel::Off { LevelFilter::Off } else { llama_level.filter() });
    log::set_max_level(max);
    pocketlm::set_llama_log_level(llama_level.filter());
}
