#!/usr/bin/env bash
# Every test: installs build dependencies, fetches and verifies the real test
# models, then runs the whole Rust workspace's tests (unit, real-model
# integration and CLI contract tests).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install-deps.sh
bash scripts/fetch-test-models.sh all
cargo test --workspace 2>&1
