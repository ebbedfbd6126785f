//! A small vector index for on-device retrieval: chunks of text with their
//! embeddings, top-k by cosine similarity, saved to one file.
//!
//! The search is exact (every vector is compared): at phone scale (tens of
//! thousands of chunks, a few hundred dimensions) that is a few million
//! multiply-adds, milliseconds on one core, with no recall lost to an
//! approximate structure and nothing to tune. Vectors are stored normalised,
//! so cosine similarity is one dot product.
//!
//! The file is the app's own but is still read as untrusted: every length is
//! checked against the bytes that remain, and a SHA-256 trailer catches a
//! file cut short or damaged on the way. Saving writes a temporary file and
//! renames it over the old one, so a crash never leaves half an index.

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The first bytes of an index file.
const MAGIC: &[u8; 8] = b"PLMVIDX\0";
/// The layout version this build writes and reads.
const VERSION: u32 = 1;
/// Widest vector accepted (far beyond any embedding model).
pub const MAX_DIMENSIONS: usize = 1 << 16;
/// Longest chunk id, in bytes.
pub const MAX_ID_BYTES: usize = 4096;

/// One result of [`VectorIndex::search`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The chunk's id, as given to [`VectorIndex::add`].
    pub id: String,
    /// The chunk's text, as given to [`VectorIndex::add`].
    pub text: String,
    /// Cosine similarity with the query, in `-1.0..=1.0` (higher is closer).
    pub score: f32,
}

/// Chunks of text and their embeddings, searchable by cosine similarity.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorIndex {
    dimensions: usize,
    ids: Vec<String>,
    texts: Vec<String>,
    /// Row `i` holds chunk `i`'s normalised vector.
    vectors: Vec<f32>,
    rows: HashMap<String, usize>,
}

fn index_error(detail: impl Into<String>) -> Error {
    Error::VectorIndex { detail: detail.into() }
}

/// The dot product, over eight running sums: the compiler turns it into
/// SIMD (one sum in order cannot be reordered, so it stays scalar).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}

/// The Euclidean length of `v`, summed in f64.
pub fn l2_norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt()
}

/// `vector` scaled to length 1, or an error naming what is wrong with it.
fn normalised(vector: &[f32], dimensions: usize) -> Result<Vec<f32>> {
    if vector.len() != dimensions {
        return Err(index_error(format!(
            "a vector of {} dimensions does not fit an index of {dimensions} (embed with the model the index was built with)",
            vector.len()
        )));
    }
    if vector.iter().any(|v| !v.is_finite()) {
        return Err(index_error("the vector holds NaN or infinity"));
    }
    let norm = l2_norm(vector);
    if norm == 0.0 {
        return Err(index_error("the vector is all zeros, so it has no direction to compare"));
    }
    Ok(vector.iter().map(|&v| (f64::from(v) / norm) as f32).collect())
}

impl VectorIndex {
    /// An empty index for vectors of `dimensions` values (the embedding
    /// model's width); an error if 0 or beyond [`MAX_DIMENSIONS`].
    pub fn new(dimensions: usize) -> Result<VectorIndex> {
        if dimensions == 0 || dimensions > MAX_DIMENSIONS {
            return Err(index_error(format!("{dimensions} dimensions is not an embedding width (1..={MAX_DIMENSIONS})")));
        }
        Ok(VectorIndex { dimensions, ids: Vec::new(), texts: Vec::new(), vectors: Vec::new(), rows: HashMap::new() })
    }

    /// The width of the vectors it holds.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// How many chunks it holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether it holds no chunk.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether a chunk with this id is in the index.
    pub fn contains(&self, id: &str) -> bool {
        self.rows.contains_key(id)
    }

    /// Adds a chunk, or replaces the one with the same id. The vector must
    /// have the index's width, be finite and not all zeros.
    pub fn add(&mut self, id: &str, text: &str, vector: &[f32]) -> Result<()> {
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return Err(index_error(format!("a chunk id must have 1..={MAX_ID_BYTES} bytes, not {}", id.len())));
        }
        let vector = normalised(vector, self.dimensions)?;
        match self.rows.get(id) {
            Some(&row) => {
                self.texts[row] = text.to_string();
                self.vectors[row * self.dimensions..(row + 1) * self.dimensions].copy_from_slice(&vector);
            }
            None => {
                self.rows.insert(id.to_string(), self.ids.len());
                self.ids.push(id.to_string());
                self.texts.push(text.to_string());
                self.vectors.extend_from_slice(&vector);
            }
        }
        Ok(())
    }

    /// Removes the chunk with this id; `false` if there was none.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(row) = self.rows.remove(id) else { return false };
        let last = self.ids.len() - 1;
        self.ids.swap_remove(row);
        self.texts.swap_remove(row);
        if row != last {
            let d = self.dimensions;
            self.vectors.copy_within(last * d..(last + 1) * d, row * d);
            self.rows.insert(self.ids[row].clone(), row);
        }
        self.vectors.truncate(last * self.dimensions);
        true
    }

    /// The `k` chunks most similar to `query`, closest first (ties go to the
    /// lower row: the order they were added in, until a chunk is removed).
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<SearchHit>> {
        let query = normalised(query, self.dimensions)?;
        let k = k.min(self.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut scored: Vec<(f32, usize)> =
            self.vectors.chunks_exact(self.dimensions).enumerate().map(|(row, v)| (dot(v, &query), row)).collect();
        let closer = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if k < scored.len() {
            scored.select_nth_unstable_by(k - 1, closer);
            scored.truncate(k);
        }
        scored.sort_by(closer);
        Ok(scored
            .into_iter()
            .map(|(score, row)| SearchHit { id: self.ids[row].clone(), text: self.texts[row].clone(), score: score.clamp(-1.0, 1.0) })
            .collect())
    }

    /// The bytes [`VectorIndex::save`] writes: header, chunks, vectors, and
    /// the SHA-256 of all before it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.vectors.len() * 4 + self.texts.iter().map(String::len).sum::<usize>());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.dimensions as u32).to_le_bytes());
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        for (id, text) in self.ids.iter().zip(&self.texts) {
            for s in [id, text] {
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
        for v in &self.vectors {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Reads an index from the bytes [`VectorIndex::save`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<VectorIndex> {
        let body_len = bytes.len().checked_sub(32).ok_or_else(|| index_error("the file is too short to be an index"))?;
        let (body, digest) = bytes.split_at(body_len);
        if !body.starts_with(MAGIC) {
            return Err(index_error("the file is not a PocketLM vector index"));
        }
        if Sha256::digest(body).as_slice() != digest {
            return Err(index_error("the file is damaged or cut short (its checksum does not match); rebuild the index"));
        }
        let mut r = Reader { bytes: body, at: MAGIC.len() };
        let version = r.u32()?;
        if version != VERSION {
            return Err(index_error(format!("the file has layout version {version}; this build reads version {VERSION}")));
        }
        let mut index = VectorIndex::new(r.u32()? as usize)?;
        let count = r.u64()?;
        let d = index.dimensions;
        // Each chunk takes at least its two lengths and its vector: a count the
        // bytes cannot hold is refused before anything is allocated for it.
        let per_chunk = 16 + 4 * d as u64;
        if count.saturating_mul(per_chunk) > r.remaining() as u64 {
            return Err(index_error(format!("the file claims {count} chunks but is too short to hold them")));
        }
        let count = count as usize;
        let mut chunks = Vec::with_capacity(count);
        for _ in 0..count {
            chunks.push((r.string()?, r.string()?));
        }
        if r.remaining() != count * d * 4 {
            return Err(index_error("the vectors do not fill the rest of the file"));
        }
        let vectors = r.bytes[r.at..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        index.vectors = vectors.collect();
        // Search scores are cosines only for unit vectors, as `add` stores them.
        for (row, v) in index.vectors.chunks_exact(d).enumerate() {
            let squared = l2_norm(v).powi(2);
            if !squared.is_finite() || (squared - 1.0).abs() > 1e-3 {
                return Err(index_error(format!("the vector of chunk {row} is not of unit length; rebuild the index")));
            }
        }
        for (row, (id, text)) in chunks.into_iter().enumerate() {
            if id.is_empty() || id.len() > MAX_ID_BYTES || index.rows.insert(id.clone(), row).is_some() {
                return Err(index_error(format!("chunk {row} has an empty, overlong or repeated id")));
            }
            index.ids.push(id);
            index.texts.push(text);
        }
        Ok(index)
    }

    /// Writes the index to `path` (through a temporary file beside it, then
    /// a rename, so the old file stays whole until the new one is).
    pub fn save(&self, path: &Path) -> Result<()> {
        let io = |e: std::io::Error| index_error(format!("cannot write {}: {e} (check the folder and free space)", path.display()));
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        std::fs::write(&tmp, self.to_bytes()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// Reads the index at `path`.
    pub fn load(path: &Path) -> Result<VectorIndex> {
        let bytes = std::fs::read(path).map_err(|e| index_error(format!("cannot read {}: {e}", path.display())))?;
        VectorIndex::from_bytes(&bytes).map_err(|e| match e {
            Error::VectorIndex { detail } => index_error(format!("{}: {detail}", path.display())),
            other => other,
        })
    }
}

/// A bounds-checked cursor over the file's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if n > self.remaining() {
            return Err(index_error("the file ends in the middle of a chunk"));
        }
        self.at += n;
        Ok(&self.bytes[self.at - n..self.at])
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u64()?;
        let len = usize::try_from(len).map_err(|_| index_error("a chunk length does not fit in memory"))?;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| index_error("a chunk id or text is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> VectorIndex {
        let mut index = VectorIndex::new(3).unwrap();
        index.add("x", "along x", &[2.0, 0.0, 0.0]).unwrap();
        index.add("y", "along y", &[0.0, 1.0, 0.0]).unwrap();
        index.add("xy", "between", &[1.0, 1.0, 0.0]).unwrap();
        index
    }

    #[test]
    fn search_ranks_by_cosine() {
        let hits = index().search(&[1.0, 0.1, 0.0], 2).unwrap();
        assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["x", "xy"]);
        assert!((hits[0].score - 1.0 / 1.01f32.sqrt()).abs() < 1e-6);
        assert_eq!(index().search(&[0.0, 0.0, 1.0], 10).unwrap().len(), 3);
    }

    #[test]
    fn add_replaces_and_remove_keeps_the_rest_findable() {
        let mut index = index();
        index.add("x", "now along z", &[0.0, 0.0, 5.0]).unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!(index.search(&[0.0, 0.0, 1.0], 1).unwrap()[0].text, "now along z");
        assert!(index.remove("x"));
        assert!(!index.remove("x"));
        assert_eq!(index.len(), 2);
        // "xy" moved into the removed row and is still found by id and vector.
        assert!(index.contains("xy"));
        assert_eq!(index.search(&[1.0, 1.0, 0.0], 1).unwrap()[0].id, "xy");
        assert!(index.remove("xy") && index.remove("y") && index.is_empty());
    }

    #[test]
    fn bad_vectors_are_typed_errors() {
        let mut index = index();
        for bad in [&[1.0, 0.0][..], &[f32::NAN, 0.0, 0.0], &[0.0, 0.0, 0.0]] {
            assert!(matches!(index.add("b", "", bad), Err(Error::VectorIndex { .. })), "{bad:?}");
            assert!(matches!(index.search(bad, 1), Err(Error::VectorIndex { .. })), "{bad:?}");
        }
        assert!(matches!(index.add("", "", &[1.0, 0.0, 0.0]), Err(Error::VectorIndex { .. })));
        assert!(VectorIndex::new(0).is_err());
    }

    #[test]
    fn round_trips_through_a_file_and_refuses_damage() {
        let dir = std::env::temp_dir().join(format!("pocketlm-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chunks.idx");
        let index = index();
        index.save(&path).unwrap();
        assert_eq!(VectorIndex::load(&path).unwrap(), index);
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 8, 20, bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(VectorIndex::from_bytes(&bytes[..cut]), Err(Error::VectorIndex { .. })), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        assert!(VectorIndex::from_bytes(&flipped).is_err());
        assert!(matches!(VectorIndex::load(&dir.join("missing.idx")), Err(Error::VectorIndex { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_forged_count_is_refused_before_allocating() {
        let mut body = MAGIC.to_vec();
        body.extend_from_slice(&VERSION.to_le_bytes());
        body.extend_from_slice(&384u32.to_le_bytes());
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        let digest = Sha256::digest(&body);
        body.extend_from_slice(&digest);
        let err = VectorIndex::from_bytes(&body).unwrap_err().to_string();
        assert!(err.contains("too short"), "{err}");
    }
}
