//! Helpers shared by the CLI's integration tests.

use std::path::PathBuf;
use std::process::Command;

/// A test model's path, through `pocketlm fetch` (a no-op when the verified
/// file is already cached).
pub fn fetch(name: &str) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_pocketlm")).args(["fetch", name]).output().unwrap();
    assert!(out.status.success(), "run scripts/fetch-test-models.sh: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}
