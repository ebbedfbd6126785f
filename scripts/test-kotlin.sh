#!/usr/bin/env bash
# Kotlin SDK tests on the host JVM: builds libpocketlm_ffi for this machine,
# generates the Kotlin bindings from it (library mode), then compiles the
# Android library's Kotlin sources with Maven and runs their JUnit 5 tests
# through JNA against the real engine and the Qwen2.5 0.5B test model; then the
# sample Android app's view models (plain Kotlin) the same way, through the
# app's whole path (download from loopback, chat, kill, restore, reload).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
command -v mvn >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null; }
cargo build --workspace
lib="$CARGO_TARGET_DIR/debug/libpocketlm_ffi.so"
gen="$CARGO_TARGET_DIR/generated/kotlin"
rm -rf "$gen"
cargo run -q -p uniffi-bindgen -- generate --no-format --library "$lib" --language kotlin --out-dir "$gen"
model="$(python3 scripts/fetch_models.py qwen2.5-0.5b --print-path)"
probe="$(bash scripts/make-test-probe.sh)"
mvn -B -ntp -f android/pom.xml test \
  -Dgenerated.kotlin.dir="$gen" -Dnative.lib.dir="$(dirname "$lib")" -Dtest.model="$model" -Dtest.probe="$probe" \
  -Dsurefire.printSummary=true
mvn -B -ntp -f sample-apps/android/pom.xml test \
  -Dgenerated.kotlin.dir="$gen" -Dnative.lib.dir="$(dirname "$lib")" -Dtest.model="$model" \
  -Dsurefire.printSummary=true
