#!/usr/bin/env bash
# Does the router earn its keep? The full evaluation behind docs/routing.md:
#  1. trains a router probe for each device model, Qwen2.5-Coder 1.5B and 0.5B
#     (`pocketlm train-router`), on the ARC-Easy training split only;
#  2. evaluates the 1.5B on the test split with no cloud (accuracy, every
#     signal's AUROC, selective accuracy), once per question, cached;
#  3. evaluates the 0.5B on the test split with the 1.5B as its "cloud": the
#     1.5B's own recorded answers from step 2 (`--cloud-results`: the same
#     model `pocketlm serve` would serve, run once per question);
#  4. plots accuracy against the share answered on the device (PNG).
# The data are read in place from ../shared and never copied; results, probes
# and caches go to ~/.cache/pocketlm/eval (reruns resume from the caches and
# keep probes already trained).
# Usage: scripts/eval-routing.sh [TEST_LIMIT] [TRAIN_LIMIT]   (defaults: whole test split, 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
TEST="../shared/datasets/arc-easy/ARC-Easy-test.jsonl"
TRAIN="../shared/datasets/arc-easy/ARC-Easy-train.jsonl"
TEST_LIMIT="${1:-}"
TRAIN_LIMIT="${2:-1000}"
OUT="${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/eval"
mkdir -p "$OUT"
cargo build --release -p pocketlm-cli --quiet
BIN="$CARGO_TARGET_DIR/release/pocketlm"
limit=(); [ -n "$TEST_LIMIT" ] && limit=(--limit "$TEST_LIMIT")
# Prices: an illustrative hosted small model, per million tokens (in / out).
prices=(--price-in 0.15 --price-out 0.60)
for m in 1.5b 0.5b; do
    model="$(python3 scripts/fetch_models.py --print-path "qwen2.5-$m")"
    # A probe already trained is kept (the eval cache is keyed by its weights);
    # delete it, or set RETRAIN=1, to train again.
    if [ -n "${RETRAIN:-}" ] || [ ! -s "$OUT/probe-$m.json" ]; then
        "$BIN" train-router --model "$model" --dataset "$TRAIN" --limit "$TRAIN_LIMIT" --threads 2 \
            --cache "$OUT/train-cache-$m.jsonl" --out "$OUT/probe-$m.json" 2> "$OUT/train-$m.log"
    fi
    cloud=(); [ "$m" = 0.5b ] && cloud=(--cloud-results "$OUT/per-question-1.5b.jsonl" "${prices[@]}")
    "$BIN" eval --dataset "$TEST" "${limit[@]}" --model "$model" --threads 2 --router-probe "$OUT/probe-$m.json" \
        --cache "$OUT/cache-$m.jsonl" --per-question "$OUT/per-question-$m.jsonl" "${cloud[@]}" 2> "$OUT/eval-$m.log" \
        | tee "$OUT/summary-$m.md"
done
# The plot: matplotlib in a virtual environment outside the repository.
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/plot-venv"
[ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q matplotlib==3.10.*; }
"$VENV/bin/python" scripts/plot_routing.py docs/routing-curve.png \
    "ARC-Easy test: 0.5B on the device, 1.5B as the cloud" "$OUT/per-question-0.5b.jsonl" \
    probe answer_probability first_token
echo "results in $OUT; plot in docs/routing-curve.png"
