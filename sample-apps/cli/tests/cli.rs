//! The CLI's contract: JSON shapes, streaming, scripted chat, and errors that
//! exit non-zero with a message (never a panic or a signal).

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Output;

use common::pocketlm;
use serde_json::Value;
use sha2::{Digest, Sha256};

const QWEN_FILE: &str = "qwen2.5-coder-0.5b-instruct-q4.gguf";
const METRIC_KEYS: [&str; 11] = [
    "load_ms",
    "ttft_ms",
    "prompt_tokens_reused",
    "prompt_tokens_evaluated",
    "generated_tokens",
    "prefill_tokens_per_s",
    "decode_tokens_per_s",
    "peak_rss_bytes",
    "stop_reason",
    "backend",
    "device",
];

/// The Qwen test model's path, as the CLI itself resolves it (`pocketlm fetch`
/// is a no-op when the verified file is already cached).
fn qwen() -> PathBuf {
    let out = pocketlm(&["fetch", "qwen2.5-0.5b"], None);
    assert!(out.status.success(), "run scripts/fetch-test-models.sh: {}", stderr(&out));
    let path = PathBuf::from(stdout(&out).trim());
    assert!(path.ends_with(QWEN_FILE), "{}", path.display());
    path
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn assert_metrics(m: &Value) {
    for key in METRIC_KEYS {
        assert!(m.get(key).is_some(), "metrics lack {key}: {m}");
    }
}

#[test]
fn generate_json_is_one_object_with_text_and_metrics() {
    let model = qwen();
    let out = pocketlm(
        &[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "What is the capital of France?",
            "--temperature",
            "0",
            "--threads",
            "2",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.trim().lines().count(), 1, "exactly one JSON line: {text}");
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    assert!(v["text"].as_str().unwrap().contains("Paris"), "{v}");
    assert_metrics(&v["metrics"]);
    assert_eq!(v["metrics"]["stop_reason"], "eos");
}

#[test]
fn generate_with_a_schema_or_a_choice_prints_the_value_and_the_probabilities() {
    let model = qwen();
    let dir = std::env::temp_dir().join(format!("pocketlm-cli-structured-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let schema = dir.join("capital.json");
    std::fs::write(
        &schema,
        r#"{"type":"object","properties":{"country":{"type":"string","maxLength":30},"capital":{"type":"string","maxLength":30}},"required":["country","capital"],"additionalProperties":false}"#,
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["generate", "--model", model.to_str().unwrap(), "--temperature", "0", "--threads", "2", "--json"];
        args.extend_from_slice(extra);
        let out = pocketlm(&args, None);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<Value>(stdout(&out).trim()).unwrap()
    };
    let v = run(&["--prompt", "What is the capital of France?", "--schema", schema.to_str().unwrap()]);
    let value = &v["structured"]["value"];
    assert_eq!(v["structured"]["type"], "json", "{v}");
    assert!(value["capital"].as_str().unwrap().contains("Paris"), "{v}");
    assert_eq!(value.as_object().unwrap().len(), 2, "{v}");
    assert_eq!(serde_json::from_str::<Value>(v["text"].as_str().unwrap()).unwrap(), *value);

    let v = run(&["--prompt", "Is Paris in France?", "--choice", "yes,no"]);
    assert_eq!(v["text"], "yes", "{v}");
    assert_eq!(v["structured"]["index"], 0, "{v}");
    let p: Vec<f64> = v["structured"]["probabilities"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap()).collect();
    assert_eq!(p.len(), 2);
    assert!((p[0] + p[1] - 1.0).abs() < 1e-9 && p[0] > p[1], "{p:?}");

    let grammar = dir.join("count.gbnf");
    std::fs::write(&grammar, "root ::= [1-9] \" apples\"\n").unwrap();
    let v = run(&["--prompt", "How many apples?", "--grammar", grammar.to_str().unwrap()]);
    let text = v["text"].as_str().unwrap();
    assert!(text.len() == 8 && text.ends_with(" apples"), "{text:?}");

    // A schema the engine cannot enforce fails before the model answers, naming the keyword.
    std::fs::write(&schema, r#"{"type":"array","uniqueItems":true}"#).unwrap();
    let out = pocketlm(&["generate", "--model", model.to_str().unwrap(), "--prompt", "hi", "--schema", schema.to_str().unwrap()], None);
    assert_clean_failure(&out, "uniqueItems");
    let out = pocketlm(&["generate", "--prompt", "hi", "--choice", "a", "--json-object"], None);
    assert!(!out.status.success() && stderr(&out).contains("cannot be used with"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn generate_with_tools_prints_the_calls() {
    let model = qwen();
    let dir = std::env::temp_dir().join(format!("pocketlm-cli-tools-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tools = dir.join("tools.json");
    std::fs::write(
        &tools,
        r#"[{"type": "function", "function": {"name": "set_timer", "description": "Start a countdown timer.",
            "parameters": {"type": "object", "properties": {"minutes": {"type": "integer", "minimum": 1, "maximum": 180}},
                           "required": ["minutes"], "additionalProperties": false}}}]"#,
    )
    .unwrap();
    let base = ["generate", "--model", model.to_str().unwrap(), "--temperature", "0", "--threads", "2", "--max-tokens", "60"];
    let mut args = base.to_vec();
    args.extend_from_slice(&[
        "--json",
        "--prompt",
        "Set a timer for 15 minutes.",
        "--tools",
        tools.to_str().unwrap(),
        "--tool-choice",
        "required",
    ]);
    let out = pocketlm(&args, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let call = &v["tool_calls"][0];
    assert_eq!(call["name"], "set_timer", "{v}");
    assert_eq!(call["arguments"]["minutes"], 15, "{v}");
    assert!(call["id"].as_str().is_some_and(|id| id.starts_with("call_")), "{v}");

    // A tool choice naming no declared tool fails before the model answers.
    let mut args = base.to_vec();
    args.extend_from_slice(&["--prompt", "hi", "--tools", tools.to_str().unwrap(), "--tool-choice", "launch_rocket"]);
    assert_clean_failure(&pocketlm(&args, None), "launch_rocket");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn generate_streams_plain_text() {
    let model = qwen();
    let out = pocketlm(
        &[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "What is the capital of France?",
            "--temperature",
            "0",
            "--max-tokens",
            "20",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Paris"));
    assert!(stderr(&out).contains("tok/s"), "metrics on stderr: {}", stderr(&out));
}

#[test]
fn info_json_describes_the_model() {
    let model = qwen();
    let out = pocketlm(&["info", model.to_str().unwrap(), "--json"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["architecture"], "qwen2");
    assert_eq!(v["quantization"], "Q4_K_M");
    assert_eq!(v["file_size_bytes"], 491_400_064u64);
    assert_eq!(v["context_length_trained"], 32768);
    assert_eq!(v["vocab_size"], 151_936);
    assert_eq!(v["has_chat_template"], true);
    assert!(v["parameter_count"].as_u64().unwrap() > 400_000_000);
    assert_eq!(v["backend"]["requested"], "auto");
    assert_eq!(v["backend"]["backend"], "cpu");
    assert!(v["backend"]["cpu"]["kernels"].as_array().unwrap().iter().any(|k| k == "avx2"), "{v}");
    // Asking for the GPU on this GPU-less build reports the CPU and why.
    let out = pocketlm(&["info", model.to_str().unwrap(), "--backend", "gpu", "--json"], None);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["backend"]["backend"], "cpu");
    assert!(v["backend"]["fallback_reason"].as_str().unwrap().contains("no GPU backend"), "{v}");
}

#[test]
fn piped_chat_answers_each_line_and_reuses_the_cache() {
    let model = qwen();
    let out = pocketlm(
        &["chat", "--model", model.to_str().unwrap(), "--temperature", "0", "--max-tokens", "24", "--json"],
        Some("What is the capital of France?\nAnd of Germany?\n/reset\nWhat is 2 + 2?\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let answers: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(answers.len(), 3, "one JSON object per answer");
    assert!(answers[0]["text"].as_str().unwrap().contains("Paris"));
    assert!(answers[1]["text"].as_str().unwrap().contains("Berlin"), "{}", answers[1]);
    assert!(answers[1]["metrics"]["prompt_tokens_reused"].as_u64().unwrap() > 20, "second turn reuses the cache");
    assert!(answers[2]["text"].as_str().unwrap().contains('4'));
    for a in &answers {
        assert_metrics(&a["metrics"]);
    }
}

#[test]
fn chat_with_a_session_file_continues_in_a_new_process_with_the_cache() {
    let model = qwen();
    let dir = std::env::temp_dir().join(format!("pocketlm-cli-session-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("chat.session");
    let _ = std::fs::remove_file(&file);
    let args = |ctx: &'static str| -> Vec<String> {
        let session = file.to_str().unwrap().to_string();
        let model = model.to_str().unwrap().to_string();
        ["chat", "--model", &model, "--temperature", "0", "--max-tokens", "24", "--ctx", ctx, "--json", "--session", &session]
            .map(str::to_string)
            .to_vec()
    };
    let run = |args: &[String], input: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = pocketlm(&args, Some(input));
        assert!(out.status.success(), "{}", stderr(&out));
        out
    };
    let answers = |out: &Output| -> Vec<Value> { stdout(out).lines().map(|l| serde_json::from_str(l).unwrap()).collect() };

    // A single process that sees both turns: the reference.
    let reference = pocketlm(
        &["chat", "--model", model.to_str().unwrap(), "--temperature", "0", "--max-tokens", "24", "--ctx", "1024", "--json"],
        Some("What is the capital of France?\nAnd of Germany?\n"),
    );
    let reference = answers(&reference);

    // The same two turns in two processes, through the session file.
    let first = run(&args("1024"), "What is the capital of France?\n");
    assert!(file.exists(), "saved after the answer");
    let second = run(&args("1024"), "And of Germany?\n");
    assert!(stderr(&second).contains("restored 2 messages and"), "{}", stderr(&second));
    let second = answers(&second);
    assert_eq!(answers(&first)[0]["text"], reference[0]["text"]);
    assert_eq!(second[0]["text"], reference[1]["text"], "the restored chat answers as the uninterrupted one");
    assert_eq!(second[0]["metrics"]["prompt_tokens_evaluated"], reference[1]["metrics"]["prompt_tokens_evaluated"]);
    assert!(second[0]["metrics"]["prompt_tokens_reused"].as_u64().unwrap() > 20);

    // Other settings: the transcript comes back, the cache does not, and it says why.
    let third = run(&args("2048"), "And of Italy?\n");
    let why = stderr(&third);
    assert!(why.contains("restored 4 messages") && why.contains("settings_mismatch"), "{why}");
    assert_eq!(answers(&third)[0]["metrics"]["prompt_tokens_reused"], 0);

    // A damaged file is a clean, typed failure, and the file is left for the user.
    std::fs::write(&file, b"PLMSESS\0garbage").unwrap();
    let out = pocketlm(&args("1024").iter().map(String::as_str).collect::<Vec<_>>(), Some("Hi\n"));
    assert_clean_failure(&out, "session file");
    assert_eq!(std::fs::read(&file).unwrap(), b"PLMSESS\0garbage");
}

#[test]
fn bench_json_reports_speeds_and_memory() {
    let model = qwen();
    let out = pocketlm(
        &[
            "bench",
            "--model",
            model.to_str().unwrap(),
            "--prompt-tokens",
            "32",
            "--gen-tokens",
            "8",
            "--runs",
            "1",
            "--threads",
            "2",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["prompt_tokens"], 32);
    assert_eq!(v["threads"], 2);
    assert!(v["prefill_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["peak_rss_bytes"].as_u64().unwrap() > 100 << 20);
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    assert_eq!(v["backend"], "cpu");
    assert!(!v["device"].as_str().unwrap().is_empty());
    assert!(v["cpu_kernels"].as_array().unwrap().iter().any(|k| k == "avx2"), "{v}");
}

fn assert_clean_failure(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "exit code 1, not a signal: {:?}", out.status);
    let err = stderr(out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "{err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
}

#[test]
fn bad_inputs_fail_cleanly() {
    let model = qwen();
    let m = model.to_str().unwrap();
    assert_clean_failure(&pocketlm(&["generate", "--model", "/no/such/model.gguf", "--prompt", "hi"], None), "not found");
    assert_clean_failure(&pocketlm(&["info", "/no/such/model.gguf"], None), "not found");
    let junk = std::env::temp_dir().join(format!("pocketlm-cli-junk-{}.gguf", std::process::id()));
    std::fs::write(&junk, b"definitely not a model").unwrap();
    let junk_run = pocketlm(&["generate", "--model", junk.to_str().unwrap(), "--prompt", "hi"], None);
    let _ = std::fs::remove_file(&junk);
    assert_clean_failure(&junk_run, "not a usable GGUF");
    assert_clean_failure(&pocketlm(&["generate", "--model", m, "--prompt", "hi", "--temperature", "-1"], None), "temperature");
    assert_clean_failure(&pocketlm(&["generate", "--model", m, "--prompt", "hi", "--top-p", "0"], None), "top_p");
    let long = "word ".repeat(300);
    assert_clean_failure(&pocketlm(&["generate", "--model", m, "--prompt", &long, "--ctx", "64"], None), "context");
}

#[test]
fn plan_json_and_budgeted_generation_stay_within_the_budget() {
    let model = qwen();
    let m = model.to_str().unwrap();
    let out = pocketlm(&["plan", m, "--budget", "700MiB", "--json"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(plan["fits"], true);
    let ctx = plan["ctx"].as_u64().unwrap();
    assert!((512..32768).contains(&ctx), "{plan}");
    assert!(plan["kv_type"].is_string() && plan["predicted_peak_bytes"].as_u64().unwrap() <= 700 << 20);

    // Loading with that budget generates, and the process stays under it.
    let out = pocketlm(
        &["generate", "--model", m, "--prompt", "What is the capital of France?", "--temperature", "0", "--budget", "700MiB", "--json"],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(v["text"].as_str().unwrap().contains("Paris"));
    assert!(v["metrics"]["peak_rss_bytes"].as_u64().unwrap() <= 700 << 20, "{v}");

    // A budget nothing fits in fails before loading, with the typed message.
    let out = pocketlm(&["generate", "--model", m, "--prompt", "hi", "--budget", "100MiB"], None);
    assert_clean_failure(&out, "budget is 100 MiB");
    let out = pocketlm(&["plan", m, "--budget", "100MiB", "--json"], None);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["fits"], false);
}

/// A sparse copy of the Qwen test model whose `qwen2.block_count` claims
/// 4,294,967,295 layers: the header is real, the weights read as zeros.
fn qwen_with_absurd_block_count() -> PathBuf {
    use std::io::Read;
    let source = qwen();
    let mut head = vec![0u8; 16 << 20];
    std::fs::File::open(&source).unwrap().read_exact(&mut head).unwrap();
    let key = b"qwen2.block_count";
    let at = head.windows(key.len()).position(|w| w == key).expect("the key is in the header") + key.len();
    assert_eq!(&head[at..at + 4], &4u32.to_le_bytes(), "stored as a u32");
    head[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let path = std::env::temp_dir().join(format!("pocketlm-cli-layers-{}.gguf", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    std::io::Write::write_all(&mut &file, &head).unwrap();
    file.set_len(std::fs::metadata(&source).unwrap().len()).unwrap();
    path
}

#[test]
fn an_absurd_layer_count_is_a_corrupt_file_not_an_abort() {
    let path = qwen_with_absurd_block_count();
    let m = path.to_str().unwrap();
    let plan = pocketlm(&["plan", m, "--budget", "4GiB"], None);
    let generate = pocketlm(&["generate", "--model", m, "--prompt", "hi", "--budget", "4GiB"], None);
    let _ = std::fs::remove_file(&path);
    assert_clean_failure(&plan, "block_count = 4294967295");
    assert_clean_failure(&generate, "corrupt");
}

#[test]
fn typed_control_tokens_are_plain_text_in_generate() {
    let model = qwen();
    let m = model.to_str().unwrap();
    let evaluated = |prompt: &str| {
        let out = pocketlm(&["generate", "--model", m, "--prompt", prompt, "--max-tokens", "1", "--temperature", "0", "--json"], None);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        v["metrics"]["prompt_tokens_evaluated"].as_u64().unwrap()
    };
    let markers = evaluated(&"<|im_start|>".repeat(8));
    let words = evaluated("word word word word word word word word");
    assert!(markers >= words + 8 * 3, "{markers} tokens for eight typed markers vs {words} for eight words");
}

/// Serves `body` at `/model.gguf` on loopback (HTTP/1.1, one request per connection, no ranges).
fn serve_file(body: Vec<u8>) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/model.gguf", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let mut out = stream;
            let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = out.write_all(&body);
        }
    });
    url
}

#[test]
fn pull_models_and_rm_manage_the_models_directory() {
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; // of nothing: a wrong hash
    let url = serve_file(body.clone());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();

    // Progress lines come first on stderr, then the error.
    let out = pocketlm(&["pull", &url, "--dir", d, "--sha256", sha], None);
    assert_eq!(out.status.code(), Some(1), "{:?}", out.status);
    let err = stderr(&out);
    assert!(err.lines().any(|l| l.starts_with("error: ") && l.contains("not the expected file")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let out = pocketlm(&["models", "--dir", d, "--json"], None);
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed["models"].as_array().map(Vec::len), Some(0), "a wrong file is never listed: {listed}");

    let out = pocketlm(&["pull", &url, "--dir", d], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = PathBuf::from(stdout(&out).trim());
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert!(stderr(&out).contains("done"), "plain progress lines when not on a terminal: {}", stderr(&out));
    let listed: Value = serde_json::from_str(&stdout(&pocketlm(&["models", "--dir", d, "--json"], None))).unwrap();
    let model = &listed["models"][0];
    assert_eq!((model["file_name"].as_str(), model["size"].as_u64()), (Some("model.gguf"), Some(body.len() as u64)));
    assert_eq!(model["sha256"].as_str().map(str::len), Some(64));

    assert!(pocketlm(&["rm", "model.gguf", "--dir", d], None).status.success());
    assert!(!path.exists());
    assert_clean_failure(&pocketlm(&["rm", "model.gguf", "--dir", d], None), "not found");
    assert_clean_failure(&pocketlm(&["pull", "ftp://example.com/x.gguf", "--dir", d], None), "http(s) URL");
}

#[test]
fn catalog_recommends_for_a_budget_and_pull_takes_a_catalog_id() {
    let out = pocketlm(&["catalog", "--budget", "2GiB", "--ctx", "4096"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let row = |id: &str| table.lines().find(|l| l.starts_with(id)).unwrap_or_else(|| panic!("{id} missing: {table}")).to_string();
    assert!(row("llama-3.2-1b-instruct-q4_k_m").split_whitespace().nth(1) == Some("yes"), "{table}");
    assert!(row("gemma-3-4b-it-q4_k_m").contains(" no ") && row("gemma-3-4b-it-q4_k_m").contains("MiB"), "{table}");

    // An app's own catalog: an entry served on loopback, with its size and hash.
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let sha: String = Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
    let url = serve_file(body.clone());
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    let entry = serde_json::json!({
        "id": "my-model", "name": "My model", "quantization": "Q4_K_M", "license": "MIT",
        "file": { "url": url, "file_name": "my-model.gguf", "size": body.len(), "sha256": sha },
        "shape": { "architecture": "qwen2", "layers": 24, "embedding": 896, "heads": 14, "kv_heads": 2, "head_dim": 64,
                   "feed_forward": 4864, "vocab": 151936, "context_length": 32768, "tied_embeddings": false },
        "sources": ["test"]
    });
    std::fs::write(&catalog, serde_json::json!({ "version": 1, "models": [entry] }).to_string()).unwrap();
    let c = catalog.to_str().unwrap();
    let out = pocketlm(&["catalog", "--catalog", c, "--budget", "1GiB", "--json"], None);
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed["models"][0]["recommendation"]["id"], "my-model", "{listed}");
    assert_eq!(listed["models"][0]["recommendation"]["fits"], true, "{listed}");
    assert_eq!(listed["models"][0]["entry"]["file"]["sha256"], sha.as_str());

    let d = dir.path().join("models");
    let out = pocketlm(&["pull", "my-model", "--catalog", c, "--dir", d.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(stdout(&out).trim()).unwrap(), body);
    assert_clean_failure(&pocketlm(&["pull", "my-model", "--projector", "--catalog", c], None), "vision projector");
    std::fs::write(&catalog, r#"{"version": 1, "models": [{"id": "Bad"}]}"#).unwrap();
    assert_clean_failure(&pocketlm(&["catalog", "--catalog", c], None), "missing field");
    assert_clean_failure(&pocketlm(&["pull", "qwen3-4b-q4_k_m", "--sha256", &sha], None), "brings its own name and hash");
}
