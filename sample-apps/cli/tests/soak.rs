//! `pocketlm serve` under load: a real server process on loopback (Gemma 3
//! 270M), several concurrent clients sending a shuffled mix of valid
//! requests (streamed and not), clients that hang up mid-stream, mid-answer
//! or mid-body, and malformed requests (bad JSON, wrong types, bad roles,
//! binary, deep nesting, bodies over the 1 MiB limit).
//!
//! Every valid request must get the complete greedy answer it gets alone
//! (same text, a finish reason, usage); every malformed one a 4xx JSON error.
//! After each round the server still answers and is idle (hung-up
//! generations were cancelled); its RSS stays near its warmed-up baseline
//! and stops growing after the first round; its log has no panic.
//! Bounded: two rounds of `SOAK_CLIENTS` x `SOAK_REQUESTS` (4 x 8 by
//! default), short answers, loopback only; the server is killed on drop.
//! Run with `--nocapture` to see the figures; `SOAK_SEED` replays an order.

mod common;

use common::fetch;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Requests generating at once in the server.
const PARALLEL: usize = 2;
/// Tokens per valid answer (short: the point is the load, not the text).
const MAX_TOKENS: u32 = 8;
/// Tokens asked for by the requests whose client hangs up: long enough that
/// a generation nobody cancelled would still be running after the load.
const LONG_TOKENS: u32 = 1000;
/// The server's body limit (serve::MAX_BODY_BYTES).
const BODY_LIMIT: usize = 1 << 20;
/// Rounds of the whole load: the first reaches the working set the allocator
/// keeps (PARALLEL contexts under concurrent clients), later ones must not grow it.
const ROUNDS: usize = 2;
/// RSS growth allowed over the warmed-up baseline: what the allocator keeps
/// after a round measured +40 to +90 MiB with Gemma 3 270M (flat afterwards).
const RSS_SLACK_KB: u64 = 128 << 10;
/// RSS growth allowed from the end of the first round to the end of the last
/// (the kept working set varies by about 20 MiB from run to run).
const RSS_LEAK_KB: u64 = 48 << 10;
/// Longest wait for any one response.
const IO_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `pocketlm serve` with its stderr in a file; killed on drop.
struct Server {
    child: Child,
    addr: String,
    log: PathBuf,
    // Kept open: the server's stdout stays a live pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start() -> Server {
        let model = fetch("gemma3-270m");
        let log = std::env::temp_dir().join(format!("pocketlm-soak-{}.log", std::process::id()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_pocketlm"))
            .args(["serve", "--model", model.to_str().unwrap(), "--port", "0", "--ctx", "1024", "--threads", "1"])
            .args(["--parallel", &PARALLEL.to_string()])
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let base = line.split_whitespace().find(|w| w.starts_with("http://")).expect("serve prints its URL");
        let addr = base.trim_start_matches("http://").trim_end_matches("/v1").to_string();
        Server { child, addr, log, _stdout: stdout }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Resident set size, from /proc/<pid>/status, in KiB.
    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/<pid>/status");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// User + system CPU time so far, in seconds (clock ticks at Linux's USER_HZ of 100).
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / 100.0
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        } else {
            eprintln!("server log kept at {}", self.log.display());
        }
    }
}

/// A small deterministic generator (xorshift64*), so a seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// The conversations of the valid requests.
fn prompts() -> Vec<Value> {
    vec![
        json!([{ "role": "user", "content": "Name a colour." }]),
        json!([{ "role": "system", "content": "Answer briefly." }, { "role": "user", "content": "Count to three." }]),
        json!([
            { "role": "user", "content": "What is 2 + 2?" },
            { "role": "assistant", "content": "4" },
            { "role": "user", "content": [{ "type": "text", "text": "And 3 + 3?" }] }
        ]),
    ]
}

/// Malformed requests: (what, body, expected status). Bodies over the limit are built apart.
fn malformed() -> Vec<(&'static str, Vec<u8>, u16)> {
    let deep = format!(r#"{{"messages":[{{"role":"user","content":{}{}}}]}}"#, "[".repeat(20_000), "]".repeat(20_000));
    vec![
        ("bad JSON", b"{not json".to_vec(), 400),
        ("messages of the wrong type", br#"{"messages":"hi"}"#.to_vec(), 400),
        ("max_tokens of the wrong type", br#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":"ten"}"#.to_vec(), 400),
        ("an unknown role", br#"{"messages":[{"role":"wizard","content":"hi"}]}"#.to_vec(), 400),
        ("no messages", br#"{"messages":[]}"#.to_vec(), 400),
        ("a negative temperature", br#"{"messages":[{"role":"user","content":"hi"}],"temperature":-1}"#.to_vec(), 400),
        ("binary", vec![0xff, 0xfe, 0x00, 0x01, 0x80, b'{'], 400),
        ("an image part", br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#.to_vec(), 400),
        ("20000-deep nesting", deep.into_bytes(), 400),
        ("broken chunked framing", b"zz\r\n{}\r\n0\r\n\r\n".to_vec(), 400),
        ("2 MiB, declared", Vec::new(), 413),
        ("2 MiB, chunked", Vec::new(), 413),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Valid {
        prompt: usize,
        stream: bool,
    },
    /// A streamed request whose client hangs up after a few deltas.
    DropMidStream,
    /// A non-streamed request whose client hangs up while it generates.
    DropMidAnswer,
    /// A client that hangs up halfway through sending its body.
    DropMidBody,
    Malformed(usize),
}

struct Response {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

fn chat_body(messages: &Value, stream: bool, max_tokens: u32) -> Vec<u8> {
    let body = json!({
        "model": "gemma", "messages": messages, "max_tokens": max_tokens, "temperature": 0,
        "stream": stream, "stream_options": { "include_usage": true },
    });
    serde_json::to_vec(&body).unwrap()
}

fn head(method: &str, path: &str, length: Option<usize>) -> String {
    let length = length.map_or_else(|| "Transfer-Encoding: chunked\r\n".to_string(), |n| format!("Content-Length: {n}\r\n"));
    format!("{method} {path} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\nContent-Type: application/json\r\n{length}\r\n")
}

/// Reads a whole response (the server closes after it); a reset after the
/// response arrived is not an error here.
fn read_response(mut s: TcpStream) -> Response {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no response: {:?}", String::from_utf8_lossy(&raw)));
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    if headers.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Response { status, headers, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..end]).ok().and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok());
        raw = &raw[end + 2..];
        let Some(size) = size.filter(|&n| n > 0) else {
            break;
        };
        out.extend_from_slice(&raw[..size.min(raw.len())]);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
    out
}

fn request(server: &Server, method: &str, path: &str, body: &[u8]) -> Response {
    let mut s = server.connect();
    s.write_all(head(method, path, Some(body.len())).as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(s)
}

/// An answer: the text, the finish reason and the completion tokens.
fn answer(r: &Response, stream: bool) -> (String, String, u64) {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 200, "{body}");
    if !stream {
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let choice = &v["choices"][0];
        return (
            choice["message"]["content"].as_str().unwrap_or_else(|| panic!("no content: {v}")).to_string(),
            choice["finish_reason"].as_str().unwrap_or_default().to_string(),
            v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        );
    }
    assert!(r.headers.to_ascii_lowercase().contains("text/event-stream"), "{}", r.headers);
    let data: Vec<&str> = body.split("\n\n").filter_map(|e| e.trim().strip_prefix("data:")).map(str::trim).collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "the stream ends with [DONE]: {body}");
    let (mut text, mut finish, mut tokens) = (String::new(), String::new(), 0);
    for event in &data[..data.len() - 1] {
        let v: Value = serde_json::from_str(event).unwrap_or_else(|e| panic!("{e}: {event}"));
        assert!(v.get("error").is_none(), "an error in the stream: {v}");
        if let Some(choice) = v["choices"].get(0) {
            text.push_str(choice["delta"]["content"].as_str().unwrap_or_default());
            if let Some(reason) = choice["finish_reason"].as_str() {
                finish = reason.to_string();
            }
        }
        if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
            tokens = n;
        }
    }
    (text, finish, tokens)
}

/// Checks a complete answer against the one the prompt got alone.
fn check_answer(r: &Response, stream: bool, expected: &str, what: &str) {
    let (text, finish, tokens) = answer(r, stream);
    assert!(!text.is_empty(), "{what}: an empty answer");
    assert!(finish == "stop" || finish == "length", "{what}: finish_reason {finish:?}");
    assert!(tokens > 0, "{what}: no usage");
    assert_eq!(text, expected, "{what}: not the answer it gets alone");
}

fn check_error(r: &Response, status: u16, what: &str) {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, status, "{what}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"));
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {v}");
}

/// A body over the limit, sent whole (declared, or chunked without a length)
/// while the response is read; the server answers 413 and stops reading.
fn oversized(server: &Server, chunked: bool) -> Response {
    let s = server.connect();
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let total = 2 * BODY_LIMIT;
        let piece = vec![b' '; 64 << 10];
        if w.write_all(head("POST", "/v1/chat/completions", (!chunked).then_some(total)).as_bytes()).is_err() {
            return;
        }
        for _ in 0..total / piece.len() {
            let ok = if chunked {
                w.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .and_then(|_| w.write_all(&piece))
                    .and_then(|_| w.write_all(b"\r\n"))
            } else {
                w.write_all(&piece)
            };
            if ok.is_err() {
                return;
            }
        }
        if chunked {
            let _ = w.write_all(b"0\r\n\r\n");
        }
    });
    let response = read_response(s);
    writer.join().unwrap();
    response
}

#[derive(Default)]
struct Tally {
    valid: AtomicUsize,
    streamed: AtomicUsize,
    disconnects: AtomicUsize,
    malformed: AtomicUsize,
}

fn run(server: &Server, kind: Kind, rng: &mut Rng, expected: &[String], tally: &Tally) {
    let prompts = prompts();
    match kind {
        Kind::Valid { prompt, stream } => {
            let r = request(server, "POST", "/v1/chat/completions", &chat_body(&prompts[prompt], stream, MAX_TOKENS));
            check_answer(&r, stream, &expected[prompt], &format!("prompt {prompt}, stream {stream}"));
            tally.valid.fetch_add(1, Ordering::Relaxed);
            if stream {
                tally.streamed.fetch_add(1, Ordering::Relaxed);
            }
        }
        Kind::DropMidStream => {
            let body = chat_body(&prompts[rng.below(prompts.len())], true, LONG_TOKENS);
            let mut s = server.connect();
            s.write_all(head("POST", "/v1/chat/completions", Some(body.len())).as_bytes()).unwrap();
            s.write_all(&body).unwrap();
            // Wait for 1 to 3 text deltas (the first event is the empty role delta).
            let wanted = 1 + rng.below(3);
            let (mut raw, mut buf) = (Vec::new(), [0u8; 4096]);
            while count(&raw, br#""delta":{"content":""#) - count(&raw, br#""delta":{"content":"""#) < wanted {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "the stream ended early: {}", String::from_utf8_lossy(&raw));
                raw.extend_from_slice(&buf[..n]);
            }
            assert!(raw.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&raw));
            let _ = s.shutdown(Shutdown::Both);
            tally.disconnects.fetch_add(1, Ordering::Relaxed);
        }
        Kind::DropMidAnswer => {
            let body = chat_body(&prompts[rng.below(prompts.len())], false, LONG_TOKENS);
            let mut s = server.connect();
            s.write_all(head("POST", "/v1/chat/completions", Some(body.len())).as_bytes()).unwrap();
            s.write_all(&body).unwrap();
            thread::sleep(Duration::from_millis(100 + rng.below(500) as u64));
            let _ = s.shutdown(Shutdown::Both);
            tally.disconnects.fetch_add(1, Ordering::Relaxed);
        }
        Kind::DropMidBody => {
            let body = chat_body(&prompts[0], false, MAX_TOKENS);
            let mut s = server.connect();
            s.write_all(head("POST", "/v1/chat/completions", Some(body.len())).as_bytes()).unwrap();
            s.write_all(&body[..body.len() / 2]).unwrap();
            thread::sleep(Duration::from_millis(rng.below(200) as u64));
            let _ = s.shutdown(Shutdown::Both);
            tally.disconnects.fetch_add(1, Ordering::Relaxed);
        }
        Kind::Malformed(i) => {
            let (what, body, status) = &malformed()[i];
            let r = match *what {
                "2 MiB, declared" => oversized(server, false),
                "2 MiB, chunked" => oversized(server, true),
                "broken chunked framing" => {
                    let mut s = server.connect();
                    s.write_all(head("POST", "/v1/chat/completions", None).as_bytes()).unwrap();
                    s.write_all(body).unwrap();
                    read_response(s)
                }
                _ => request(server, "POST", "/v1/chat/completions", body),
            };
            check_error(&r, *status, what);
            tally.malformed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// PARALLEL valid requests at once (streamed and not), each checked.
fn parallel_requests(server: &Server, prompts: &[Value], expected: &[String]) {
    thread::scope(|scope| {
        for i in 0..PARALLEL {
            scope.spawn(move || {
                let (prompt, stream) = (i % prompts.len(), i % 2 == 1);
                let r = request(server, "POST", "/v1/chat/completions", &chat_body(&prompts[prompt], stream, MAX_TOKENS));
                check_answer(&r, stream, &expected[prompt], &format!("{PARALLEL} at once, prompt {prompt}"));
            });
        }
    });
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn serve_stays_correct_bounded_and_idle_under_concurrent_load_with_disconnects_and_garbage() {
    let clients = env_usize("SOAK_CLIENTS", 4).max(1);
    let per_client = env_usize("SOAK_REQUESTS", 8).max(1);
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64)
        .max(1);
    let mut server = Server::start();

    // Warm up: each prompt's answer alone (greedy, so the reference), which
    // also touches the weights and makes a context once.
    let prompts = prompts();
    let expected: Vec<String> = prompts
        .iter()
        .map(|p| answer(&request(&server, "POST", "/v1/chat/completions", &chat_body(p, false, MAX_TOKENS)), false).0)
        .collect();
    for (i, e) in expected.iter().enumerate() {
        assert!(!e.is_empty(), "prompt {i} has an empty answer alone");
    }
    // Then PARALLEL at once, twice: the baseline is the working set of
    // PARALLEL contexts, which the allocator keeps once it has held it (the
    // RSS stays flat at that level over hundreds of requests; it is not a leak).
    for _ in 0..2 {
        parallel_requests(&server, &prompts, &expected);
    }
    thread::sleep(Duration::from_millis(500));
    let rss_before = server.rss_kb();

    // The plan: every malformed kind, two of each disconnect, the rest valid; shuffled.
    let mut plan: Vec<Kind> = (0..malformed().len()).map(Kind::Malformed).collect();
    plan.extend([Kind::DropMidStream, Kind::DropMidAnswer, Kind::DropMidBody].repeat(2));
    let total = (clients * per_client).max(plan.len() + 4);
    let mut i = 0;
    while plan.len() < total {
        plan.push(Kind::Valid { prompt: i % prompts.len(), stream: i % 2 == 0 });
        i += 1;
    }
    let per_client = total.div_ceil(clients);
    println!("soak: seed {seed}, {ROUNDS} rounds of {clients} clients x {per_client} requests ({total} a round), parallel {PARALLEL}");

    let tally = Tally::default();
    let mut rng = Rng(seed);
    let mut rss = vec![rss_before];
    let (mut load, mut busy) = (Duration::ZERO, 0.0f64);
    let started = Instant::now();
    for round in 0..ROUNDS {
        rng.shuffle(&mut plan);
        let failures = Mutex::new(Vec::new());
        let round_started = Instant::now();
        thread::scope(|scope| {
            for (c, part) in plan.chunks(per_client).enumerate() {
                let (server, expected, tally, failures) = (&server, &expected, &tally, &failures);
                let mut rng = Rng(rng.next().max(1));
                scope.spawn(move || {
                    for &kind in part {
                        let result =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(server, kind, &mut rng, expected, tally)));
                        if let Err(e) = result {
                            let message = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                            failures.lock().unwrap().push(format!("round {round}, client {c}, {kind:?}: {}", message.unwrap_or_default()));
                        }
                    }
                });
            }
        });
        load += round_started.elapsed();
        let failures = failures.into_inner().unwrap();
        assert!(failures.is_empty(), "{} failed requests:\n{}", failures.len(), failures.join("\n"));
        assert!(server.alive(), "the server died: {}", server.log_text());

        // Idle: every hung-up generation (up to LONG_TOKENS each) was cancelled.
        thread::sleep(Duration::from_millis(1000));
        let cpu = server.cpu_seconds();
        thread::sleep(Duration::from_millis(2000));
        busy = busy.max(server.cpu_seconds() - cpu);

        // Still answering, the same answers, PARALLEL at once.
        parallel_requests(&server, &prompts, &expected);
        assert_eq!(request(&server, "GET", "/v1/models", b"").status, 200);
        thread::sleep(Duration::from_millis(500));
        rss.push(server.rss_kb());
    }
    let duration = started.elapsed();
    let log = server.log_text();

    let n = |a: &AtomicUsize| a.load(Ordering::Relaxed);
    let mib = |kb: u64| kb as f64 / 1024.0;
    println!(
        "soak: {} requests in {:.1} s of load: {} valid answers ({} streamed), {} client disconnects, {} malformed -> 4xx",
        total * ROUNDS,
        load.as_secs_f64(),
        n(&tally.valid),
        n(&tally.streamed),
        n(&tally.disconnects),
        n(&tally.malformed)
    );
    let after: Vec<String> = rss[1..].iter().map(|&kb| format!("{:.1} MiB ({:+.1})", mib(kb), mib(kb) - mib(rss_before))).collect();
    println!("soak: RSS {:.1} MiB warmed up; after each round {}", mib(rss_before), after.join(", "));
    println!("soak: CPU at most {busy:.2} s in 2 s once idle; total {:.1} s", duration.as_secs_f64());
    println!("soak: server log {} lines, {} bytes", log.lines().count(), log.len());
    for line in log.lines().take(20) {
        println!("soak: server log: {line}");
    }

    assert_eq!(n(&tally.valid) + n(&tally.disconnects) + n(&tally.malformed), total * ROUNDS);
    assert!(busy < 0.5, "the server kept working after the load ({busy:.2} s of CPU in 2 s): a hung-up generation was not cancelled");
    let last = *rss.last().unwrap();
    assert!(last <= rss_before + RSS_SLACK_KB, "RSS grew from {rss_before} KiB to {last} KiB");
    // The allocator keeps the first round's peak; a leak keeps growing after it.
    assert!(last <= rss[1] + RSS_LEAK_KB, "RSS kept growing after the first round: {rss:?} KiB");
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    assert!(duration < Duration::from_secs(300), "the soak took {duration:?}");
}
