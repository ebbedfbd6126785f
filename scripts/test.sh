#!/usr/bin/env bash
# Every test: installs build dependencies, checks formatting and lints
# (rustfmt, clippy with warnings as errors) and the layering (no llama.cpp
# call or unsafe outside the engine, no networking without `cloud`), fetches and verifies the real test
# models, then runs the Rust workspace's tests (unit, real-model integration,
# CLI contract), the Kotlin SDK's JUnit suite on the host JVM, the Swift
# SDK's XCTest suite (Swift 6 in a Debian trixie rootfs; needs root), the
# official OpenAI client against `pocketlm serve`, the 16 KB page alignment of
# every Android native library (JNA's from its AAR, ours when built), a short fuzz run of the
# pure layer, the aarch64 NEON builds under qemu, the Vulkan build on Mesa's
# lavapipe, and the README's demo on a fresh minimal Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install-deps.sh
cargo fmt --all -- --check
# The 1.5B model too: the catalog tests compare its real header with the planner.
bash scripts/fetch-test-models.sh all qwen2.5-1.5b
bash scripts/make-test-shaped-models.sh
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The SDK as apps build it (no `bench`), with and without `cloud`: no warnings either.
cargo clippy -p pocketlm-ffi --quiet -- -D warnings
cargo clippy -p pocketlm-ffi --no-default-features --quiet -- -D warnings
bash scripts/check-layering.sh
cargo test --workspace 2>&1
# The tests that need root (a real full disk on a tmpfs); CI runs as root.
if [ "$(id -u)" = 0 ]; then
    cargo test -p pocketlm --test download -- --ignored 2>&1
else
    echo "NOT RUN: the tmpfs disk-full test needs root (cargo lists it as ignored)" >&2
fi
bash scripts/test-kotlin.sh
bash scripts/check-16k-pages.sh
bash scripts/check-packaging.sh
bash scripts/test-swift.sh
bash scripts/test-openai-client.sh
bash scripts/fuzz.sh 60
bash scripts/test-arm64.sh
bash scripts/test-vulkan.sh
bash scripts/check-fresh-machine.sh
