//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)] // each test binary uses some of them

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A test model's path, through `pocketlm fetch` (a no-op when the verified
/// file is already cached).
pub fn fetch(name: &str) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_pocketlm")).args(["fetch", name]).output().unwrap();
    assert!(out.status.success(), "run scripts/fetch-test-models.sh: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Runs `pocketlm` with `args`, `stdin` written to it, and waits for it.
pub fn pocketlm(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pocketlm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}
