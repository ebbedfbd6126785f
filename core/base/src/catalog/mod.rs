//! The model catalog: the models PocketLM targets, where their files are,
//! what is known about them, and which fit a device before any byte is
//! downloaded ([`Catalog::recommend`]).
//!
//! The built-in entries (`builtin.json`) hold only facts with a source,
//! listed in each entry's `sources`: a file size or SHA-256 that could not
//! be checked is left empty, and the downloader then checks the hash the
//! host sends (Hugging Face's `X-Linked-Etag`). Apps add their own entries
//! with [`Catalog::add`] or [`Catalog::from_json`]; they are checked like
//! the built-in ones.

mod recommend;
mod weights;

use serde::{Deserialize, Serialize};

use crate::error::{DownloadErrorKind, Error, Result};
use crate::plan::ModelShape;

pub use recommend::{RecommendRequest, Recommendation};
pub use weights::q4_k_m_weight_bytes;

/// The catalog format this version reads.
pub const CATALOG_VERSION: u32 = 1;
/// Most entries a catalog may hold.
pub const MAX_ENTRIES: usize = 1000;
/// Largest catalog document accepted, in bytes.
pub const MAX_CATALOG_BYTES: usize = 1 << 20;

/// One file of a catalog entry: where it is and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// `https://` URL of the file, pinned to a revision where one is known.
    pub url: String,
    /// The name the file gets in the model store.
    pub file_name: String,
    /// The host repository's revision (commit) the URL is pinned to, if any.
    #[serde(default)]
    pub revision: Option<String>,
    /// Size in bytes, if known from a source.
    #[serde(default)]
    pub size: Option<u64>,
    /// SHA-256 (64 hex digits), if known from a source.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// One model of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// Stable identifier, e.g. `qwen2.5-1.5b-instruct-q4_k_m` (lower case, digits, `.`, `_`, `-`).
    pub id: String,
    /// Name to show, e.g. `Qwen2.5 1.5B Instruct`.
    pub name: String,
    /// Quantisation of the file, e.g. `Q4_K_M`.
    pub quantization: String,
    /// Licence name, e.g. `Apache-2.0`.
    pub license: String,
    /// Where the licence text is.
    #[serde(default)]
    pub license_url: Option<String>,
    /// The host asks for a token (a licence to accept) before it serves the file.
    #[serde(default)]
    pub gated: bool,
    /// The model file.
    pub file: CatalogFile,
    /// The vision projector (`mmproj`) for image input, if the model has one.
    #[serde(default)]
    pub projector: Option<CatalogFile>,
    /// The shapes the memory planner needs.
    pub shape: ModelShape,
    /// Where each fact comes from.
    #[serde(default)]
    pub sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    models: Vec<CatalogEntry>,
}

/// Models an app can offer, with what the planner needs to recommend them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
}

impl Catalog {
    /// The models PocketLM targets (see `builtin.json` and `docs/downloads.md`).
    pub fn builtin() -> Catalog {
        Catalog::from_json(include_str!("builtin.json")).expect("the built-in catalog is valid (tested)")
    }

    /// A catalog read from a JSON document `{"version": 1, "models": [...]}`,
    /// every entry checked.
    pub fn from_json(json: &str) -> Result<Catalog> {
        if json.len() > MAX_CATALOG_BYTES {
            return Err(invalid("document", format!("{} bytes", json.len()), format!("at most {MAX_CATALOG_BYTES} bytes")));
        }
        let doc: Document =
            serde_json::from_str(json).map_err(|e| invalid("document", e.to_string(), "a catalog document (see docs/downloads.md)"))?;
        if doc.version != CATALOG_VERSION {
            return Err(invalid("version", doc.version.to_string(), format!("{CATALOG_VERSION}")));
        }
        let mut catalog = Catalog::default();
        for entry in doc.models {
            catalog.add(entry)?;
        }
        Ok(catalog)
    }

    /// The catalog as a JSON document [`Catalog::from_json`] reads back.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "version": CATALOG_VERSION, "models": self.entries }).to_string()
    }

    /// Adds `entry` after checking it, replacing an entry with the same id.
    pub fn add(&mut self, entry: CatalogEntry) -> Result<()> {
        entry.validate()?;
        // One name in the store is one file: another entry's file under the
        // same name would be taken for this one.
        for other in self.entries.iter().filter(|e| e.id != entry.id) {
            for mine in entry.files() {
                if let Some(theirs) = other.files().find(|f| f.file_name == mine.file_name && f.url != mine.url) {
                    return Err(invalid(
                        &format!("{}.file_name", entry.id),
                        theirs.file_name.clone(),
                        format!("a name no other entry uses for another file ({} uses it)", other.id),
                    ));
                }
            }
        }
        if let Some(existing) = self.entries.iter_mut().find(|e| e.id == entry.id) {
            *existing = entry;
        } else if self.entries.len() >= MAX_ENTRIES {
            return Err(invalid("models", format!("more than {MAX_ENTRIES}"), format!("at most {MAX_ENTRIES} entries")));
        } else {
            self.entries.push(entry);
        }
        Ok(())
    }

    /// Every entry, in the order added.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Every entry costed for `request`: the ones that fit first, largest
    /// weights first (the most capable that fits leads), then the rest,
    /// smallest predicted peak first.
    pub fn recommend(&self, request: &RecommendRequest) -> Result<Vec<Recommendation>> {
        recommend::recommend(&self.entries, request)
    }
}

impl CatalogEntry {
    /// Checks the id, the files and the shapes.
    pub fn validate(&self) -> Result<()> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 100
            && self.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if !id_ok {
            return Err(invalid("id", format!("{:?}", self.id), "1 to 100 of a-z, 0-9, '.', '_', '-'"));
        }
        let within = |field: &str, text: &str, max: usize| {
            if text.len() > max || text.chars().any(char::is_control) {
                Err(invalid(
                    &format!("{}.{field}", self.id),
                    format!("{} bytes", text.len()),
                    format!("at most {max} bytes, no control characters"),
                ))
            } else {
                Ok(())
            }
        };
        within("name", &self.name, 200)?;
        within("quantization", &self.quantization, 32)?;
        within("license", &self.license, 200)?;
        self.file.validate(&self.id, "file")?;
        if let Some(projector) = &self.projector {
            projector.validate(&self.id, "projector")?;
            if projector.file_name == self.file.file_name {
                return Err(invalid(
                    &format!("{}.projector.file_name", self.id),
                    projector.file_name.clone(),
                    "a name other than the model file's",
                ));
            }
        }
        self.shape.validate().map_err(|e| invalid(&format!("{}.shape", self.id), e.to_string(), "shapes within the planner's limits"))?;
        if self.sources.len() > 100 {
            return Err(invalid(&format!("{}.sources", self.id), self.sources.len().to_string(), "at most 100"));
        }
        Ok(())
    }

    /// The model file, then the projector if any.
    fn files(&self) -> impl Iterator<Item = &CatalogFile> {
        std::iter::once(&self.file).chain(self.projector.as_ref())
    }

    /// Bytes of the model file's weights the planner counts: the file size
    /// when known (a slight over-count: it includes the header), else the
    /// estimate from the shape; and whether it is the estimate.
    pub fn weights_bytes(&self) -> (u64, bool) {
        match self.file.size {
            Some(size) => (size, false),
            None => (q4_k_m_weight_bytes(&self.shape), true),
        }
    }
}

impl CatalogFile {
    fn validate(&self, id: &str, what: &str) -> Result<()> {
        let field = |name: &str| format!("{id}.{what}.{name}");
        if !is_http_url(&self.url) || self.url.len() > 4096 || self.url.contains(char::is_whitespace) {
            return Err(invalid(&field("url"), format!("{:?}", self.url), "an http(s) URL of at most 4096 bytes"));
        }
        let named = |name: &str, e: Error| invalid(&field(name), e.to_string(), "see the message");
        check_file_name(&self.file_name).map_err(|e| named("file_name", e))?;
        if let Some(hash) = &self.sha256 {
            check_sha256(hash).map_err(|e| named("sha256", e))?;
        }
        if let Some(revision) = &self.revision {
            if revision.is_empty() || revision.len() > 64 || !revision.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(invalid(&field("revision"), format!("{revision:?}"), "a commit id (letters and digits)"));
            }
        }
        if let Some(size) = self.size.filter(|&s| s == 0 || s > crate::plan::limits::MAX_PEAK_BYTES) {
            return Err(invalid(&field("size"), size.to_string(), "a size in bytes (at most 1 PiB), or none when unknown"));
        }
        Ok(())
    }
}

/// Whether `url` starts with `http://` or `https://` (either case): the only
/// schemes a model is downloaded over.
pub fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Checks that `name` is a plain file name: no path separators, not
/// hidden, at most 200 bytes (the model store's rule).
pub fn check_file_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\', '\0'])
        || name.len() > 200
        || name.chars().any(char::is_control);
    if bad {
        return Err(download_invalid(format!("{name:?} is not a plain file name (no path separators, not hidden, at most 200 bytes)")));
    }
    Ok(())
}

/// Checks that `hash` is a SHA-256 in hex (64 digits, either case).
pub fn check_sha256(hash: &str) -> Result<()> {
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(download_invalid(format!("{hash:?} is not a SHA-256 (64 hex digits)")));
    }
    Ok(())
}

fn download_invalid(detail: String) -> Error {
    Error::Download { kind: DownloadErrorKind::InvalidRequest, detail }
}

/// An error about catalog `field`.
fn invalid(field: &str, value: String, expected: impl Into<String>) -> Error {
    Error::InvalidOption { name: "catalog", value: format!("{field} = {value}"), expected: expected.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_is_valid_and_round_trips() {
        let catalog = Catalog::builtin();
        assert!(catalog.entries().len() >= 8);
        assert_eq!(Catalog::from_json(&catalog.to_json()).unwrap(), catalog);
        for entry in catalog.entries() {
            assert!(!entry.sources.is_empty(), "{} cites no source", entry.id);
            assert_eq!(entry.quantization, "Q4_K_M", "{}", entry.id);
        }
    }

    #[test]
    fn bad_entries_are_refused_with_the_field_named() {
        let good = Catalog::builtin().entries()[0].clone();
        type Breakage = Box<dyn Fn(&mut CatalogEntry)>;
        let cases: Vec<(&str, Breakage)> = vec![
            ("id", Box::new(|e| e.id = "Bad Id".into())),
            ("url", Box::new(|e| e.file.url = "file:///etc/passwd".into())),
            ("file.file_name", Box::new(|e| e.file.file_name = "../x.gguf".into())),
            ("file.sha256", Box::new(|e| e.file.sha256 = Some("abc".into()))),
            ("size", Box::new(|e| e.file.size = Some(u64::MAX))),
            ("shape", Box::new(|e| e.shape.layers = 100_000)),
            ("shape", Box::new(|e| e.shape.kv_heads = e.shape.heads + 1)),
            ("size", Box::new(|e| e.file.size = Some(0))),
        ];
        for (needle, break_it) in cases {
            let mut entry = good.clone();
            break_it(&mut entry);
            let err = Catalog::default().add(entry).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        assert!(Catalog::from_json(r#"{"version": 2, "models": []}"#).unwrap_err().to_string().contains("version"));
        assert!(Catalog::from_json("[").is_err());
    }

    #[test]
    fn a_file_name_another_entry_uses_for_another_file_is_refused() {
        let mut catalog = Catalog::builtin();
        let gemma = catalog.get("gemma-3-4b-it-q4_k_m").unwrap().clone();
        let mut mine = catalog.get("qwen3-4b-q4_k_m").unwrap().clone();
        mine.id = "mine".into();
        mine.file.file_name = gemma.projector.unwrap().file_name;
        assert!(catalog.add(mine).unwrap_err().to_string().contains("gemma-3-4b-it-q4_k_m uses it"));
        let typo = r#"{"version": 1, "models": [{"id": "x", "sha_256": "00"}]}"#;
        assert!(Catalog::from_json(typo).unwrap_err().to_string().contains("unknown field"));
    }

    #[test]
    fn an_app_entry_replaces_the_one_with_its_id() {
        let mut catalog = Catalog::builtin();
        let mut mine = catalog.entries()[0].clone();
        mine.name = "My fine-tune".into();
        let n = catalog.entries().len();
        catalog.add(mine.clone()).unwrap();
        assert_eq!(catalog.entries().len(), n);
        assert_eq!(catalog.get(&mine.id).unwrap().name, "My fine-tune");
    }
}
