//! The router probe: a small logistic model that reads a device answer's
//! final hidden states and logit signals and says how likely the answer is
//! right. It is fitted on the app's own labelled examples (see
//! `pocketlm train-router`), calibrated to a probability (Platt scaling on
//! out-of-fold scores) and saved as a small JSON file bound to the exact
//! model file it was trained for. At run time it costs one dot product.
//!
//! The features of one answer ([`AnswerFeatures`]), in this order:
//! - the final hidden state at the last prompt token, where the answer is decided;
//! - the final hidden states averaged over the answer's content tokens;
//! - the logit signals named in [`LOGIT_FEATURES`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::confidence::Confidence;
use crate::error::{Error, Result};
use crate::session_file::ModelIdentity;

/// The `format` field of every probe file.
pub const PROBE_FORMAT: &str = "pocketlm-router-probe";
/// The probe file layout this build writes and reads.
pub const PROBE_VERSION: u32 = 1;
/// The largest probe file accepted (a 4,096-wide model needs about 200 KB).
pub const MAX_PROBE_BYTES: u64 = 16 << 20;

/// The logit signals a probe reads, in order (see [`logit_features`]).
pub const LOGIT_FEATURES: [&str; 6] =
    ["answer_logprob", "answer_margin", "answer_entropy", "content_logprob_p10", "content_logprob_min", "content_tokens_ln"];

/// The logit signals of an answer as probe inputs, in [`LOGIT_FEATURES`] order.
/// Missing signals (no content tokens) read as 0.
pub fn logit_features(c: &Confidence) -> Vec<f32> {
    let content = c.content.unwrap_or_default();
    vec![
        // A choice: its probability; free text: the mean token log-probability
        // (unlike the windowed score, it does not depend on the confidence options).
        c.answer_probability.map_or(c.mean_logprob, |p| p.max(1e-9).ln()),
        c.answer_margin.unwrap_or(content.mean_margin),
        c.answer_entropy.unwrap_or(content.mean_entropy),
        content.logprob_p10,
        content.min_logprob,
        (1.0 + content.tokens as f32).ln(),
    ]
}

/// What kind of answer a probe was trained on: its signals differ by kind,
/// so a probe scores only answers of its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerForm {
    /// One of fixed options ([`crate::constraint::Constraint::Choice`]).
    Choice,
    /// Free text.
    FreeText,
}

impl AnswerForm {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerForm::Choice => "choice",
            AnswerForm::FreeText => "free_text",
        }
    }
}

/// What the probe reads from one device answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnswerFeatures {
    /// The final hidden state at the last prompt token (where the answer is decided).
    pub decision_state: Vec<f32>,
    /// The final hidden states averaged over the answer's content tokens.
    pub answer_state: Vec<f32>,
    /// The logit signals, in [`LOGIT_FEATURES`] order.
    pub logits: Vec<f32>,
}

impl AnswerFeatures {
    /// The features as one vector, in the probe's order.
    pub fn to_vec(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.decision_state.len() + self.answer_state.len() + self.logits.len());
        v.extend_from_slice(&self.decision_state);
        v.extend_from_slice(&self.answer_state);
        v.extend_from_slice(&self.logits);
        v
    }
}

/// How a probe was trained and how well it did out of fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingReport {
    /// Labelled answers used.
    pub examples: u32,
    /// Of which the device answered correctly.
    pub correct: u32,
    /// Cross-validation folds.
    pub folds: u32,
    /// The L2 strength chosen by cross-validation (on standardised features).
    pub l2: f32,
    /// Out-of-fold AUROC of the score for a right answer (at the chosen L2;
    /// choosing it on the same folds makes this slightly optimistic).
    pub cv_auroc: f32,
    /// Bootstrap 95 % interval of `cv_auroc`.
    pub cv_auroc_ci: [f32; 2],
    /// Where the labels came from (a file name, for people).
    pub dataset: String,
}

/// A trained router probe (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Always [`PROBE_FORMAT`].
    pub format: String,
    /// The layout version ([`PROBE_VERSION`]).
    pub version: u32,
    /// The model file the probe was trained for; it reads no other model's states.
    pub model: ModelIdentity,
    /// The answers it scores.
    pub answer_form: AnswerForm,
    /// Width of each hidden state.
    pub n_embd: u32,
    /// The logit signals it reads, by name (they must be this build's [`LOGIT_FEATURES`]).
    pub logit_features: Vec<String>,
    /// One weight per feature (standardisation and calibration folded in).
    pub weights: Vec<f32>,
    /// The intercept.
    pub bias: f32,
    /// How it was trained.
    pub training: TrainingReport,
    /// The file it was loaded from (for messages; not saved).
    #[serde(skip)]
    pub source: String,
}

fn invalid(path: &Path, detail: impl Into<String>) -> Error {
    Error::RouterProbe { path: path.display().to_string(), detail: detail.into() }
}

impl Probe {
    /// Reads and checks a probe file. Anything that is not a probe this build
    /// can use is [`Error::RouterProbe`] saying why.
    pub fn load(path: &Path) -> Result<Probe> {
        let meta = std::fs::metadata(path).map_err(|e| invalid(path, format!("cannot be read: {e}")))?;
        if meta.len() > MAX_PROBE_BYTES {
            return Err(invalid(path, format!("is {} bytes, more than a probe's {MAX_PROBE_BYTES}", meta.len())));
        }
        let text = std::fs::read_to_string(path).map_err(|e| invalid(path, format!("cannot be read as text: {e}")))?;
        let probe: Probe = serde_json::from_str(&text).map_err(|e| invalid(path, format!("is not a probe file: {e}")))?;
        probe.check().map_err(|detail| invalid(path, detail))?;
        Ok(Probe { source: path.display().to_string(), ..probe })
    }

    /// Writes the probe as JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string(self).map_err(|e| invalid(path, e.to_string()))?;
        std::fs::write(path, text).map_err(|e| invalid(path, format!("cannot be written: {e}")))
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.format != PROBE_FORMAT {
            return Err(format!("has format {:?}, not {PROBE_FORMAT:?}", self.format));
        }
        if self.version != PROBE_VERSION {
            return Err(format!("is layout version {}; this build reads {PROBE_VERSION} (train it again)", self.version));
        }
        if self.logit_features != LOGIT_FEATURES {
            return Err("reads other logit signals than this build gathers (train it again)".into());
        }
        let hex64 = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex64(&self.model.header_sha256) {
            return Err("names its model by a header digest that is not 64 hex digits".into());
        }
        if self.n_embd == 0 || self.n_embd > 1 << 16 {
            return Err(format!("has hidden width {}", self.n_embd));
        }
        let expected = 2 * self.n_embd as usize + LOGIT_FEATURES.len();
        if self.weights.len() != expected {
            return Err(format!("has {} weights; width {} needs {expected}", self.weights.len(), self.n_embd));
        }
        if !self.bias.is_finite() || self.weights.iter().any(|w| !w.is_finite()) {
            return Err("holds a weight that is not a finite number".into());
        }
        Ok(())
    }

    /// Refuses a model other than the one the probe was trained for.
    pub fn check_model(&self, model: &ModelIdentity) -> Result<()> {
        let path = Path::new(&self.source);
        if self.model.same_model(model) {
            return Ok(());
        }
        let name = |m: &ModelIdentity| m.name.clone().unwrap_or_else(|| m.architecture.clone());
        Err(invalid(
            path,
            format!(
                "was trained for {} ({} bytes, header {}), not this model, {} ({} bytes, header {}); train one for this model",
                name(&self.model),
                self.model.file_size,
                &self.model.header_sha256[..self.model.header_sha256.len().min(12)],
                name(model),
                model.file_size,
                &model.header_sha256[..model.header_sha256.len().min(12)],
            ),
        ))
    }

    /// The calibrated probability that the answer with these features is
    /// right; `None` when they do not fit the probe (another width).
    pub fn score(&self, features: &AnswerFeatures) -> Option<f32> {
        let n = self.n_embd as usize;
        if features.decision_state.len() != n || features.answer_state.len() != n || features.logits.len() != LOGIT_FEATURES.len() {
            return None;
        }
        let x = features.to_vec();
        let z = self.bias as f64 + self.weights.iter().zip(&x).map(|(&w, &v)| f64::from(w) * f64::from(v)).sum::<f64>();
        Some(sigmoid(z) as f32)
    }

    /// Fits a probe: standardises the features, picks the L2 strength by
    /// stratified `folds`-fold cross-validation (out-of-fold AUROC), fits on
    /// everything at that strength, and calibrates with Platt scaling on the
    /// out-of-fold scores. `correct[i]` says whether answer `i` was right.
    pub fn fit(features: &[Vec<f32>], correct: &[bool], setup: &ProbeSetup) -> Result<Probe> {
        let bad =
            |detail: String| Error::InvalidOption { name: "training set", value: format!("{} examples", features.len()), expected: detail };
        let d = 2 * setup.n_embd as usize + LOGIT_FEATURES.len();
        if features.len() != correct.len() {
            return Err(bad("one label per example".into()));
        }
        if let Some(i) = features.iter().position(|f| f.len() != d) {
            return Err(bad(format!("example {i} has {} features, not {d}", features[i].len())));
        }
        let positives = correct.iter().filter(|&&c| c).count();
        let folds = setup.folds.max(2) as usize;
        if positives < folds || correct.len() - positives < folds {
            return Err(bad(format!("at least {folds} right and {folds} wrong answers (got {positives} right)")));
        }
        let data = Standardised::new(features);
        let y: Vec<f64> = correct.iter().map(|&c| if c { 1.0 } else { 0.0 }).collect();
        let fold_of = stratified_folds(correct, folds, setup.seed);
        let mut best: Option<(f64, f64, Vec<f64>)> = None;
        for &l2 in &setup.l2_grid {
            let mut oof = vec![0.0; y.len()];
            for k in 0..folds {
                let train: Vec<usize> = (0..y.len()).filter(|&i| fold_of[i] != k).collect();
                let (w, b) = fit_logistic(&data.x, &y, &train, l2, setup.iterations);
                for i in (0..y.len()).filter(|&i| fold_of[i] == k) {
                    oof[i] = dot(&w, &data.x[i]) + b;
                }
            }
            let auc = auroc(&oof, correct).unwrap_or(0.5);
            log::info!("probe: l2 {l2}: out-of-fold AUROC {auc:.3}");
            if best.as_ref().is_none_or(|(a, _, _)| auc > *a) {
                best = Some((auc, l2, oof));
            }
        }
        let (cv_auroc, l2, oof) = best.ok_or_else(|| bad("a non-empty L2 grid".into()))?;
        // The AUROC is the out-of-fold scores' own (calibration is monotone; a
        // flip would hide a probe that learned the wrong way round).
        let (lo, hi) = bootstrap_ci(correct.len(), 1000, setup.seed, |idx| {
            let s: Vec<f64> = idx.iter().map(|&i| oof[i]).collect();
            let l: Vec<bool> = idx.iter().map(|&i| correct[i]).collect();
            auroc(&s, &l)
        });
        let (mut a, mut c) = platt(&oof, &y);
        if a <= 0.0 {
            // Out of fold the scores ran the wrong way: the probe learned nothing it can
            // use, so it says the base rate for every answer.
            log::warn!("probe: out-of-fold AUROC {cv_auroc:.3}: no usable signal, the probe is a constant");
            let rate = (y.iter().sum::<f64>() / y.len() as f64).clamp(1e-6, 1.0 - 1e-6);
            (a, c) = (0.0, (rate / (1.0 - rate)).ln());
        }
        let all: Vec<usize> = (0..y.len()).collect();
        let (w, b) = fit_logistic(&data.x, &y, &all, l2, setup.iterations);
        // Fold standardisation and calibration into one logistic on raw features.
        let mut weights = Vec::with_capacity(d);
        let mut bias = a * b + c;
        for ((wj, scale), mean) in w.iter().zip(&data.scale).zip(&data.mean) {
            let raw = a * wj / scale;
            weights.push(raw as f32);
            bias -= raw * mean;
        }
        let probe = Probe {
            format: PROBE_FORMAT.into(),
            version: PROBE_VERSION,
            model: setup.model.clone(),
            answer_form: setup.answer_form,
            n_embd: setup.n_embd,
            logit_features: LOGIT_FEATURES.iter().map(|s| s.to_string()).collect(),
            weights,
            bias: bias as f32,
            training: TrainingReport {
                examples: correct.len() as u32,
                correct: positives as u32,
                folds: folds as u32,
                l2: l2 as f32,
                cv_auroc: cv_auroc as f32,
                cv_auroc_ci: [lo as f32, hi as f32],
                dataset: setup.dataset.clone(),
            },
            source: String::new(),
        };
        probe.check().map_err(bad)?;
        Ok(probe)
    }
}

/// What [`Probe::fit`] needs besides the examples.
#[derive(Debug, Clone)]
pub struct ProbeSetup {
    /// The model the features came from.
    pub model: ModelIdentity,
    /// Its hidden width.
    pub n_embd: u32,
    /// The kind of answers labelled.
    pub answer_form: AnswerForm,
    /// Cross-validation folds (at least 2).
    pub folds: u32,
    /// L2 strengths tried.
    pub l2_grid: Vec<f64>,
    /// Gradient steps per fit.
    pub iterations: u32,
    /// Seed for the folds and the bootstrap.
    pub seed: u64,
    /// Where the labels came from, for the report.
    pub dataset: String,
}

impl ProbeSetup {
    /// The defaults `pocketlm train-router` uses.
    pub fn new(model: ModelIdentity, n_embd: u32, answer_form: AnswerForm, dataset: String) -> ProbeSetup {
        ProbeSetup {
            model,
            n_embd,
            answer_form,
            folds: 5,
            l2_grid: vec![0.01, 0.03, 0.1, 0.3, 1.0],
            iterations: 300,
            seed: 0x5EED,
            dataset,
        }
    }
}

/// Area under the ROC curve of `scores` for `positive`: the chance that a
/// random positive scores above a random negative (ties count half).
/// `None` when either class is empty.
pub fn auroc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mann-Whitney U with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| positive[k]).count() as f64 * rank;
        i = j + 1;
    }
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos * n_neg) as f64)
}

/// A percentile bootstrap 95 % interval of `stat` over `n` items:
/// `resamples` draws of `n` indices with replacement (deterministic in
/// `seed`); draws where `stat` is undefined are skipped.
pub fn bootstrap_ci(n: usize, resamples: u32, seed: u64, stat: impl Fn(&[usize]) -> Option<f64>) -> (f64, f64) {
    let mut rng = SplitMix(seed);
    let mut values: Vec<f64> = Vec::with_capacity(resamples as usize);
    let mut idx = vec![0usize; n];
    for _ in 0..resamples {
        for slot in idx.iter_mut() {
            *slot = (rng.next() % n.max(1) as u64) as usize;
        }
        if let Some(v) = stat(&idx) {
            values.push(v);
        }
    }
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

/// A small deterministic generator (SplitMix64) for folds and resampling.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn dot(w: &[f64], x: &[f64]) -> f64 {
    w.iter().zip(x).map(|(a, b)| a * b).sum()
}

/// Features centred and scaled to unit variance, column by column.
struct Standardised {
    x: Vec<Vec<f64>>,
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl Standardised {
    fn new(features: &[Vec<f32>]) -> Standardised {
        let n = features.len() as f64;
        let d = features[0].len();
        let mut mean = vec![0.0; d];
        for f in features {
            for (m, &v) in mean.iter_mut().zip(f) {
                *m += f64::from(v) / n;
            }
        }
        let mut var = vec![0.0; d];
        for f in features {
            for ((s, &v), m) in var.iter_mut().zip(f).zip(&mean) {
                *s += (f64::from(v) - m).powi(2) / n;
            }
        }
        let scale: Vec<f64> = var.iter().map(|v| v.sqrt().max(1e-6)).collect();
        let x = features.iter().map(|f| f.iter().zip(&mean).zip(&scale).map(|((&v, m), s)| (f64::from(v) - m) / s).collect()).collect();
        Standardised { x, mean, scale }
    }
}

/// Each example's fold, stratified by label and shuffled by `seed`.
fn stratified_folds(labels: &[bool], folds: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix(seed);
    let mut fold_of = vec![0; labels.len()];
    for class in [true, false] {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        for i in (1..members.len()).rev() {
            members.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        for (k, &i) in members.iter().enumerate() {
            fold_of[i] = k % folds;
        }
    }
    fold_of
}

/// L2-regularised logistic regression on the rows `rows` of `x`, by
/// Nesterov's accelerated gradient with step 1/L (L from a power-iteration
/// estimate of the largest eigenvalue of XᵀX/n). The intercept is not penalised.
fn fit_logistic(x: &[Vec<f64>], y: &[f64], rows: &[usize], l2: f64, iterations: u32) -> (Vec<f64>, f64) {
    let d = x[0].len();
    let n = rows.len() as f64;
    // Largest eigenvalue of XᵀX/n.
    let mut v = vec![1.0 / (d as f64).sqrt(); d];
    let mut eig = 1.0;
    for _ in 0..20 {
        let mut next = vec![0.0; d];
        for &i in rows {
            let xv = dot(&x[i], &v);
            for (nj, xj) in next.iter_mut().zip(&x[i]) {
                *nj += xv * xj / n;
            }
        }
        eig = next.iter().map(|a| a * a).sum::<f64>().sqrt();
        if eig == 0.0 {
            break;
        }
        v = next.iter().map(|a| a / eig).collect();
    }
    let step = 1.0 / (0.25 * (eig + 1.0) + l2);
    let (mut w, mut b) = (vec![0.0; d], 0.0);
    let (mut w_prev, mut b_prev) = (w.clone(), b);
    for t in 0..iterations {
        let momentum = t as f64 / (t as f64 + 3.0);
        let look: Vec<f64> = w.iter().zip(&w_prev).map(|(a, p)| a + momentum * (a - p)).collect();
        let look_b = b + momentum * (b - b_prev);
        let mut grad: Vec<f64> = look.iter().map(|wj| l2 * wj).collect();
        let mut grad_b = 0.0;
        for &i in rows {
            let r = (sigmoid(dot(&look, &x[i]) + look_b) - y[i]) / n;
            grad_b += r;
            for (g, xj) in grad.iter_mut().zip(&x[i]) {
                *g += r * xj;
            }
        }
        w_prev = std::mem::replace(&mut w, look.iter().zip(&grad).map(|(l, g)| l - step * g).collect());
        b_prev = std::mem::replace(&mut b, look_b - step * grad_b);
    }
    (w, b)
}

/// Platt scaling: `a`, `c` so that sigmoid(a·z + c) fits the labels `y`
/// (Newton's method with a backtracking line search on the two parameters,
/// with Platt's smoothed targets, so the fit is finite even on separable scores).
fn platt(z: &[f64], y: &[f64]) -> (f64, f64) {
    let pos = y.iter().filter(|&&v| v > 0.5).count() as f64;
    let neg = y.len() as f64 - pos;
    let t: Vec<f64> = y.iter().map(|&v| if v > 0.5 { (pos + 1.0) / (pos + 2.0) } else { 1.0 / (neg + 2.0) }).collect();
    let loss = |a: f64, c: f64| -> f64 {
        z.iter()
            .zip(&t)
            .map(|(&zi, &ti)| {
                let f = a * zi + c;
                // log(1 + e^f) - t·f, computed without overflow.
                let softplus = if f > 0.0 { f + (-f).exp().ln_1p() } else { f.exp().ln_1p() };
                softplus - ti * f
            })
            .sum()
    };
    let (mut a, mut c) = (1.0, 0.0);
    let mut current = loss(a, c);
    for _ in 0..100 {
        let (mut ga, mut gc, mut haa, mut hac, mut hcc) = (0.0, 0.0, 1e-12, 0.0, 1e-12);
        for (&zi, &ti) in z.iter().zip(&t) {
            let p = sigmoid(a * zi + c);
            let r = p - ti;
            let w = p * (1.0 - p);
            ga += r * zi;
            gc += r;
            haa += w * zi * zi;
            hac += w * zi;
            hcc += w;
        }
        let det = haa * hcc - hac * hac;
        if det.abs() < 1e-18 {
            break;
        }
        let da = (hcc * ga - hac * gc) / det;
        let dc = (haa * gc - hac * ga) / det;
        let mut step = 1.0;
        while step > 1e-10 && loss(a - step * da, c - step * dc) > current + 1e-12 {
            step /= 2.0;
        }
        if step <= 1e-10 {
            break;
        }
        a -= step * da;
        c -= step * dc;
        let next = loss(a, c);
        let done = (current - next).abs() < 1e-12;
        current = next;
        if done {
            break;
        }
    }
    (a, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ModelIdentity {
        ModelIdentity { file_size: 10, header_sha256: "ab".repeat(32), architecture: "qwen2".into(), name: Some("test".into()) }
    }

    #[test]
    fn auroc_counts_ties_as_half() {
        assert_eq!(auroc(&[0.1, 0.9, 0.8], &[false, true, true]), Some(1.0));
        assert_eq!(auroc(&[0.9, 0.1], &[false, true]), Some(0.0));
        assert_eq!(auroc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auroc(&[0.5], &[true]), None);
    }

    #[test]
    fn a_probe_learns_a_separable_signal_and_round_trips() {
        // Width 2: the first coordinate of the decision state carries the label, with noise.
        let mut rng = SplitMix(7);
        let mut noise = || (rng.next() % 1000) as f32 / 1000.0 - 0.5;
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for i in 0..200 {
            let right = i % 3 != 0;
            let signal = if right { 1.0 } else { -1.0 };
            let f = AnswerFeatures {
                decision_state: vec![signal + noise(), noise()],
                answer_state: vec![noise(), noise()],
                logits: (0..LOGIT_FEATURES.len()).map(|_| noise()).collect(),
            };
            xs.push(f.to_vec());
            ys.push(right);
        }
        let setup = ProbeSetup::new(identity(), 2, AnswerForm::Choice, "synthetic".into());
        let probe = Probe::fit(&xs, &ys, &setup).unwrap();
        assert!(probe.training.cv_auroc > 0.95, "{:?}", probe.training);
        assert!(probe.training.cv_auroc_ci[0] <= probe.training.cv_auroc && probe.training.cv_auroc <= probe.training.cv_auroc_ci[1]);
        let sure = AnswerFeatures { decision_state: vec![1.0, 0.0], answer_state: vec![0.0, 0.0], logits: vec![0.0; 6] };
        let unsure = AnswerFeatures { decision_state: vec![-1.0, 0.0], ..sure.clone() };
        assert!(probe.score(&sure).unwrap() > 0.8 && probe.score(&unsure).unwrap() < 0.3);
        assert_eq!(probe.score(&AnswerFeatures { decision_state: vec![1.0], ..sure.clone() }), None, "wrong width");

        let dir = std::env::temp_dir().join(format!("probe-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.json");
        probe.save(&path).unwrap();
        let loaded = Probe::load(&path).unwrap();
        assert_eq!(loaded.score(&sure), probe.score(&sure));
        loaded.check_model(&identity()).unwrap();
        let other = ModelIdentity { header_sha256: "cd".repeat(32), ..identity() };
        let e = loaded.check_model(&other).unwrap_err();
        assert!(matches!(e, Error::RouterProbe { .. }) && e.to_string().contains("train one for this model"), "{e}");

        // Damaged files are typed errors, never panics.
        std::fs::write(&path, "{\"format\": \"pocketlm-router-probe\"").unwrap();
        assert!(matches!(Probe::load(&path), Err(Error::RouterProbe { .. })));
        let mut short = probe.clone();
        short.weights.pop();
        short.save(&path).unwrap();
        assert!(Probe::load(&path).unwrap_err().to_string().contains("weights"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn too_few_of_one_class_is_refused() {
        let xs = vec![vec![0.0; 2 * 2 + LOGIT_FEATURES.len()]; 10];
        let setup = ProbeSetup::new(identity(), 2, AnswerForm::Choice, "x".into());
        assert!(matches!(Probe::fit(&xs, &[true; 10], &setup), Err(Error::InvalidOption { .. })));
    }

    #[test]
    fn platt_stays_finite_on_separable_scores() {
        let z: Vec<f64> = (0..40).map(|i| if i < 10 { -5.0 - f64::from(i) } else { 5.0 + f64::from(i) }).collect();
        let y: Vec<f64> = (0..40).map(|i| if i < 10 { 0.0 } else { 1.0 }).collect();
        let (a, c) = platt(&z, &y);
        assert!(a > 0.0 && a < 10.0 && c.is_finite(), "{a} {c}");
    }

    #[test]
    fn bootstrap_brackets_the_mean() {
        let v: Vec<f64> = (0..100).map(f64::from).collect();
        let (lo, hi) = bootstrap_ci(100, 500, 1, |idx| Some(idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64));
        assert!(lo < 49.5 && 49.5 < hi && hi - lo < 25.0, "{lo} {hi}");
    }
}
