//! A file server on loopback for the downloader's tests: real sockets, real
//! HTTP/1.1 with `Range` and `If-Range`, redirects, and faults on purpose.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the server does with one request for the file.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Serve it properly.
    None,
    /// Close the connection after this many body bytes.
    DropAfter(u64),
    /// Send this many body bytes, then go silent for a while.
    StallAfter(u64),
    /// Answer with this status and headers, no body.
    Status(u16, Vec<(&'static str, String)>),
    /// Ignore `Range`: answer 200 with the whole file.
    IgnoreRange,
    /// Serve the file with one byte changed.
    WrongBytes,
    /// Serve slowly (sleep this many ms per 64 KiB).
    Slow(u64),
    /// Send no `Content-Length` (and `*` as a range's total): the size is
    /// unknown until the connection closes.
    NoLength,
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub authorization: Option<String>,
}

struct State {
    content: Arc<Vec<u8>>,
    etag: String,
}

/// The server: `/file` is the file; `/redirect/N` redirects N times before it
/// (the last hop to `http://localhost:PORT/file`, another host name); each
/// request for the file plays the next fault of the script (then `None`).
pub struct FileServer {
    pub base: String,
    pub port: u16,
    pub seen: Arc<Mutex<Vec<SeenRequest>>>,
    state: Arc<Mutex<State>>,
}

impl FileServer {
    pub fn start(content: Vec<u8>, script: Vec<Fault>) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<SeenRequest>>> = Arc::default();
        let state = Arc::new(Mutex::new(State { content: Arc::new(content), etag: "\"v1\"".into() }));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let server = FileServer { base: format!("http://127.0.0.1:{port}"), port, seen: Arc::clone(&seen), state: Arc::clone(&state) };
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (seen, state, script) = (Arc::clone(&seen), Arc::clone(&state), Arc::clone(&script));
                thread::spawn(move || serve(stream, port, &seen, &state, &script));
            }
        });
        server
    }

    /// The file's URL.
    pub fn url(&self) -> String {
        format!("{}/file", self.base)
    }

    /// Replaces the file (a new version with a new ETag).
    pub fn replace(&self, content: Vec<u8>, etag: &str) {
        let mut state = self.state.lock().unwrap();
        state.content = Arc::new(content);
        state.etag = etag.to_string();
    }

    /// Requests for the file so far.
    pub fn file_requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().iter().filter(|r| r.path == "/file").cloned().collect()
    }
}

fn serve(stream: TcpStream, port: u16, seen: &Mutex<Vec<SeenRequest>>, state: &Mutex<State>, script: &Mutex<std::vec::IntoIter<Fault>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    // One request per connection (the client may reuse it: answer `Connection: close`).
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (mut range, mut if_range, mut authorization) = (None, None, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((&header, ""));
        let value = Some(value.trim().to_string());
        match name.to_ascii_lowercase().as_str() {
            "range" => range = value,
            "if-range" => if_range = value,
            "authorization" => authorization = value,
            _ => {}
        }
    }
    seen.lock().unwrap().push(SeenRequest { path: path.clone(), range: range.clone(), if_range: if_range.clone(), authorization });
    if let Some(n) = path.strip_prefix("/redirect/").and_then(|n| n.parse::<u32>().ok()) {
        let next = if n <= 1 { format!("http://localhost:{port}/file") } else { format!("/redirect/{}", n - 1) };
        let _ = write!(out, "HTTP/1.1 302 Found\r\nLocation: {next}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    if path != "/file" {
        let _ = write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let fault = script.lock().unwrap().next().unwrap_or(Fault::None);
    let (content, etag) = {
        let s = state.lock().unwrap();
        (Arc::clone(&s.content), s.etag.clone())
    };
    let len = content.len() as u64;
    if let Fault::Status(code, headers) = &fault {
        let mut head = format!("HTTP/1.1 {code} Status\r\nContent-Length: 0\r\nConnection: close\r\n");
        for (k, v) in headers {
            head += &format!("{k}: {v}\r\n");
        }
        let _ = write!(out, "{head}\r\n");
        return;
    }
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|_| if_range.as_deref().is_none_or(|v| v == etag) && !matches!(fault, Fault::IgnoreRange));
    let no_length = matches!(fault, Fault::NoLength);
    let length = |n: u64| if no_length { String::new() } else { format!("Content-Length: {n}\r\n") };
    let from = match start {
        Some(s) if s >= len => {
            let _ = write!(
                out,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
        Some(s) => {
            let total = if no_length { "*".to_string() } else { len.to_string() };
            let _ = write!(
                out,
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{total}\r\n{}ETag: {etag}\r\nConnection: close\r\n\r\n",
                len - 1,
                length(len - s)
            );
            s
        }
        None => {
            let _ = write!(out, "HTTP/1.1 200 OK\r\n{}ETag: {etag}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n", length(len));
            0
        }
    };
    let mut body = content[from as usize..].to_vec();
    if matches!(fault, Fault::WrongBytes) && !body.is_empty() {
        let mid = body.len() / 2;
        body[mid] ^= 0xff;
    }
    let limit = match fault {
        Fault::DropAfter(n) | Fault::StallAfter(n) => (n as usize).min(body.len()),
        _ => body.len(),
    };
    for chunk in body[..limit].chunks(64 << 10) {
        if out.write_all(chunk).is_err() {
            return;
        }
        if let Fault::Slow(ms) = fault {
            thread::sleep(Duration::from_millis(ms));
        }
    }
    let _ = out.flush();
    if let Fault::StallAfter(_) = fault {
        // Silent until the client gives up (it closes the socket).
        let _ = out.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = reader.read(&mut [0u8; 1]);
    }
}
