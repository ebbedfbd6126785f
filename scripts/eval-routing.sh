#!/usr/bin/env bash
# Does the router earn its keep? Serves Qwen2.5-Coder-1.5B (the "cloud") with
# `pocketlm serve` on loopback, then runs `pocketlm eval` with Qwen2.5-Coder-0.5B
# on the device over ARC-Easy (read from ../shared; never copied) or any
# ARC-format JSONL. Prints the table docs/routing.md is made from.
# Usage: scripts/eval-routing.sh [DATASET.jsonl] [LIMIT]   (defaults: ARC-Easy test, 200)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
DATASET="${1:-../shared/datasets/arc-easy/ARC-Easy-test.jsonl}"
LIMIT="${2:-200}"
cargo build --release --workspace --quiet
BIN="$CARGO_TARGET_DIR/release/pocketlm"
DEVICE="$(python3 scripts/fetch_models.py --print-path qwen2.5-0.5b)"
CLOUD="$(python3 scripts/fetch_models.py --print-path qwen2.5-1.5b)"
LOG="$(mktemp)"
"$BIN" serve --model "$CLOUD" --port 0 --ctx 1024 --threads 1 > "$LOG" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 600); do grep -q "listening on" "$LOG" && break; sleep 0.1; done
URL="$(grep -o 'http://[^ ]*' "$LOG" | head -1)"
# Prices: an illustrative hosted small model, per million tokens (in / out).
"$BIN" eval --dataset "$DATASET" --limit "$LIMIT" --model "$DEVICE" --threads 1 \
    --cloud-url "$URL" --cloud-model qwen2.5-coder-1.5b --price-in 0.15 --price-out 0.60
