//! A scripted HTTP server on loopback for the cloud client's fault tests:
//! real sockets, real HTTP/1.1, misbehaving on purpose.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Read the request and never answer (until the client gives up).
    Hang,
    /// Answer with this status, extra headers and body.
    Status(u16, Vec<(&'static str, String)>, String),
    /// Answer 200 as an event stream: each event's data after its delay (ms),
    /// then close. `done` appends `data: [DONE]`.
    Stream { events: Vec<(u64, String)>, done: bool },
    /// Send these raw bytes as an event stream, then close.
    Raw(String),
    /// Answer with this status and content type, then `prefix`, then `chunk`
    /// over and over until the client hangs up (a body without end; the
    /// server gives up by itself after [`ENDLESS_LIMIT`] bytes).
    Endless { status: u16, content_type: &'static str, prefix: String, chunk: String },
}

/// Most bytes an [`Behaviour::Endless`] body sends before the server stops.
pub const ENDLESS_LIMIT: u64 = 512 << 20;

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub headers: String,
    pub body: String,
    /// Whether the client closed the connection before the response ended.
    pub client_closed: bool,
    /// Body bytes written before the response ended (for `Endless`).
    pub sent: u64,
}

/// The server: plays `script` in order, one behaviour per request (the last repeats).
pub struct FaultServer {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl FaultServer {
    pub fn start(script: Vec<Behaviour>) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for (i, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let behaviour = script.get(i).or(script.last()).cloned().unwrap();
                let log = Arc::clone(&log);
                thread::spawn(move || serve_one(stream, behaviour, &log));
            }
        });
        FaultServer { url, seen }
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// A URL on which nothing listens (connections are refused).
    pub fn refused_url() -> String {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("http://127.0.0.1:{port}/v1")
    }
}

/// An OpenAI-style streamed answer of `parts`, with usage.
pub fn ok_stream(parts: &[&str]) -> Behaviour {
    let mut events = vec![(0, r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#.to_string())];
    for p in parts {
        events.push((0, serde_json::json!({"choices":[{"index":0,"delta":{"content":p},"finish_reason":null}]}).to_string()));
    }
    events.push((0, r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#.to_string()));
    events.push((0, r#"{"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":7,"total_tokens":49}}"#.to_string()));
    Behaviour::Stream { events, done: true }
}

fn serve_one(stream: TcpStream, behaviour: Behaviour, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut headers = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        headers.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let index = {
        let mut log = log.lock().unwrap();
        log.push(Seen { headers, body: String::from_utf8_lossy(&body).into_owned(), client_closed: false, sent: 0 });
        log.len() - 1
    };
    let mut out = stream;
    let mut sent = 0u64;
    let closed = match behaviour {
        Behaviour::Hang => {
            // Wait until the client hangs up (a read returns 0 or fails).
            let mut buf = [0u8; 1];
            let _ = out.set_read_timeout(Some(Duration::from_secs(30)));
            let _ = reader.read(&mut buf);
            true
        }
        Behaviour::Status(code, extra, body) => {
            let mut head = format!(
                "HTTP/1.1 {code} Status\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in extra {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            out.write_all(head.as_bytes()).and_then(|_| out.write_all(body.as_bytes())).is_err()
        }
        Behaviour::Stream { events, done } => {
            let mut failed = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n").is_err();
            for (delay, data) in events {
                if failed {
                    break;
                }
                thread::sleep(Duration::from_millis(delay));
                failed = out.write_all(format!("data: {data}\n\n").as_bytes()).and_then(|_| out.flush()).is_err();
            }
            if done && !failed {
                failed = out.write_all(b"data: [DONE]\n\n").is_err();
            }
            failed
        }
        Behaviour::Raw(bytes) => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
            out.write_all(head.as_bytes()).and_then(|_| out.write_all(bytes.as_bytes())).is_err()
        }
        Behaviour::Endless { status, content_type, prefix, chunk } => {
            let head = format!("HTTP/1.1 {status} Status\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n");
            let mut failed = out.write_all(head.as_bytes()).and_then(|_| out.write_all(prefix.as_bytes())).is_err();
            while !failed && sent < ENDLESS_LIMIT {
                failed = out.write_all(chunk.as_bytes()).is_err();
                if !failed {
                    sent += chunk.len() as u64;
                }
            }
            failed
        }
    };
    let mut log = log.lock().unwrap();
    log[index].client_closed = closed;
    log[index].sent = sent;
}
