//! `pocketlm embed` (texts to vectors) and `pocketlm retrieval` (a measured
//! retrieval check: recall@k on labelled pairs, embedding throughput and
//! search time at phone scale).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pocketlm::probe::SplitMix;
use pocketlm::{EmbedOptions, Embedder, Error, Model, ModelOptions, Pooling, VectorIndex};
use serde_json::json;

use crate::models;

/// Name (for the fetch script) and file of the default embedding model.
pub const DEFAULT_EMBEDDING_MODEL: (&str, &str) = ("all-minilm-l6-v2", "all-minilm-l6-v2-f16.gguf");

/// How to embed, from the command line.
pub struct EmbedArgs {
    /// The model (default: all-MiniLM-L6-v2, fetched on first use).
    pub model: Option<PathBuf>,
    /// The pooling (default: the model's).
    pub pooling: Option<Pooling>,
    /// Longest text in tokens.
    pub max_tokens: Option<u32>,
    /// Cut longer texts instead of failing.
    pub truncate: bool,
    /// No L2 normalisation.
    pub raw: bool,
    /// Inference threads.
    pub threads: Option<u32>,
}

impl EmbedArgs {
    /// The embedding model (the default one fetched on first use) and an embedder on it.
    pub fn embedder(&self) -> Result<(Model, Embedder), Error> {
        let path = match &self.model {
            Some(path) => path.clone(),
            None => default_model()?,
        };
        let model = Model::load_for_embeddings(path, &ModelOptions::default())?;
        let options = EmbedOptions {
            pooling: self.pooling,
            normalize: !self.raw,
            max_tokens: self.max_tokens,
            truncate: self.truncate,
            threads: self.threads,
        };
        let embedder = Embedder::new(&model, options)?;
        Ok((model, embedder))
    }
}

/// The default embedding model's path, fetched if missing.
pub fn default_model() -> Result<PathBuf, Error> {
    let path = models::cache_dir().join(DEFAULT_EMBEDDING_MODEL.1);
    if path.exists() {
        Ok(path)
    } else {
        models::fetch(DEFAULT_EMBEDDING_MODEL.0)
    }
}

/// Embeds `texts` (or stdin's lines when none), one JSON line per text on stdout.
pub fn run(args: &EmbedArgs, texts: Vec<String>) -> Result<(), Error> {
    let texts = if texts.is_empty() { std::io::stdin().lock().lines().map_while(Result::ok).collect() } else { texts };
    let (_, mut embedder) = args.embedder()?;
    let started = Instant::now();
    let out = embedder.embed(&texts)?;
    let seconds = started.elapsed().as_secs_f64();
    for (index, vector) in out.vectors.iter().enumerate() {
        println!("{}", json!({ "index": index, "embedding": vector, "truncated": out.truncated.contains(&index) }));
    }
    eprintln!(
        "pocketlm: {} texts, {} tokens, {} dimensions ({} pooling) in {:.2} s: {:.1} texts/s",
        texts.len(),
        out.tokens,
        embedder.dimensions(),
        embedder.pooling().as_str(),
        seconds,
        texts.len() as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// One labelled pair: a query and the text of the chunk that answers it,
/// among the question's own options.
struct Pair {
    query: String,
    answer: String,
    options: Vec<String>,
}

/// Question → correct answer text, from an ARC JSONL file.
fn load_pairs(path: &Path, limit: Option<usize>) -> Result<Vec<Pair>, Error> {
    let items = crate::eval::load(path, limit)?;
    Ok(items
        .into_iter()
        .filter_map(|item| {
            let at = item.choices.label.iter().position(|l| *l == item.answer_key)?;
            let answer = item.choices.text.get(at)?.clone();
            Some(Pair { query: item.question, answer, options: item.choices.text })
        })
        .collect())
}

/// The retrieval check: every distinct answer text becomes a chunk; each
/// question should find its own answer. Prints recall@1/5/10, MRR, how often
/// the closest of a question's own options is the right one (chance: one in
/// the number of options), embedding throughput and search times (on the
/// real index, and on `scale` random chunks of the same width, the size a
/// phone app's notes or documents reach).
pub fn retrieval(args: &EmbedArgs, dataset: &Path, limit: Option<usize>, scale: usize, as_json: bool) -> Result<(), Error> {
    let pairs = load_pairs(dataset, limit)?;
    let (model, mut embedder) = args.embedder()?;
    let mut chunks: Vec<&str> = pairs.iter().map(|p| p.answer.as_str()).collect();
    chunks.sort_unstable();
    chunks.dedup();
    let started = Instant::now();
    let chunk_vectors = embedder.embed(&chunks)?.vectors;
    let queries: Vec<&str> = pairs.iter().map(|p| p.query.as_str()).collect();
    let query_vectors = embedder.embed(&queries)?.vectors;
    let embed_seconds = started.elapsed().as_secs_f64();
    let texts_per_s = (chunks.len() + queries.len()) as f64 / embed_seconds.max(1e-9);

    let mut index = VectorIndex::new(embedder.dimensions())?;
    for (i, (text, v)) in chunks.iter().zip(&chunk_vectors).enumerate() {
        index.add(&i.to_string(), text, v)?;
    }
    let ks = [1usize, 5, 10];
    let mut hits = [0usize; 3];
    let mut reciprocal = 0.0;
    let started = Instant::now();
    for (pair, q) in pairs.iter().zip(&query_vectors) {
        let ranked = index.search(q, 10)?;
        if let Some(rank) = ranked.iter().position(|h| h.text == pair.answer) {
            reciprocal += 1.0 / (rank + 1) as f64;
            for (slot, &k) in hits.iter_mut().zip(&ks) {
                if rank < k {
                    *slot += 1;
                }
            }
        }
    }
    let search_ms = started.elapsed().as_secs_f64() * 1000.0 / pairs.len().max(1) as f64;
    let (option_accuracy, option_chance) = closest_option(&mut embedder, &pairs, &query_vectors)?;
    let scale_ms = search_at_scale(embedder.dimensions(), scale, &query_vectors)?;
    let n = pairs.len().max(1) as f64;
    let recall: Vec<f64> = hits.iter().map(|&h| h as f64 / n).collect();
    let summary = json!({
        "model": model.info().name.clone().unwrap_or_else(|| model.path().display().to_string()),
        "dataset": dataset.display().to_string(),
        "queries": pairs.len(),
        "chunks": chunks.len(),
        "dimensions": embedder.dimensions(),
        "recall_at_1": recall[0], "recall_at_5": recall[1], "recall_at_10": recall[2],
        "mrr_at_10": reciprocal / n,
        "closest_option_accuracy": option_accuracy,
        "closest_option_chance": option_chance,
        "embed_texts_per_s": texts_per_s,
        "search_ms_per_query": search_ms,
        "scale_chunks": scale,
        "scale_search_ms_per_query": scale_ms,
        "scale_index_mib": (scale * embedder.dimensions() * 4) as f64 / (1 << 20) as f64,
    });
    if as_json {
        println!("{summary}");
    } else {
        println!("retrieval on {} ({} questions, {} distinct answer chunks):", dataset.display(), pairs.len(), chunks.len());
        println!("  recall@1 {:.3}  recall@5 {:.3}  recall@10 {:.3}  MRR@10 {:.3}", recall[0], recall[1], recall[2], reciprocal / n);
        println!("  closest of its own options is right: {option_accuracy:.3} (chance {option_chance:.3})");
        println!(
            "  embedding: {texts_per_s:.1} texts/s ({} dimensions, {} threads)",
            embedder.dimensions(),
            args.threads.unwrap_or_else(pocketlm::default_threads)
        );
        println!("  search: {search_ms:.3} ms per query over {} chunks; {scale_ms:.2} ms over {scale} chunks", chunks.len());
    }
    Ok(())
}

/// How often the option closest to its question is the right answer, and
/// what picking at random would score.
fn closest_option(embedder: &mut Embedder, pairs: &[Pair], queries: &[Vec<f32>]) -> Result<(f64, f64), Error> {
    let mut options: Vec<&str> = pairs.iter().flat_map(|p| p.options.iter().map(String::as_str)).collect();
    options.sort_unstable();
    options.dedup();
    let vectors = embedder.embed(&options)?.vectors;
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt()).max(f32::MIN_POSITIVE)
    };
    let (mut right, mut chance) = (0usize, 0.0);
    for (pair, q) in pairs.iter().zip(queries) {
        let score = |text: &str| options.binary_search(&text).map_or(f32::NEG_INFINITY, |i| cosine(q, &vectors[i]));
        let best = pair.options.iter().max_by(|a, b| score(a).total_cmp(&score(b)));
        right += usize::from(best.is_some_and(|b| *b == pair.answer));
        chance += 1.0 / pair.options.len().max(1) as f64;
    }
    let n = pairs.len().max(1) as f64;
    Ok((right as f64 / n, chance / n))
}

/// Mean time of a top-10 search over `n` random chunks, in ms.
fn search_at_scale(dimensions: usize, n: usize, queries: &[Vec<f32>]) -> Result<f64, Error> {
    if n == 0 || queries.is_empty() {
        return Ok(0.0);
    }
    let mut rng = SplitMix(7);
    let mut index = VectorIndex::new(dimensions)?;
    let mut v = vec![0f32; dimensions];
    for i in 0..n {
        v.iter_mut().for_each(|x| *x = (rng.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5);
        index.add(&i.to_string(), "", &v)?;
    }
    let rounds = queries.len().min(50);
    let started = Instant::now();
    for q in &queries[..rounds] {
        std::hint::black_box(index.search(q, 10)?);
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0 / rounds as f64)
}
