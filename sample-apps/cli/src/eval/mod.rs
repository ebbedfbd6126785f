//! `pocketlm eval` and `pocketlm train-router`: does the router earn its
//! keep? Runs a labelled multiple-choice set (ARC layout, JSONL) on the
//! device (and, when given, in the cloud) once per question, caching each
//! result, then reports from those same runs ([`report`]): accuracy, every
//! confidence signal's AUROC, the accuracy-against-device-share curve,
//! APGR, selective accuracy and cost per correct answer.
//!
//! On the device each question is answered twice from one prompt (the
//! second reuses the cached prompt): as free text (at most 4 tokens, the
//! label parsed out) and through the choice constraint over the labels,
//! which is the answer routed. Both decode greedily, so every policy and
//! threshold is computed from the one run per question.

pub mod report;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use pocketlm::{
    AnswerFeatures, AnswerForm, CloudClient, CloudConfig, CloudRequest, ConfidenceOptions, Constraint, Conversation, ConversationOptions,
    Error, Message, Model, ModelOptions, Probe, SamplingParams, SendOptions, Structured,
};
use serde::{Deserialize, Serialize};

/// One question in the ARC JSONL layout.
#[derive(Debug, Deserialize)]
pub struct Item {
    /// The question's id (its line number when the file has none).
    #[serde(default)]
    pub id: String,
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
        let mut item: Item = serde_json::from_str(&line).map_err(|e| bad(format!("ARC-format JSON on line {}: {e}", n + 1)))?;
        if item.choices.text.len() != item.choices.label.len() || !item.choices.label.contains(&item.answer_key) {
            return Err(bad(format!("line {}: choices and labels must pair up and include answerKey", n + 1)));
        }
        if item.id.is_empty() {
            item.id = format!("line-{}", n + 1);
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

/// One question on the device: both answers and their signals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRun {
    /// The constrained answer (one of the labels): the one routed.
    pub answer: String,
    pub correct: bool,
    /// The free-text answer and whether its label is right.
    pub free_text: String,
    pub free_text_correct: bool,
    /// Signal name → value, higher meaning more confident.
    pub scores: std::collections::BTreeMap<String, f64>,
    /// Device time for both answers, in ms.
    pub ms: f64,
    /// The prompt's tokens and the constrained answer's.
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    /// Probe inputs of the constrained and the free-text answer (not cached).
    #[serde(skip)]
    pub choice_features: Option<AnswerFeatures>,
    #[serde(skip)]
    pub free_text_features: Option<AnswerFeatures>,
}

/// One question in the cloud.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloudRun {
    pub answer: String,
    pub correct: bool,
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// Answers items on the device model.
pub struct DeviceRunner {
    conversation: Conversation,
    probe: Option<Probe>,
}

impl DeviceRunner {
    /// Loads `model`; `hidden_states` keeps what a probe reads (needed with `probe`).
    pub fn new(model: &Path, threads: Option<u32>, hidden_states: bool, probe: Option<Probe>) -> Result<DeviceRunner, Error> {
        let model = Model::load(model, &ModelOptions::default())?;
        if let Some(p) = &probe {
            p.check_model(model.identity())?;
        }
        let sampling = SamplingParams { max_tokens: 4, ..SamplingParams::greedy() };
        let conversation = Conversation::new(
            &model,
            ConversationOptions {
                context_length: Some(1024),
                threads,
                sampling,
                hidden_states: hidden_states || probe.is_some(),
                ..Default::default()
            },
        )?;
        Ok(DeviceRunner { conversation, probe })
    }

    /// The model's identity and hidden width (for a probe's binding).
    pub fn model(&self) -> &Model {
        self.conversation.model()
    }

    /// Answers `item` as free text and through the choice constraint.
    pub fn run(&mut self, item: &Item) -> Result<DeviceRun, Error> {
        let started = Instant::now();
        let labels = &item.choices.label;
        let text = prompt(item);
        self.conversation.set_messages(vec![Message::system(SYSTEM)]);
        let free_options =
            SendOptions { confidence: Some(ConfidenceOptions { threshold: 0.0, first_tokens: 1, window: 16 }), ..SendOptions::default() };
        let free = self.conversation.send(&text, &free_options, &mut |_| {})?;
        self.conversation.set_messages(vec![Message::system(SYSTEM)]);
        let choice_options = SendOptions { constraint: Some(Constraint::Choice { options: labels.clone() }), ..SendOptions::default() };
        let chosen = self.conversation.send(&text, &choice_options, &mut |_| {})?;
        let ms = started.elapsed().as_secs_f64() * 1e3;

        let mut scores = std::collections::BTreeMap::new();
        if let Some(c) = free.metrics.confidence {
            // Today's score: the probability of the first generated token.
            scores.insert("first_token".to_string(), f64::from(c.first_tokens_score));
            if let Some(content) = c.content {
                scores.insert("content_logprob_p10".to_string(), f64::from(content.logprob_p10));
                scores.insert("content_margin".to_string(), f64::from(content.mean_margin));
            }
        }
        if let Some(c) = chosen.metrics.confidence {
            scores.extend(c.answer_probability.map(|p| ("answer_probability".to_string(), f64::from(p))));
            scores.extend(c.answer_margin.map(|m| ("answer_margin".to_string(), f64::from(m))));
        }
        if let Some(probe) = &self.probe {
            let (reply, name) = if probe.answer_form == AnswerForm::Choice { (&chosen, "probe") } else { (&free, "probe_free_text") };
            scores.extend(reply.probe_score(probe).map(|p| (name.to_string(), f64::from(p))));
        }
        let answer = match chosen.structured {
            Some(Structured::Choice { index, .. }) => labels[index].clone(),
            _ => chosen.text.clone(),
        };
        Ok(DeviceRun {
            correct: answer == item.answer_key,
            answer,
            free_text_correct: parse_answer(&free.text, labels) == Some(&item.answer_key),
            free_text: free.text,
            scores,
            ms,
            prompt_tokens: chosen.metrics.prompt_tokens_reused + chosen.metrics.prompt_tokens_evaluated,
            output_tokens: chosen.metrics.generated_tokens,
            choice_features: chosen.features,
            free_text_features: free.features,
        })
    }
}

/// Answers `item` in the cloud (free text, as the device's free-text answer).
pub fn run_cloud(client: &CloudClient, item: &Item) -> Result<CloudRun, Error> {
    let messages = vec![Message::system(SYSTEM), Message::user(prompt(item))];
    let sampling = SamplingParams { max_tokens: 4, ..SamplingParams::greedy() };
    let request = CloudRequest { constraint: None, tools: &[], tool_choice: None };
    let reply = client.chat_with(&messages, &sampling, &request, &pocketlm::CancelToken::new(), &mut |_| {})?;
    let (input_tokens, output_tokens) = reply.usage.map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
    Ok(CloudRun {
        correct: parse_answer(&reply.text, &item.choices.label) == Some(&item.answer_key),
        answer: reply.text,
        input_tokens,
        output_tokens,
    })
}

/// One line of `--per-question`: everything needed to recompute every figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub device_answer: String,
    pub device_correct: bool,
    pub free_text_answer: String,
    pub free_text_correct: bool,
    /// `null` without a cloud.
    pub cloud_correct: Option<bool>,
    pub scores: std::collections::BTreeMap<String, f64>,
    pub device_ms: f64,
    pub device_prompt_tokens: u32,
    pub device_output_tokens: u32,
    pub cloud_input_tokens: Option<u32>,
    pub cloud_output_tokens: Option<u32>,
}

/// Results kept between runs, keyed by what produced them: a device run by
/// model header and question id (and probe, if any), a cloud run by model
/// name and question id. Appended as each question finishes, so an
/// interrupted evaluation resumes where it stopped.
pub struct Cache {
    file: Option<std::fs::File>,
    entries: HashMap<String, serde_json::Value>,
}

impl Cache {
    /// Opens (or creates) the cache at `path`; `None` keeps nothing.
    pub fn open(path: Option<&Path>) -> Result<Cache, Error> {
        let Some(path) = path else { return Ok(Cache { file: None, entries: HashMap::new() }) };
        let bad = |e: std::io::Error| Error::InvalidOption { name: "cache", value: path.display().to_string(), expected: e.to_string() };
        let mut entries = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(path) {
            for line in text.lines() {
                // A line cut short by an interrupted run is skipped.
                if let Ok(serde_json::Value::Array(kv)) = serde_json::from_str::<serde_json::Value>(line) {
                    if let [serde_json::Value::String(k), v] = &kv[..] {
                        entries.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(bad)?;
        Ok(Cache { file: Some(file), entries })
    }

    /// The cached value under `key`, or `compute`'s, recorded.
    pub fn get_or<T: Serialize + for<'de> Deserialize<'de>>(
        &mut self,
        key: String,
        compute: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        if let Some(v) = self.entries.get(&key).and_then(|v| serde_json::from_value(v.clone()).ok()) {
            return Ok(v);
        }
        let value = compute()?;
        if let Some(file) = &mut self.file {
            let line = serde_json::to_string(&(&key, &value)).map_err(|e| Error::Inference(e.to_string()))?;
            writeln!(file, "{line}").map_err(|e| Error::InvalidOption { name: "cache", value: key.clone(), expected: e.to_string() })?;
        }
        Ok(value)
    }
}

/// Everything `pocketlm eval` needs.
pub struct EvalOptions {
    pub device_model: PathBuf,
    pub cloud: Option<CloudConfig>,
    pub threads: Option<u32>,
    pub probe: Option<Probe>,
    pub cache: Option<PathBuf>,
    /// Instead of calling a cloud: another model's `--per-question` file from
    /// a device run on the same questions, its constrained answers standing
    /// for the cloud's (the same model, run once per question).
    pub cloud_results: Option<PathBuf>,
}

/// Reads `--cloud-results`: question id → that model's record.
fn read_cloud_results(path: &Path) -> Result<HashMap<String, Record>, Error> {
    let bad = |why: String| Error::InvalidOption { name: "cloud_results", value: path.display().to_string(), expected: why };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("a readable --per-question file ({e})")))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Record>(l).map(|r| (r.id.clone(), r)).map_err(|e| bad(format!("--per-question lines ({e})"))))
        .collect()
}

/// Runs every item on the device (and in the cloud, when configured);
/// `progress` sees each record.
pub fn run(items: &[Item], options: &EvalOptions, progress: &mut dyn FnMut(usize, &Record)) -> Result<Vec<Record>, Error> {
    let mut device = DeviceRunner::new(&options.device_model, options.threads, false, options.probe.clone())?;
    let cloud = options.cloud.clone().map(CloudClient::new).transpose()?;
    let recorded = options.cloud_results.as_deref().map(read_cloud_results).transpose()?;
    let mut cache = Cache::open(options.cache.as_deref())?;
    let device_key = {
        let identity = device.model().identity();
        let probe = options
            .probe
            .as_ref()
            .map_or(String::new(), |p| format!("+probe{:x}", fingerprint(p.weights.iter().map(|w| u64::from(w.to_bits())))));
        format!("device:{}{probe}", identity.header_sha256)
    };
    let mut records = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        // Keyed by the question's text too, so another file's "q1" is another question.
        let question = fingerprint_text(&prompt(item));
        let d: DeviceRun = cache.get_or(format!("{device_key}:{}:{question:x}", item.id), || device.run(item))?;
        let c: Option<CloudRun> = match (&cloud, &options.cloud, &recorded) {
            (Some(client), Some(config), _) => {
                let key = format!("cloud:{}:{}:{}:{question:x}", config.base_url, config.model, item.id);
                Some(cache.get_or(key, || run_cloud(client, item))?)
            }
            (_, _, Some(recorded)) => {
                let r = recorded.get(&item.id).ok_or_else(|| Error::InvalidOption {
                    name: "cloud_results",
                    value: item.id.clone(),
                    expected: "a record for every question evaluated".into(),
                })?;
                Some(CloudRun {
                    answer: r.device_answer.clone(),
                    correct: r.device_correct,
                    input_tokens: r.device_prompt_tokens,
                    output_tokens: r.device_output_tokens,
                })
            }
            _ => None,
        };
        let record = Record {
            id: item.id.clone(),
            device_answer: d.answer,
            device_correct: d.correct,
            free_text_answer: d.free_text,
            free_text_correct: d.free_text_correct,
            cloud_correct: c.as_ref().map(|c| c.correct),
            scores: d.scores,
            device_ms: d.ms,
            device_prompt_tokens: d.prompt_tokens,
            device_output_tokens: d.output_tokens,
            cloud_input_tokens: c.as_ref().map(|c| c.input_tokens),
            cloud_output_tokens: c.as_ref().map(|c| c.output_tokens),
        };
        progress(i, &record);
        records.push(record);
    }
    Ok(records)
}

/// A short stable fingerprint (FNV-1a over `words`), for cache keys.
fn fingerprint(words: impl Iterator<Item = u64>) -> u64 {
    words.fold(0xcbf2_9ce4_8422_2325u64, |h, w| (h ^ w).wrapping_mul(0x100_0000_01b3))
}

/// The fingerprint of a text, byte by byte.
fn fingerprint_text(text: &str) -> u64 {
    fingerprint(text.bytes().map(u64::from))
}

/// One training question's labels and probe inputs (what `train-router` caches).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingRun {
    pub correct: bool,
    pub free_text_correct: bool,
    pub choice_features: Vec<f32>,
    pub free_text_features: Vec<f32>,
}

/// Runs the device on labelled `items` with hidden states kept (or reads
/// each run from `cache`) and fits a probe on its answers of `form` (see
/// [`Probe::fit`]). `progress` sees whether each answer was right.
pub fn train_router(
    items: &[Item],
    model: &Path,
    form: AnswerForm,
    threads: Option<u32>,
    dataset: &str,
    cache: Option<&Path>,
    progress: &mut dyn FnMut(usize, bool),
) -> Result<Probe, Error> {
    let mut device = DeviceRunner::new(model, threads, true, None)?;
    let mut cache = Cache::open(cache)?;
    let header = device.model().identity().header_sha256.clone();
    let (mut xs, mut ys) = (Vec::with_capacity(items.len()), Vec::with_capacity(items.len()));
    for (i, item) in items.iter().enumerate() {
        let key = format!("train:{header}:{}:{:x}", item.id, fingerprint_text(&prompt(item)));
        let run: TrainingRun = cache.get_or(key, || {
            let run = device.run(item)?;
            let missing = || Error::Inference("the device kept no hidden states".into());
            Ok(TrainingRun {
                correct: run.correct,
                free_text_correct: run.free_text_correct,
                choice_features: run.choice_features.ok_or_else(missing)?.to_vec(),
                free_text_features: run.free_text_features.ok_or_else(missing)?.to_vec(),
            })
        })?;
        let (features, correct) = match form {
            AnswerForm::Choice => (run.choice_features, run.correct),
            AnswerForm::FreeText => (run.free_text_features, run.free_text_correct),
        };
        progress(i, correct);
        xs.push(features);
        ys.push(correct);
    }
    // The width of the states the model actually returned.
    let n_embd = xs.first().map_or(0, |x: &Vec<f32>| (x.len() - pocketlm::probe::LOGIT_FEATURES.len()) / 2) as u32;
    let setup = pocketlm::ProbeSetup::new(device.model().identity().clone(), n_embd, form, dataset.to_string());
    Probe::fit(&xs, &ys, &setup)
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
}
