//! The figures of `pocketlm eval`, all computed from the per-question
//! records (so anyone can recompute them from `--per-question`), with
//! percentile-bootstrap 95 % intervals.

use pocketlm::probe::{auroc, bootstrap_ci};
use pocketlm::Pricing;
use serde::Serialize;

use super::Record;

const RESAMPLES: u32 = 1000;
const SEED: u64 = 2026;

/// A figure and its bootstrap 95 % interval.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ci {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl std::fmt::Display for Ci {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} [{:.3}, {:.3}]", self.value, self.low, self.high)
    }
}

fn ci(n: usize, stat: impl Fn(&[usize]) -> Option<f64>) -> Option<Ci> {
    let all: Vec<usize> = (0..n).collect();
    let value = stat(&all)?;
    let (low, high) = bootstrap_ci(n, RESAMPLES, SEED, stat);
    Some(Ci { value, low, high })
}

/// One signal's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SignalReport {
    pub name: String,
    /// AUROC for telling a right device answer from a wrong one.
    pub auroc: Option<Ci>,
    /// Device accuracy on the most confident 80 % and 90 % of questions.
    pub selective_accuracy_80: f64,
    pub selective_accuracy_90: f64,
    /// RouteLLM's average performance gap recovered (random routing: 0.50), with a cloud.
    pub apgr: Option<Ci>,
    /// Prefer-local at several shares answered on the device, with a cloud.
    pub operating_points: Vec<OperatingPoint>,
}

/// Prefer-local keeping the most confident `device_share` on the device.
#[derive(Debug, Clone, Serialize)]
pub struct OperatingPoint {
    pub device_share: f64,
    /// The signal's value at that share: the threshold an app would set.
    pub threshold: f64,
    pub accuracy: f64,
    pub cloud_cost: f64,
    /// Device compute over all questions (every question starts on the device), in s.
    pub device_seconds: f64,
    /// Of which spent on questions that escalated anyway, in s.
    pub wasted_device_seconds: f64,
    /// Cloud money per correct answer.
    pub cloud_cost_per_correct: f64,
    /// Device seconds per correct answer.
    pub device_seconds_per_correct: f64,
}

/// Everything `pocketlm eval` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub questions: usize,
    /// The constrained (choice) answer: the one routed.
    pub device_accuracy: Ci,
    /// The free-text answer with its label parsed out.
    pub free_text_accuracy: Ci,
    pub cloud_accuracy: Option<Ci>,
    /// Today's signal on the answer it was made for: the first free-text token's AUROC for the free-text answer.
    pub first_token_auroc_free_text: Option<Ci>,
    /// The best any router could do (it knows which side is right).
    pub oracle_apgr: Option<f64>,
    pub signals: Vec<SignalReport>,
}

/// The AUROC of `signal` for telling the answers `right` calls right from the rest.
fn signal_auroc(records: &[Record], signal: &str, right: &dyn Fn(&Record) -> bool) -> Option<Ci> {
    ci(records.len(), |idx| {
        let s: Vec<f64> = idx.iter().map(|&i| records[i].scores.get(signal).copied().unwrap_or(f64::NEG_INFINITY)).collect();
        let l: Vec<bool> = idx.iter().map(|&i| right(&records[i])).collect();
        auroc(&s, &l)
    })
}

/// Signals measured on the free-text answer (the rest on the constrained one).
pub const FREE_TEXT_SIGNALS: [&str; 4] = ["first_token", "content_logprob_p10", "content_margin", "probe_free_text"];

/// Whether the answer `signal` judges was right.
fn judged_answer_right(r: &Record, signal: &str) -> bool {
    if FREE_TEXT_SIGNALS.contains(&signal) {
        r.free_text_correct
    } else {
        r.device_correct
    }
}

/// Questions from most to least confident by `signal`, in blocks of equal
/// scores (missing values last, as one block). Within a block the order is
/// arbitrary, so the figures below count each block's expected share.
fn ranked(records: &[Record], signal: &str) -> Vec<Vec<usize>> {
    let score = |i: usize| records[i].scores.get(signal).copied().unwrap_or(f64::NEG_INFINITY);
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
    let mut blocks: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match blocks.last_mut() {
            Some(block) if score(block[0]) == score(i) => block.push(i),
            _ => blocks.push(vec![i]),
        }
    }
    blocks
}

/// The expected number of right answers among the first `k` questions kept on
/// the device, and among the rest in the cloud, ties broken at random.
fn kept_correct(records: &[Record], blocks: &[Vec<usize>], k: usize) -> (f64, f64) {
    let (mut device, mut cloud, mut start) = (0.0, 0.0, 0usize);
    for block in blocks {
        let d = block.iter().filter(|&&i| records[i].device_correct).count() as f64;
        let c = block.iter().filter(|&&i| records[i].cloud_correct == Some(true)).count() as f64;
        let kept = (k.saturating_sub(start)).min(block.len()) as f64 / block.len() as f64;
        device += kept * d;
        cloud += (1.0 - kept) * c;
        start += block.len();
    }
    (device, cloud)
}

/// Accuracy when the first `k` questions stay on the device, for every k
/// (what [`kept_correct`] gives for each k, in one pass over the blocks:
/// linear, so the bootstrap of a full test split stays quick).
fn accuracy_curve(records: &[Record], blocks: &[Vec<usize>]) -> Vec<f64> {
    let n = records.len() as f64;
    let counts: Vec<(f64, f64)> = blocks
        .iter()
        .map(|b| {
            let d = b.iter().filter(|&&i| records[i].device_correct).count() as f64;
            (d, b.iter().filter(|&&i| records[i].cloud_correct == Some(true)).count() as f64)
        })
        .collect();
    let cloud_total: f64 = counts.iter().map(|c| c.1).sum();
    let mut curve = Vec::with_capacity(records.len() + 1);
    curve.push(cloud_total / n);
    let (mut device_before, mut cloud_before) = (0.0, 0.0);
    for (block, (d, c)) in blocks.iter().zip(counts) {
        for j in 1..=block.len() {
            let kept = j as f64 / block.len() as f64;
            curve.push((device_before + kept * d + cloud_total - cloud_before - kept * c) / n);
        }
        device_before += d;
        cloud_before += c;
    }
    curve
}

/// Average performance gap recovered over every share sent to the cloud.
fn apgr(records: &[Record], blocks: &[Vec<usize>]) -> Option<f64> {
    let curve = accuracy_curve(records, blocks);
    let (device_only, cloud_only) = (*curve.last()?, curve[0]);
    if (cloud_only - device_only).abs() < 1e-12 {
        return None;
    }
    Some(curve.iter().map(|a| (a - device_only) / (cloud_only - device_only)).sum::<f64>() / curve.len() as f64)
}

fn subset(records: &[Record], idx: &[usize]) -> Vec<Record> {
    idx.iter().map(|&i| records[i].clone()).collect()
}

fn selective(records: &[Record], blocks: &[Vec<usize>], keep: f64) -> f64 {
    let k = ((records.len() as f64 * keep).round() as usize).clamp(1, records.len().max(1));
    kept_correct(records, blocks, k).0 / k as f64
}

/// Every figure, from `records`.
pub fn summarise(records: &[Record], pricing: Pricing) -> Summary {
    let n = records.len();
    let has_cloud = records.iter().all(|r| r.cloud_correct.is_some()) && n > 0;
    let rate = |idx: &[usize], f: &dyn Fn(&Record) -> bool| Some(idx.iter().filter(|&&i| f(&records[i])).count() as f64 / idx.len() as f64);
    let device_accuracy = ci(n, |idx| rate(idx, &|r| r.device_correct)).unwrap_or(Ci { value: 0.0, low: 0.0, high: 0.0 });
    let free_text_accuracy = ci(n, |idx| rate(idx, &|r| r.free_text_correct)).unwrap_or(Ci { value: 0.0, low: 0.0, high: 0.0 });
    let cloud_accuracy = if has_cloud { ci(n, |idx| rate(idx, &|r| r.cloud_correct == Some(true))) } else { None };
    let mut names: Vec<String> = records.iter().flat_map(|r| r.scores.keys().cloned()).collect();
    names.sort();
    names.dedup();
    let oracle_apgr = has_cloud.then(|| {
        // Keep on the device first where only it is right, then where both agree, last where only the cloud is.
        let gain = |i: usize| i32::from(records[i].device_correct) - i32::from(records[i].cloud_correct == Some(true));
        let blocks: Vec<Vec<usize>> =
            [1, 0, -1].iter().map(|&g| (0..n).filter(|&i| gain(i) == g).collect::<Vec<_>>()).filter(|b| !b.is_empty()).collect();
        apgr(records, &blocks)
    });
    let signals = names
        .iter()
        .map(|name| {
            // Each signal judges the answer it was measured on.
            let view: Vec<Record> = records.iter().map(|r| Record { device_correct: judged_answer_right(r, name), ..r.clone() }).collect();
            let records = &view[..];
            let order = ranked(records, name);
            let apgr_ci = if has_cloud {
                ci(n, |idx| {
                    let sub = subset(records, idx);
                    apgr(&sub, &ranked(&sub, name))
                })
            } else {
                None
            };
            let operating_points = if has_cloud {
                [0.5, 0.7, 0.9].iter().map(|&share| operating_point(records, &order, name, share, pricing)).collect()
            } else {
                Vec::new()
            };
            SignalReport {
                name: name.clone(),
                auroc: signal_auroc(records, name, &|r| r.device_correct),
                selective_accuracy_80: selective(records, &order, 0.8),
                selective_accuracy_90: selective(records, &order, 0.9),
                apgr: apgr_ci,
                operating_points,
            }
        })
        .collect();
    Summary {
        questions: n,
        device_accuracy,
        free_text_accuracy,
        cloud_accuracy,
        first_token_auroc_free_text: signal_auroc(records, "first_token", &|r| r.free_text_correct),
        oracle_apgr: oracle_apgr.flatten(),
        signals,
    }
}

/// Prefer-local at the threshold that keeps about `share` on the device: every
/// question scoring at least the threshold stays (so ties keep whole blocks,
/// and `device_share` is the share actually kept).
fn operating_point(records: &[Record], blocks: &[Vec<usize>], signal: &str, share: f64, pricing: Pricing) -> OperatingPoint {
    let target = (records.len() as f64 * share).round() as usize;
    let (mut kept, mut kept_blocks) = (0usize, 0usize);
    for block in blocks {
        if kept >= target.max(1) {
            break;
        }
        kept += block.len();
        kept_blocks += 1;
    }
    let (mut correct, mut cloud_cost, mut device_ms, mut wasted_ms) = (0usize, 0.0, 0.0, 0.0);
    for (b, block) in blocks.iter().enumerate() {
        for &i in block {
            let r = &records[i];
            device_ms += r.device_ms;
            if b < kept_blocks {
                correct += usize::from(r.device_correct);
            } else {
                correct += usize::from(r.cloud_correct == Some(true));
                wasted_ms += r.device_ms;
                let (tin, tout) = (r.cloud_input_tokens.unwrap_or(0), r.cloud_output_tokens.unwrap_or(0));
                cloud_cost += (f64::from(tin) * pricing.input_per_million + f64::from(tout) * pricing.output_per_million) / 1e6;
            }
        }
    }
    let per = |x: f64| if correct > 0 { x / correct as f64 } else { f64::NAN };
    let threshold = blocks.get(kept_blocks.saturating_sub(1)).and_then(|b| records[b[0]].scores.get(signal).copied()).unwrap_or(f64::NAN);
    OperatingPoint {
        device_share: kept as f64 / records.len().max(1) as f64,
        threshold,
        accuracy: correct as f64 / records.len().max(1) as f64,
        cloud_cost,
        device_seconds: device_ms / 1e3,
        wasted_device_seconds: wasted_ms / 1e3,
        cloud_cost_per_correct: per(cloud_cost),
        device_seconds_per_correct: per(device_ms / 1e3),
    }
}

/// The summary as Markdown.
pub fn markdown(s: &Summary) -> String {
    let pct = |c: &Ci| format!("{:.1} % [{:.1}, {:.1}]", 100.0 * c.value, 100.0 * c.low, 100.0 * c.high);
    let mut out = vec![
        format!("{} questions.", s.questions),
        String::new(),
        format!("- device accuracy, choice constraint (routed): {}", pct(&s.device_accuracy)),
        format!("- device accuracy, free text: {}", pct(&s.free_text_accuracy)),
    ];
    if let Some(c) = &s.cloud_accuracy {
        out.push(format!("- cloud accuracy: {}", pct(c)));
    }
    if let Some(a) = &s.first_token_auroc_free_text {
        out.push(format!("- first-token score's AUROC for the free-text answer: {a}"));
    }
    if let Some(o) = s.oracle_apgr {
        out.push(format!("- oracle router's APGR: {o:.3} (random routing: 0.500)"));
    }
    out.push(String::new());
    out.push(format!("Signals in {FREE_TEXT_SIGNALS:?} judge (and route) the free-text answer; the rest the constrained one."));
    out.push(String::new());
    out.push("| signal | AUROC [95 % CI] | selective acc. @80 % | @90 % | APGR [95 % CI] |".into());
    out.push("|---|---|---|---|---|".into());
    for sig in &s.signals {
        out.push(format!(
            "| {} | {} | {:.1} % | {:.1} % | {} |",
            sig.name,
            sig.auroc.map_or("-".into(), |a| a.to_string()),
            100.0 * sig.selective_accuracy_80,
            100.0 * sig.selective_accuracy_90,
            sig.apgr.map_or("-".into(), |a| a.to_string()),
        ));
    }
    let points: Vec<(&str, &OperatingPoint)> =
        s.signals.iter().flat_map(|sig| sig.operating_points.iter().map(move |p| (sig.name.as_str(), p))).collect();
    if !points.is_empty() {
        out.push(String::new());
        out.push("| prefer-local by | on device | threshold | accuracy | cloud cost | device s (wasted) | cloud cost / correct | device s / correct |".into());
        out.push("|---|---|---|---|---|---|---|---|".into());
        for (name, p) in points {
            out.push(format!(
                "| {name} | {:.0} % | {:.3} | {:.1} % | {:.6} | {:.0} ({:.0}) | {:.8} | {:.2} |",
                100.0 * p.device_share,
                p.threshold,
                100.0 * p.accuracy,
                p.cloud_cost,
                p.device_seconds,
                p.wasted_device_seconds,
                p.cloud_cost_per_correct,
                p.device_seconds_per_correct
            ));
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(device_correct: bool, cloud_correct: bool, score: f64) -> Record {
        Record {
            id: String::new(),
            device_answer: String::new(),
            device_correct,
            free_text_answer: String::new(),
            free_text_correct: device_correct,
            cloud_correct: Some(cloud_correct),
            scores: [("s".to_string(), score)].into_iter().collect(),
            device_ms: 100.0,
            device_prompt_tokens: 100,
            device_output_tokens: 1,
            cloud_input_tokens: Some(100),
            cloud_output_tokens: Some(1),
        }
    }

    #[test]
    fn the_accuracy_curve_matches_kept_correct_at_every_share() {
        let records: Vec<Record> = (0..23).map(|i| record(i % 3 == 0, i % 4 != 1, f64::from(i % 5))).collect();
        let blocks = ranked(&records, "s");
        let curve = accuracy_curve(&records, &blocks);
        assert_eq!(curve.len(), records.len() + 1);
        for (k, a) in curve.iter().enumerate() {
            let (d, c) = kept_correct(&records, &blocks, k);
            assert!((a - (d + c) / records.len() as f64).abs() < 1e-12, "k = {k}");
        }
    }

    #[test]
    fn a_perfect_signal_recovers_what_the_oracle_does_and_random_scores_half() {
        // Device right on half, the cloud right everywhere.
        let records: Vec<Record> = (0..100).map(|i| record(i % 2 == 0, true, if i % 2 == 0 { 0.9 } else { 0.1 })).collect();
        let s = summarise(&records, Pricing { input_per_million: 1.0, output_per_million: 1.0 });
        let sig = &s.signals[0];
        assert_eq!(sig.auroc.unwrap().value, 1.0);
        assert!((sig.apgr.unwrap().value - s.oracle_apgr.unwrap()).abs() < 1e-9);
        assert_eq!(sig.selective_accuracy_80, 50.0 / 80.0);
        let half = &sig.operating_points[0];
        assert_eq!(half.accuracy, 1.0);
        assert!((half.wasted_device_seconds - 5.0).abs() < 1e-9 && (half.device_seconds - 10.0).abs() < 1e-9);
        // A constant signal routes like a coin: APGR 0.5, whatever the file order.
        let flat: Vec<Record> = (0..100).map(|i| record(i % 2 == 0, true, 0.5)).collect();
        let a = apgr(&flat, &ranked(&flat, "s")).unwrap();
        assert!((a - 0.5).abs() < 1e-9, "ties count as a coin: {a}");
        assert!(markdown(&s).contains("| s | 1.000"));
    }
}
