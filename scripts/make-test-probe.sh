#!/usr/bin/env bash
# A real router probe for the Qwen2.5 0.5B test model, for the Kotlin and
# Swift tests: `pocketlm train-router` on the first 40 ARC-Easy training
# questions (read from ../shared, never copied). Prints the probe's path.
# Made again whenever the pocketlm binary is newer than it (the layout may change).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bin="$CARGO_TARGET_DIR/debug/pocketlm"
[ -x "$bin" ] || cargo build -q -p pocketlm-cli >&2
probe="$CARGO_TARGET_DIR/debug/test-probe-qwen2.5-0.5b.json"
train="../shared/datasets/arc-easy/ARC-Easy-train.jsonl"
[ -f "$train" ] || { echo "missing $train: the shared datasets sit beside the repository" >&2; exit 1; }
if [ ! -f "$probe" ] || [ "$bin" -nt "$probe" ]; then
    model="$(python3 scripts/fetch_models.py qwen2.5-0.5b --print-path)"
    "$bin" train-router --model "$model" --dataset "$train" --limit 40 --threads 2 --out "$probe" 2>/dev/null >&2
fi
echo "$probe"
