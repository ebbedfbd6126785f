//! `pocketlm eval`: does the router earn its keep? Runs a labelled
//! multiple-choice set (ARC format, JSONL) on the device and in the cloud,
//! then reports, for local-only, cloud-only and prefer-local at several
//! thresholds: accuracy, share answered on the device, cloud tokens and cost,
//! cost per correct answer, and the AUROC of the confidence score for
//! predicting a wrong device answer.
//!
//! Both sides decode greedily, so prefer-local at threshold t gives exactly
//! the device answer when the first-token confidence is at least t and the
//! cloud answer otherwise; the table is computed from one device run and one
//! cloud run per question instead of one run per threshold.

use std::io::BufRead;
use std::path::Path;

use pocketlm::{
    ConfidenceOptions, Conversation, ConversationOptions, Error, Message, Model, ModelOptions, Pricing, RouteOptions, RoutePolicy,
    RoutedChat, RouterConfig, SamplingParams,
};
use serde::Deserialize;

/// One question in the ARC JSONL layout.
#[derive(Debug, Deserialize)]
pub struct Item {
    pub question: String,
    pub choices: Choices,
    #[serde(rename = "answerKey")]
    pub answer_key: String,
}

#[derive(Debug, Deserialize)]
pub struct Choices {
    pub text: Vec<String>,
    pub label: Vec<String>,
}

/// Reads and checks a JSONL file of items (the first `limit`, if given).
pub fn load(path: &Path, limit: Option<usize>) -> Result<Vec<Item>, Error> {
    let bad = |detail: String| Error::InvalidOption { name: "dataset", value: path.display().to_string(), expected: detail };
    let file = std::fs::File::open(path).map_err(|e| bad(format!("a readable JSONL file ({e})")))?;
    let mut items = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| bad(format!("UTF-8 text ({e})")))?;
        if line.trim().is_empty() {
            continue;
        }
        let item: Item = serde_json::from_str(&line).map_err(|e| bad(format!("ARC-format JSON on line {}: {e}", n + 1)))?;
        if item.choices.text.len() != item.choices.label.len() || !item.choices.label.contains(&item.answer_key) {
            return Err(bad(format!("line {}: choices and labels must pair up and include answerKey", n + 1)));
        }
        items.push(item);
        if limit.is_some_and(|l| items.len() >= l) {
            break;
        }
    }
    Ok(items)
}

const SYSTEM: &str = "You answer multiple-choice science questions. Reply with the label of the correct choice only.";

fn prompt(item: &Item) -> String {
    let mut p = format!("Question: {}\n", item.question);
    for (label, text) in item.choices.label.iter().zip(&item.choices.text) {
        p.push_str(&format!("{label}. {text}\n"));
    }
    p.push_str("Answer:");
    p
}

/// The first word of `reply` that is one of the item's labels.
pub fn parse_answer<'a>(reply: &str, labels: &'a [String]) -> Option<&'a String> {
    reply.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).find_map(|w| labels.iter().find(|l| *l == w))
}

/// One question's outcome on both sides.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub device_correct: bool,
    pub score: f32,
    pub cloud_correct: bool,
    pub cloud_in: u32,
    pub cloud_out: u32,
}

/// Everything `pocketlm eval` needs.
pub struct EvalOptions {
    pub device_model: std::path::PathBuf,
    pub cloud: pocketlm::CloudConfig,
    pub pricing: Pricing,
    pub threads: Option<u32>,
}

/// Runs every item on the device and in the cloud; `progress` sees each outcome.
pub fn run(items: &[Item], options: &EvalOptions, progress: &mut dyn FnMut(usize, &Outcome)) -> Result<Vec<Outcome>, Error> {
    let model = Model::load(&options.device_model, &ModelOptions::default())?;
    let sampling = SamplingParams { max_tokens: 4, ..SamplingParams::greedy() };
    let conversation = Conversation::new(
        &model,
        ConversationOptions { context_length: Some(1024), threads: options.threads, sampling: sampling.clone(), ..Default::default() },
    )?;
    // The answer is one label: its own probability is the signal.
    let confidence = ConfidenceOptions { threshold: 0.0, first_tokens: 1, window: 16 };
    let config = RouterConfig {
        policy: RoutePolicy::LocalOnly,
        cloud: Some(options.cloud.clone()),
        pricing: options.pricing,
        confidence,
        ..RouterConfig::default()
    };
    let mut chat = RoutedChat::new(Ok(conversation), config, sampling)?;
    let mut outcomes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let history = vec![Message::system(SYSTEM)];
        chat.set_messages(history.clone());
        let device = chat.send(&prompt(item), &RouteOptions::default(), &mut |_| {})?;
        chat.set_messages(history);
        let cloud_request = RouteOptions { policy: Some(RoutePolicy::CloudOnly), ..RouteOptions::default() };
        let cloud = chat.send(&prompt(item), &cloud_request, &mut |_| {})?;
        let labels = &item.choices.label;
        let outcome = Outcome {
            device_correct: parse_answer(&device.text, labels) == Some(&item.answer_key),
            score: device.confidence.map_or(0.0, |c| c.first_tokens_score),
            cloud_correct: parse_answer(&cloud.text, labels) == Some(&item.answer_key),
            cloud_in: cloud.cost.cloud_input_tokens,
            cloud_out: cloud.cost.cloud_output_tokens,
        };
        progress(i, &outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Area under the ROC curve of `1 - score` for predicting a wrong device
/// answer: the chance that a wrong answer scores lower than a right one.
pub fn auroc(outcomes: &[Outcome]) -> Option<f64> {
    let wrong: Vec<f32> = outcomes.iter().filter(|o| !o.device_correct).map(|o| o.score).collect();
    let right: Vec<f32> = outcomes.iter().filter(|o| o.device_correct).map(|o| o.score).collect();
    if wrong.is_empty() || right.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for w in &wrong {
        for r in &right {
            wins += if w < r {
                1.0
            } else if w == r {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (wrong.len() * right.len()) as f64)
}

/// The Markdown table: one row per policy.
pub fn table(outcomes: &[Outcome], thresholds: &[f32], pricing: Pricing) -> String {
    let n = outcomes.len() as f64;
    let cost = |i: u64, o: u64| (i as f64 * pricing.input_per_million + o as f64 * pricing.output_per_million) / 1e6;
    let mut rows = vec![
        "| policy | accuracy | answered on device | cloud tokens in / out | cloud cost | cost per correct answer |".to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ];
    let mut row = |name: String, local: &dyn Fn(&Outcome) -> bool| {
        let (mut correct, mut on_device, mut tin, mut tout) = (0u32, 0u32, 0u64, 0u64);
        for o in outcomes {
            if local(o) {
                on_device += 1;
                correct += u32::from(o.device_correct);
            } else {
                correct += u32::from(o.cloud_correct);
                tin += u64::from(o.cloud_in);
                tout += u64::from(o.cloud_out);
            }
        }
        let spent = cost(tin, tout);
        let per_correct = if correct > 0 { format!("{:.6}", spent / f64::from(correct)) } else { "-".into() };
        rows.push(format!(
            "| {name} | {:.1} % | {:.1} % | {tin} / {tout} | {spent:.6} | {per_correct} |",
            100.0 * f64::from(correct) / n,
            100.0 * f64::from(on_device) / n
        ));
    };
    row("local-only".into(), &|_| true);
    row("cloud-only".into(), &|_| false);
    for &t in thresholds {
        row(format!("prefer-local, threshold {t}"), &|o: &Outcome| o.score >= t);
    }
    let auc = auroc(outcomes).map_or_else(|| "undefined (all right or all wrong)".to_string(), |a| format!("{a:.3}"));
    rows.push(String::new());
    rows.push(format!("{} questions. AUROC of the confidence score for predicting a wrong device answer: {auc}.", outcomes.len()));
    rows.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_matched_against_each_items_own_labels() {
        let abcd: Vec<String> = ["A", "B", "C", "D"].map(String::from).to_vec();
        assert_eq!(parse_answer(" B. The producers", &abcd).map(String::as_str), Some("B"));
        assert_eq!(parse_answer("The answer is C", &abcd).map(String::as_str), Some("C"));
        let digits: Vec<String> = ["1", "2", "3", "4"].map(String::from).to_vec();
        assert_eq!(parse_answer("3)", &digits).map(String::as_str), Some("3"));
        assert_eq!(parse_answer("none", &digits), None);
    }

    #[test]
    fn auroc_is_one_when_every_wrong_answer_scores_lower() {
        let o = |device_correct, score| Outcome { device_correct, score, cloud_correct: true, cloud_in: 10, cloud_out: 1 };
        assert_eq!(auroc(&[o(false, 0.2), o(true, 0.9), o(true, 0.8)]), Some(1.0));
        assert_eq!(auroc(&[o(false, 0.9), o(true, 0.2)]), Some(0.0));
        assert_eq!(auroc(&[o(true, 0.9)]), None);
        let t = table(&[o(false, 0.2), o(true, 0.9)], &[0.5], Pricing { input_per_million: 1.0, output_per_million: 1.0 });
        assert!(t.contains("| prefer-local, threshold 0.5 | 100.0 % | 50.0 % | 10 / 1 |"), "{t}");
    }
}
