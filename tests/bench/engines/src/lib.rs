//! What the three engine binaries share: the model, the cases, the report.

use std::path::Path;
use std::time::Instant;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use serde_json::Value;

/// The backend and the model at `path` (vocabulary and weights; no context).
pub fn load(path: &str) -> (LlamaBackend, LlamaModel) {
    let mut backend = LlamaBackend::init().expect("llama.cpp backend");
    backend.void_logs();
    let model = LlamaModel::load_from_file(&backend, Path::new(path), &LlamaModelParams::default()).expect("a loadable GGUF model");
    (backend, model)
}

/// The cases file: a JSON array of `{"name", "schema"}` objects, each
/// optionally with `"without"`: the same schema without the keyword under test.
pub fn cases(path: &str) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(path).expect("the cases file");
    let all: Vec<Value> = serde_json::from_str(&text).expect("a JSON array of cases");
    all.into_iter().map(|c| (c["name"].as_str().expect("a case name").to_string(), c)).collect()
}

/// Milliseconds since `t`.
pub fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// One result line (JSON) on stdout.
pub fn report(line: Value) {
    println!("{line}");
}

/// Runs `f` with the process's stderr sent to a temporary file, and returns
/// what was written there with `f`'s result (llama.cpp's converter reports
/// the parts of a schema it dropped only as a warning on stderr).
pub fn capture_stderr<T>(f: impl FnOnce() -> T) -> (T, String) {
    let path = std::env::temp_dir().join(format!("pocketlm-engines-{}.stderr", std::process::id()));
    let file = std::fs::File::create(&path).expect("a temporary file");
    use std::os::fd::AsRawFd;
    // SAFETY: plain descriptor juggling on fds this process owns; stderr is restored before returning.
    let saved = unsafe { libc::dup(2) };
    unsafe { libc::dup2(file.as_raw_fd(), 2) };
    let out = f();
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    (out, text)
}
