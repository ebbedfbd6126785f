//! Routes llama.cpp's and ggml's own log lines into the `log` facade.
//!
//! Lines arrive from C, sometimes in pieces (`GGML_LOG_LEVEL_CONT`); they are
//! joined per thread and emitted under the `llama.cpp` target once complete.
//! llama.cpp is quiet by default: only its errors pass.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

use llama_cpp_sys_2 as sys;
use log::{Level, LevelFilter};

/// The most verbose llama.cpp level forwarded, as a `LevelFilter` index.
static LLAMA_LOG_LEVEL: AtomicUsize = AtomicUsize::new(LevelFilter::Error as usize);

thread_local! {
    /// The line being assembled on this thread and its level.
    static PENDING: RefCell<(Option<Level>, String)> = const { RefCell::new((None, String::new())) };
}

/// Sets how much of llama.cpp's own logging reaches the `log` facade
/// (target `llama.cpp`). The default, `Error`, keeps it quiet.
pub fn set_llama_log_level(level: LevelFilter) {
    LLAMA_LOG_LEVEL.store(level as usize, Ordering::Relaxed);
}

fn llama_level_enabled(level: Level) -> bool {
    (level as usize) <= LLAMA_LOG_LEVEL.load(Ordering::Relaxed)
}

/// Installs the bridge. Called once, before the llama.cpp backend starts.
pub(crate) fn install() {
    // SAFETY: `forward` is a valid `extern "C"` callback for the process
    // lifetime and ignores its user data.
    unsafe { sys::llama_log_set(Some(forward), std::ptr::null_mut()) };
    // SAFETY: as above; the multimodal library (vision projectors) and its
    // helpers log through their own setters, else straight to stderr.
    unsafe {
        sys::mtmd_log_set(Some(forward), std::ptr::null_mut());
        sys::mtmd_helper_log_set(Some(forward), std::ptr::null_mut());
    }
}

fn map_level(level: sys::ggml_log_level) -> Option<Level> {
    match level {
        sys::GGML_LOG_LEVEL_ERROR => Some(Level::Error),
        sys::GGML_LOG_LEVEL_WARN => Some(Level::Warn),
        sys::GGML_LOG_LEVEL_INFO => Some(Level::Info),
        sys::GGML_LOG_LEVEL_DEBUG => Some(Level::Debug),
        _ => None, // CONT or NONE: continues the current line
    }
}

unsafe extern "C" fn forward(level: sys::ggml_log_level, text: *const c_char, _user: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for this call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    // Never unwind into C.
    let _ = std::panic::catch_unwind(|| {
        PENDING.with(|pending| {
            let mut pending = pending.borrow_mut();
            if let Some(new_level) = map_level(level) {
                if !pending.1.is_empty() {
                    let line = std::mem::take(&mut pending.1);
                    emit(pending.0, &line);
                }
                pending.0 = Some(new_level);
            }
            pending.1.push_str(&text);
            while let Some(end) = pending.1.find('\n') {
                let line: String = pending.1.drain(..=end).collect();
                emit(pending.0, &line);
            }
        });
    });
}

fn emit(level: Option<Level>, line: &str) {
    let line = line.trim_end();
    let level = level.unwrap_or(Level::Debug);
    if !line.is_empty() && llama_level_enabled(level) {
        log::log!(target: "llama.cpp", level, "{line}");
    }
}
