//! The downloader against a real HTTP server on loopback with `Range`
//! support, serving real bytes (and once a real model file), with faults on
//! purpose: dropped and stalled connections, 5xx, 429, 401, 404, a 200 to a
//! range request, a file that changed, a 416 on a complete part, wrong bytes,
//! redirects, no space, pause, cancel and resume. Each ends in the right
//! outcome with nothing corrupt left looking valid, within short timeouts.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::files::{Fault, FileServer};
use pocketlm::{DownloadControl, DownloadErrorKind, DownloadOptions, DownloadProgress, DownloadRequest, DownloadState, Downloader, Error};
use sha2::{Digest, Sha256};

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn options() -> DownloadOptions {
    DownloadOptions {
        read_timeout_ms: 500,
        connect_timeout_ms: 500,
        retry_backoff_ms: 10,
        max_retries: 3,
        progress_interval_ms: 10,
        ..Default::default()
    }
}

fn downloader(options: DownloadOptions) -> (tempfile::TempDir, Downloader) {
    let dir = tempfile::tempdir().unwrap();
    let d = Downloader::new(dir.path(), options).unwrap();
    (dir, d)
}

fn request(url: &str, bytes: &[u8]) -> DownloadRequest {
    DownloadRequest { sha256: Some(sha(bytes)), ..DownloadRequest::new(url, "model.gguf") }
}

/// Runs a download, collecting its progress reports.
fn run(d: &Downloader, r: &DownloadRequest, control: &DownloadControl) -> (Result<pocketlm::InstalledModel, Error>, Vec<DownloadProgress>) {
    let mut reports = Vec::new();
    let result = d.download(r, control, &mut |p| reports.push(*p));
    (result, reports)
}

fn kind(result: &Result<pocketlm::InstalledModel, Error>) -> DownloadErrorKind {
    match result {
        Err(Error::Download { kind, .. }) => *kind,
        other => panic!("expected a download error, got {other:?}"),
    }
}

fn assert_installed(d: &Downloader, bytes: &[u8]) {
    let installed = d.store().installed().unwrap();
    assert_eq!(installed.len(), 1, "{installed:?}");
    assert_eq!(std::fs::read(&installed[0].path).unwrap(), bytes, "the installed file is the served one");
    assert_eq!(installed[0].sha256.as_deref(), Some(sha(bytes).as_str()));
    let leftovers: Vec<String> = std::fs::read_dir(d.store().dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".part") || n.ends_with(".part.json"))
        .collect();
    assert!(leftovers.is_empty(), "no part left beside it: {leftovers:?}");
}

#[test]
fn a_file_downloads_with_progress_and_a_second_call_finds_it_installed() {
    let bytes = content(3 << 20, 1);
    let server = FileServer::start(bytes.clone(), vec![Fault::Slow(2)]);
    let (_dir, d) = downloader(options());
    let (result, reports) = run(&d, &request(&server.url(), &bytes), &DownloadControl::new());
    let model = result.unwrap();
    assert_eq!((model.size, model.sha256.clone()), (bytes.len() as u64, Some(sha(&bytes))));
    assert_installed(&d, &bytes);
    let states: Vec<DownloadState> = reports.iter().map(|p| p.state).collect();
    assert_eq!(states.first(), Some(&DownloadState::Queued));
    assert_eq!(&states[states.len() - 2..], [DownloadState::Verifying, DownloadState::Done]);
    assert!(reports.windows(2).all(|w| w[0].downloaded <= w[1].downloaded), "bytes never go back");
    let moving: Vec<_> = reports.iter().filter(|p| p.state == DownloadState::Downloading && p.downloaded > 0).collect();
    assert!(!moving.is_empty() && moving.iter().all(|p| p.total == Some(bytes.len() as u64)), "{moving:?}");
    assert!(moving.iter().any(|p| p.bytes_per_second > 0.0 && p.eta_seconds.is_some()), "speed and time left: {moving:?}");

    let (again, reports) = run(&d, &request(&server.url(), &bytes), &DownloadControl::new());
    assert_eq!(again.unwrap(), model);
    assert_eq!(reports.iter().map(|p| p.state).collect::<Vec<_>>(), [DownloadState::Done]);
    assert_eq!(server.file_requests().len(), 1, "an installed file is not fetched again");
}

#[test]
fn dropped_connections_resume_from_the_right_byte() {
    let bytes = content(2 << 20, 2);
    let server = FileServer::start(bytes.clone(), vec![Fault::DropAfter(0), Fault::DropAfter(100_000), Fault::DropAfter(1_000_000)]);
    let (_dir, d) = downloader(options());
    run(&d, &request(&server.url(), &bytes), &DownloadControl::new()).0.unwrap();
    assert_installed(&d, &bytes);
    let ranges: Vec<Option<String>> = server.file_requests().into_iter().map(|r| r.range).collect();
    assert_eq!(ranges, [None, None, Some("bytes=100000-".into()), Some("bytes=1100000-".into())]);
    assert!(server.file_requests()[2..].iter().all(|r| r.if_range.as_deref() == Some("\"v1\"")), "resumes are guarded by If-Range");
}

#[test]
fn a_stall_times_out_and_resumes() {
    let bytes = content(1 << 20, 3);
    let server = FileServer::start(bytes.clone(), vec![Fault::StallAfter(300_000)]);
    let (_dir, d) = downloader(options());
    let started = Instant::now();
    run(&d, &request(&server.url(), &bytes), &DownloadControl::new()).0.unwrap();
    assert_installed(&d, &bytes);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(server.file_requests()[1].range.as_deref(), Some("bytes=300000-"));
}

#[test]
fn server_errors_and_rate_limits_are_retried_with_retry_after() {
    let bytes = content(100_000, 4);
    let server = FileServer::start(
        bytes.clone(),
        vec![Fault::Status(500, vec![]), Fault::Status(429, vec![("Retry-After", "1".into())]), Fault::Status(503, vec![])],
    );
    let (_dir, d) = downloader(options());
    let started = Instant::now();
    run(&d, &request(&server.url(), &bytes), &DownloadControl::new()).0.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900), "Retry-After honoured: {:?}", started.elapsed());
    assert_installed(&d, &bytes);

    // Failing for good: a typed error after the bounded retries, with the part kept.
    let server = FileServer::start(bytes.clone(), vec![Fault::Status(500, vec![]); 10]);
    let (_dir, d) = downloader(options());
    let (result, _) = run(&d, &request(&server.url(), &bytes), &DownloadControl::new());
    assert_eq!(kind(&result), DownloadErrorKind::Server);
    assert_eq!(server.file_requests().len(), 4, "1 attempt + 3 retries");
}

#[test]
fn not_found_and_unauthorized_are_not_retried_and_say_what_to_do() {
    let bytes = content(1000, 5);
    let server = FileServer::start(bytes.clone(), vec![]);
    let (_dir, d) = downloader(options());
    let (result, _) = run(&d, &request(&format!("{}/missing", server.base), &bytes), &DownloadControl::new());
    assert_eq!(kind(&result), DownloadErrorKind::NotFound);

    let server = FileServer::start(bytes.clone(), vec![Fault::Status(401, vec![]); 5]);
    let (result, _) = run(&d, &request(&server.url(), &bytes), &DownloadControl::new());
    assert_eq!(kind(&result), DownloadErrorKind::Unauthorized);
    assert!(result.unwrap_err().to_string().contains("token"), "the message says a token is needed");
    assert_eq!(server.file_requests().len(), 1);
    assert!(d.store().installed().unwrap().is_empty());
}

#[test]
fn a_token_goes_to_its_host_only_and_redirect_chains_are_followed() {
    let bytes = content(200_000, 6);
    let server = FileServer::start(bytes.clone(), vec![]);
    let (_dir, d) = downloader(options());
    let r = DownloadRequest { token: Some("hf_secret".into()), ..request(&format!("{}/redirect/3", server.base), &bytes) };
    assert!(!format!("{r:?}").contains("hf_secret"), "the token is never printed");
    run(&d, &r, &DownloadControl::new()).0.unwrap();
    assert_installed(&d, &bytes);
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "3 redirects, then the file: {seen:?}");
    assert!(seen[..3].iter().all(|s| s.authorization.as_deref() == Some("Bearer hf_secret")));
    assert_eq!(seen[3].authorization, None, "not sent to the other host the last redirect points at");

    let (_dir, d) = downloader(options());
    let (result, _) = run(&d, &request(&format!("{}/redirect/11", server.base), &bytes), &DownloadControl::new());
    assert_eq!(kind(&result), DownloadErrorKind::Http, "a redirect loop ends");
}

#[test]
fn a_full_answer_to_a_range_request_and_a_changed_file_restart_cleanly() {
    let bytes = content(1 << 20, 7);
    let server = FileServer::start(bytes.clone(), vec![Fault::DropAfter(400_000), Fault::IgnoreRange]);
    let (_dir, d) = downloader(options());
    run(&d, &request(&server.url(), &bytes), &DownloadControl::new()).0.unwrap();
    assert_installed(&d, &bytes);

    // The file changes on the server between attempts: If-Range no longer
    // matches, the server sends the whole new file, and that is what is installed.
    let server = FileServer::start(bytes.clone(), vec![Fault::DropAfter(400_000)]);
    let (_dir, d) = downloader(DownloadOptions { max_retries: 0, ..options() });
    let unpinned = DownloadRequest::new(server.url(), "model.gguf");
    assert_eq!(kind(&run(&d, &unpinned, &DownloadControl::new()).0), DownloadErrorKind::Interrupted);
    let new = content(1 << 20, 8);
    server.replace(new.clone(), "\"v2\"");
    run(&d, &unpinned, &DownloadControl::new()).0.unwrap();
    assert_installed(&d, &new);
    assert_eq!(server.file_requests()[1].if_range.as_deref(), Some("\"v1\""));
}

#[test]
fn a_complete_part_answered_416_is_verified_and_installed() {
    let bytes = content(500_000, 9);
    let server = FileServer::start(bytes.clone(), vec![]);
    let (dir, d) = downloader(options());
    std::fs::write(dir.path().join(".model.gguf.part"), &bytes).unwrap();
    let info = serde_json::json!({"url": server.url(), "validator": "\"v1\"", "total": bytes.len()});
    std::fs::write(dir.path().join(".model.gguf.part.json"), info.to_string()).unwrap();
    run(&d, &request(&server.url(), &bytes), &DownloadControl::new()).0.unwrap();
    assert_installed(&d, &bytes);
    assert_eq!(server.file_requests()[0].range.as_deref(), Some("bytes=500000-"));
}

#[test]
fn wrong_bytes_never_become_an_installed_model() {
    let bytes = content(300_000, 10);
    let server = FileServer::start(bytes.clone(), vec![Fault::WrongBytes]);
    let (_dir, d) = downloader(options());
    let (result, reports) = run(&d, &request(&server.url(), &bytes), &DownloadControl::new());
    assert_eq!(kind(&result), DownloadErrorKind::HashMismatch);
    assert_eq!(reports.last().map(|p| p.state), Some(DownloadState::Failed));
    assert!(d.store().installed().unwrap().is_empty());
    assert_eq!(d.store().used_bytes(), 0, "the bad part is deleted");
}

#[test]
fn a_file_larger_than_the_free_space_is_refused_before_writing() {
    let bytes = content(10_000, 11);
    let server = FileServer::start(bytes.clone(), vec![]);
    let (_dir, d) = downloader(options());
    let huge = DownloadRequest { size: Some(1 << 60), ..DownloadRequest::new(server.url(), "model.gguf") };
    let (result, _) = run(&d, &huge, &DownloadControl::new());
    assert_eq!(kind(&result), DownloadErrorKind::InsufficientStorage);
    assert!(result.unwrap_err().to_string().contains("MiB are free"));
}

#[test]
fn bad_requests_are_refused_before_any_connection() {
    let (_dir, d) = downloader(options());
    for r in [
        DownloadRequest::new("ftp://example.com/x.gguf", "x.gguf"),
        DownloadRequest::new("http://127.0.0.1:9/x.gguf", "../escape.gguf"),
        DownloadRequest::new("http://127.0.0.1:9/x.gguf", ".hidden"),
        DownloadRequest { sha256: Some("abc".into()), ..DownloadRequest::new("http://127.0.0.1:9/x.gguf", "x.gguf") },
    ] {
        assert_eq!(kind(&run(&d, &r, &DownloadControl::new()).0), DownloadErrorKind::InvalidRequest, "{r:?}");
    }
}

#[test]
fn pause_and_resume_from_another_thread_continue_from_the_same_byte() {
    let bytes = content(2 << 20, 12);
    let server = FileServer::start(bytes.clone(), vec![Fault::Slow(20)]);
    let (_dir, d) = downloader(options());
    let control = DownloadControl::new();
    let (pauser, states) = (control.clone(), Arc::new(Mutex::new(Vec::new())));
    let seen = Arc::clone(&states);
    let mut paused_once = false;
    let result = d.download(&request(&server.url(), &bytes), &control, &mut |p| {
        seen.lock().unwrap().push(p.state);
        if !paused_once && p.downloaded > 200_000 {
            paused_once = true;
            pauser.pause();
            let resumer = pauser.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                resumer.resume();
            });
        }
    });
    result.unwrap();
    assert_installed(&d, &bytes);
    let states = states.lock().unwrap().clone();
    let paused = states.iter().position(|s| *s == DownloadState::Paused).expect("a paused state");
    assert_eq!(states[paused + 1], DownloadState::Downloading, "{states:?}");
    let requests = server.file_requests();
    assert_eq!(requests.len(), 2, "one request before the pause, one after");
    assert!(requests[1].range.as_ref().is_some_and(|r| r.starts_with("bytes=")), "{requests:?}");
}

#[test]
fn a_cancelled_download_keeps_its_part_and_a_new_call_resumes_it() {
    let bytes = content(2 << 20, 13);
    let server = FileServer::start(bytes.clone(), vec![Fault::Slow(20)]);
    let (_dir, d) = downloader(options());
    let control = DownloadControl::new();
    let canceller = control.clone();
    let result = d.download(&request(&server.url(), &bytes), &control, &mut |p| {
        if p.downloaded > 300_000 {
            canceller.cancel();
        }
    });
    assert_eq!(kind(&result), DownloadErrorKind::Cancelled);
    assert!(d.store().installed().unwrap().is_empty());
    let kept = d.store().used_bytes();
    assert!(kept > 300_000, "the part is kept: {kept}");

    // A new call (as after an app restart) hashes the part again and resumes it.
    run(&d, &request(&server.url(), &bytes), &DownloadControl::new()).0.unwrap();
    assert_installed(&d, &bytes);
    let resumed = server.file_requests()[1].range.clone().unwrap();
    let from: u64 = resumed.trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap();
    assert!(from >= 300_000, "{resumed}");
}

#[test]
fn concurrent_downloads_are_bounded_and_the_rest_wait_queued() {
    let bytes = content(1 << 20, 14);
    let server = FileServer::start(bytes.clone(), vec![Fault::Slow(5), Fault::Slow(5), Fault::Slow(5)]);
    let (_dir, d) = downloader(DownloadOptions { max_concurrent: 1, ..options() });
    let d = Arc::new(d);
    // Downloads between their first `Downloading` report and `Done` (both
    // inside the slot), counted on the client side.
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let (d, url, bytes) = (Arc::clone(&d), server.url(), bytes.clone());
            let (active, most) = (Arc::clone(&active), Arc::clone(&most));
            std::thread::spawn(move || {
                let r = DownloadRequest { sha256: Some(sha(&bytes)), ..DownloadRequest::new(url, format!("model-{i}.gguf")) };
                let mut reports = Vec::new();
                let mut started = false;
                let result = d.download(&r, &DownloadControl::new(), &mut |p| {
                    reports.push(*p);
                    use std::sync::atomic::Ordering::SeqCst;
                    if p.state == DownloadState::Downloading && !started {
                        started = true;
                        most.fetch_max(active.fetch_add(1, SeqCst) + 1, SeqCst);
                    } else if p.state == DownloadState::Done && started {
                        active.fetch_sub(1, SeqCst);
                    }
                });
                (result, reports)
            })
        })
        .collect();
    for h in handles {
        let (result, reports) = h.join().unwrap();
        result.unwrap();
        assert_eq!(reports[0].state, DownloadState::Queued);
    }
    assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 1, "one download at a time");
    assert_eq!(d.store().installed().unwrap().len(), 3);
    assert!(d.store().delete("model-1.gguf").unwrap());
    assert_eq!(d.store().installed().unwrap().len(), 2);
}

#[test]
fn a_real_model_file_downloads_and_verifies() {
    let path = common::model_path(common::GEMMA_FILE);
    let bytes = std::fs::read(&path).unwrap();
    let server = FileServer::start(bytes.clone(), vec![Fault::DropAfter(50 << 20)]);
    let (_dir, d) = downloader(DownloadOptions { read_timeout_ms: 5_000, ..options() });
    let model = run(
        &d,
        &DownloadRequest { sha256: Some(sha(&bytes)), ..DownloadRequest::new(server.url(), common::GEMMA_FILE) },
        &DownloadControl::new(),
    )
    .0
    .unwrap();
    assert_eq!(model.size, bytes.len() as u64);
    let info = pocketlm::inspect_file(&model.path).expect("the downloaded model reads as GGUF");
    assert!(info.architecture().is_some_and(|a| !a.is_empty()));
}

#[test]
fn the_same_file_is_not_downloaded_twice_at_once() {
    let bytes = content(2 << 20, 15);
    // The first takes about 3 s: longer than the 2 s a second one waits for the lock.
    let server = FileServer::start(bytes.clone(), vec![Fault::Slow(100)]);
    let (_dir, d) = downloader(options());
    let d = Arc::new(d);
    let first = {
        let (d, r) = (Arc::clone(&d), request(&server.url(), &bytes));
        std::thread::spawn(move || run(&d, &r, &DownloadControl::new()).0)
    };
    std::thread::sleep(Duration::from_millis(300));
    let (second, _) = run(&d, &request(&server.url(), &bytes), &DownloadControl::new());
    assert_eq!(kind(&second), DownloadErrorKind::InvalidRequest, "{second:?}");
    assert!(second.unwrap_err().to_string().contains("already being downloaded"));
    first.join().unwrap().unwrap();
    assert_installed(&d, &bytes);
}

#[test]
fn a_file_downloaded_by_other_means_is_verified_before_it_is_adopted() {
    let bytes = content(400_000, 16);
    let (_dir, d) = downloader(options());
    let elsewhere = tempfile::tempdir().unwrap();
    let source = elsewhere.path().join("CFNetworkDownload_1234.tmp");
    std::fs::write(&source, &bytes).unwrap();
    let wrong = "0".repeat(64);
    let err = d.store().adopt(&source, "model.gguf", Some(&wrong)).unwrap_err();
    assert!(matches!(err, Error::Download { kind: DownloadErrorKind::HashMismatch, .. }), "{err:?}");
    assert!(source.exists() && d.store().installed().unwrap().is_empty(), "a wrong file is left where it was");
    let model = d.store().adopt(&source, "model.gguf", Some(&sha(&bytes))).unwrap();
    assert_eq!(model.sha256, Some(sha(&bytes)));
    assert!(!source.exists());
    assert_installed(&d, &bytes);
}

/// A small tmpfs mounted over a temporary directory, so the disk really
/// fills. Mounting needs root (CI and `scripts/test.sh` run as root).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(kib: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root: run this test as root (scripts/test.sh does)");
        Tmpfs { dir }
    }

    fn resize(&self, kib: u64) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={kib}k")])
            .arg(self.dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "remount the tmpfs");
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
#[ignore = "mounts a tmpfs, which needs root: scripts/test.sh runs it with --ignored"]
fn a_disk_that_fills_up_is_a_typed_error_and_the_download_resumes_once_space_is_freed() {
    let fs = Tmpfs::mount(2048);
    let bytes = content(4 << 20, 21);
    let d = Downloader::new(fs.path().join("models"), options()).unwrap();

    // Known size: refused before a byte is written.
    let server = FileServer::start(bytes.clone(), vec![]);
    let (result, _) = run(&d, &request(&server.url(), &bytes), &DownloadControl::new());
    assert_eq!(kind(&result), DownloadErrorKind::InsufficientStorage);
    assert!(server.file_requests().len() == 1, "one request, to learn the size");
    let part = fs.path().join("models/.model.gguf.part");
    assert_eq!(std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0), 0, "nothing was written");

    // Unknown size (no Content-Length): the write itself meets ENOSPC.
    let server = FileServer::start(bytes.clone(), vec![Fault::NoLength]);
    let (result, _) = run(&d, &request(&server.url(), &bytes), &DownloadControl::new());
    assert_eq!(kind(&result), DownloadErrorKind::InsufficientStorage, "{result:?}");
    let message = result.unwrap_err().to_string();
    assert!(message.contains("storage is full") && message.contains("kept"), "says what to do: {message}");
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 1 << 20, "the bytes written are kept for a resume ({kept})");
    assert!(d.store().installed().unwrap().is_empty(), "the store still answers, and nothing half-written is installed");
    assert!(d.store().free_space().unwrap() < 64 << 10, "the disk really is full");

    // Space freed: the same request resumes from the kept bytes.
    fs.resize(32 << 10);
    let model = run(&d, &request(&server.url(), &bytes), &DownloadControl::new()).0.unwrap();
    assert_eq!(model.size, bytes.len() as u64);
    let resumed = server.file_requests().last().cloned().unwrap();
    assert_eq!(resumed.range, Some(format!("bytes={kept}-")), "resumed from the kept bytes");
    assert_installed(&d, &bytes);
}

#[test]
fn an_installed_file_of_another_size_is_not_taken_for_the_requested_one() {
    let (old, new) = (content(100_000, 3), content(150_000, 4));
    let (_dir, d) = downloader(options());
    let first = FileServer::start(old.clone(), vec![]);
    run(&d, &DownloadRequest::new(first.url(), "model.gguf"), &DownloadControl::new()).0.unwrap();
    // Same name, no hash, but a size: the file on disk is not it.
    let second = FileServer::start(new.clone(), vec![]);
    let request = DownloadRequest { size: Some(new.len() as u64), ..DownloadRequest::new(second.url(), "model.gguf") };
    let model = run(&d, &request, &DownloadControl::new()).0.unwrap();
    assert_eq!(model.size, new.len() as u64);
    assert_eq!(std::fs::read(&model.path).unwrap(), new);
    assert_eq!(second.file_requests().len(), 1, "it was downloaded");
}
