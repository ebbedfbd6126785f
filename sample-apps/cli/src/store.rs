//! `pull`, `models` and `rm`: the models directory, through the core's downloader.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use pocketlm::{DownloadControl, DownloadOptions, DownloadProgress, DownloadRequest, DownloadState, Downloader, Error, ModelStore};

/// The default models directory: `$XDG_DATA_HOME/pocketlm/models` (or `~/.local/share/…`).
pub fn default_dir() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local").join("share"));
    data.join("pocketlm").join("models")
}

/// The file name a URL's last path segment gives (query and fragment dropped).
fn name_from_url(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let name = path.rsplit('/').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// `pull`: downloads `url` into `dir`, resuming a part left by an earlier run;
/// Ctrl-C cancels (the part is kept). Prints the installed path.
pub fn pull(url: &str, sha256: Option<String>, name: Option<String>, dir: &Path, token_env: Option<&str>) -> Result<(), Error> {
    let file_name = name.or_else(|| name_from_url(url)).ok_or_else(|| Error::InvalidOption {
        name: "name",
        value: url.to_string(),
        expected: "a URL ending in a file name, or --name".into(),
    })?;
    let token = token_env.and_then(|var| std::env::var(var).ok()).filter(|t| !t.is_empty());
    let request = DownloadRequest { sha256, token, ..DownloadRequest::new(url, file_name) };
    let downloader = Downloader::new(dir, DownloadOptions::default())?;
    let control = DownloadControl::new();
    let cancel = control.clone();
    let _ = ctrlc::set_handler(move || cancel.cancel());
    let terminal = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    let model = downloader.download(&request, &control, &mut |p| report(p, terminal, &mut last_line))?;
    if terminal {
        eprintln!();
    }
    println!("{}", model.path.display());
    Ok(())
}

/// One progress report: a redrawn bar on a terminal, a line per state or 10 % otherwise.
fn report(p: &DownloadProgress, terminal: bool, last: &mut String) {
    let mib = |b: u64| b as f64 / 1048576.0;
    let state = format!("{:?}", p.state).to_lowercase();
    let size = match p.total {
        Some(t) => format!("{:.1}/{:.1} MiB", mib(p.downloaded), mib(t)),
        None => format!("{:.1} MiB", mib(p.downloaded)),
    };
    let speed = if p.bytes_per_second > 0.0 { format!(", {:.1} MiB/s", p.bytes_per_second / 1048576.0) } else { String::new() };
    let eta = p.eta_seconds.map(|s| format!(", {:.0} s left", s)).unwrap_or_default();
    if terminal {
        let percent = p.total.filter(|&t| t > 0).map_or(0.0, |t| p.downloaded as f64 / t as f64);
        let filled = (percent * 30.0) as usize;
        let bar: String = "#".repeat(filled) + &" ".repeat(30 - filled.min(30));
        eprint!("\r[{bar}] {:>5.1} % {state}: {size}{speed}{eta}\x1b[K", percent * 100.0);
        let _ = std::io::stderr().flush();
    } else {
        // Plain lines: on every state change and every 10 %.
        let decile = p.total.filter(|&t| t > 0).map_or(0, |t| p.downloaded * 10 / t);
        let key = format!("{state} {decile}");
        if key != *last || matches!(p.state, DownloadState::Done | DownloadState::Failed) {
            eprintln!("{state}: {size}{speed}{eta}");
            *last = key;
        }
    }
}

/// `models`: the installed files, with sizes and hashes.
pub fn list(dir: &Path, json: bool) -> Result<(), Error> {
    let store = ModelStore::open(dir)?;
    let models = store.installed()?;
    if json {
        let used = store.used_bytes();
        println!("{}", serde_json::json!({ "dir": store.dir(), "models": models, "used_bytes": used, "free_bytes": store.free_space() }));
        return Ok(());
    }
    for m in &models {
        println!("{:<48} {:>9.1} MiB  {}", m.file_name, m.size as f64 / 1048576.0, m.sha256.as_deref().unwrap_or("(not verified)"));
    }
    eprintln!("{} model(s), {:.1} MiB used in {}", models.len(), store.used_bytes() as f64 / 1048576.0, store.dir().display());
    Ok(())
}

/// `rm`: deletes an installed file (and any part of it).
pub fn remove(dir: &Path, name: &str) -> Result<(), Error> {
    let store = ModelStore::open(dir)?;
    if !store.delete(name)? {
        return Err(Error::ModelNotFound { path: store.path(name)? });
    }
    eprintln!("deleted {name}");
    Ok(())
}
