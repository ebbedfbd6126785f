//! `catalog`, `pull`, `models` and `rm`: the model catalog and the models
//! directory, through the core's downloader.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use pocketlm::{
    Catalog, DownloadControl, DownloadOptions, DownloadProgress, DownloadRequest, DownloadState, Downloader, Error, ModelStore,
    RecommendRequest,
};

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

/// The catalog in `path`, or the built-in one.
fn load_catalog(path: Option<&Path>) -> Result<Catalog, Error> {
    match path {
        None => Ok(Catalog::builtin()),
        Some(path) => {
            let json =
                std::fs::read_to_string(path).map_err(|e| Error::ModelUnreadable { path: path.to_path_buf(), reason: e.to_string() })?;
            Catalog::from_json(&json)
        }
    }
}

/// What `pull TARGET` downloads: a URL (named by `name` or its last
/// segment), or a catalog entry's model file (and projector).
pub fn requests(
    target: &str,
    projector: bool,
    catalog: Option<&Path>,
    sha256: Option<String>,
    name: Option<String>,
) -> Result<Vec<DownloadRequest>, Error> {
    if pocketlm::catalog::is_http_url(target) {
        let file_name = name.or_else(|| name_from_url(target)).ok_or_else(|| Error::InvalidOption {
            name: "name",
            value: target.to_string(),
            expected: "a URL ending in a file name, or --name".into(),
        })?;
        return Ok(vec![DownloadRequest { sha256, ..DownloadRequest::new(target, file_name) }]);
    }
    if sha256.is_some() || name.is_some() {
        return Err(Error::InvalidOption {
            name: "url",
            value: target.to_string(),
            expected: "a URL with --sha256/--name; a catalog id brings its own name and hash".into(),
        });
    }
    let catalog = load_catalog(catalog)?;
    let entry = catalog.get(target).ok_or_else(|| Error::InvalidOption {
        name: "url",
        value: target.to_string(),
        expected: format!(
            "an http(s) URL or a catalog id: {}",
            catalog.entries().iter().map(|e| e.id.as_str()).collect::<Vec<_>>().join(", ")
        ),
    })?;
    let mut requests = vec![DownloadRequest::for_file(&entry.file)];
    match (&entry.projector, projector) {
        (Some(file), true) => requests.push(DownloadRequest::for_file(file)),
        (None, true) => {
            return Err(Error::InvalidOption {
                name: "projector",
                value: entry.id.clone(),
                expected: "a model with a vision projector".into(),
            })
        }
        _ => {}
    }
    Ok(requests)
}

/// `pull`: downloads `requests` into `dir` in turn, resuming parts left by an
/// earlier run; Ctrl-C cancels (the part is kept). Prints each installed path.
pub fn pull(requests: &[DownloadRequest], dir: &Path, token_env: Option<&str>) -> Result<(), Error> {
    let token = token_env.and_then(|var| std::env::var(var).ok()).filter(|t| !t.is_empty());
    let downloader = Downloader::new(dir, DownloadOptions::default())?;
    let control = DownloadControl::new();
    let cancel = control.clone();
    let _ = ctrlc::set_handler(move || cancel.cancel());
    let terminal = std::io::stderr().is_terminal();
    for request in requests {
        let request = DownloadRequest { token: token.clone(), ..request.clone() };
        let mut last_line = String::new();
        let model = downloader.download(&request, &control, &mut |p| report(p, terminal, &mut last_line))?;
        if terminal {
            eprintln!();
        }
        println!("{}", model.path.display());
    }
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

/// `catalog`: every entry costed for `budget` bytes at `ctx` tokens, the
/// ones that fit first.
pub fn catalog(path: Option<&Path>, budget: u64, ctx: u32, images: bool, json: bool) -> Result<(), Error> {
    let catalog = load_catalog(path)?;
    let recommendations = catalog.recommend(&RecommendRequest { budget_bytes: budget, context_length: ctx, with_projector: images })?;
    if json {
        let rows: Vec<_> =
            recommendations.iter().map(|r| serde_json::json!({ "recommendation": r, "entry": catalog.get(&r.id) })).collect();
        println!("{}", serde_json::json!({ "budget_bytes": budget, "context_length": ctx, "images": images, "models": rows }));
        return Ok(());
    }
    let mib = |b: u64| b as f64 / 1048576.0;
    let mut table = format!("{:<32} {:>4} {:>10} {:>5} {:>10}  licence / why not\n", "id", "fits", "peak MiB", "kv", "file MiB");
    for r in &recommendations {
        let entry = catalog.get(&r.id).expect("recommendations name catalog entries");
        let file = r.download_bytes.map_or("?".to_string(), |b| format!("{:.0}", mib(b)));
        let note = r.reason.clone().unwrap_or_else(|| entry.license.clone());
        table += &format!(
            "{:<32} {:>4} {:>10.0} {:>5} {:>10}  {note}\n",
            r.id,
            if r.fits { "yes" } else { "no" },
            r.plan.as_ref().map_or(f64::NAN, |p| mib(p.predicted_peak_bytes)),
            r.plan.as_ref().map_or("-", |p| p.kv_type.as_str()),
            file
        );
    }
    // A closed pipe (`| head`) is not an error.
    let _ = std::io::stdout().write_all(table.as_bytes());
    eprintln!(
        "budget {:.0} MiB, context {ctx} tokens{}; weights estimated from the shape where the file size is unknown",
        mib(budget),
        if images { ", with the vision projector" } else { "" }
    );
    Ok(())
}
