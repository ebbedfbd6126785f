#!/usr/bin/env bash
# The demo: install build dependencies, build the CLI, fetch the default model
# (Qwen2.5-Coder 0.5B Instruct, Q4_K_M) and answer a question on this device.
# Usage: scripts/demo.sh ["your question"]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install-deps.sh
cargo build --quiet -p pocketlm-cli
question="${1:-What is the capital of France?}"
echo "> $question" >&2
exec "$CARGO_TARGET_DIR/debug/pocketlm" generate --prompt "$question" --temperature 0
