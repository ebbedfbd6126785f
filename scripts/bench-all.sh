#!/usr/bin/env bash
# Every benchmark behind docs/performance.md, on this machine. Installs what it
# needs, builds PocketLM (release), writes the full-size shaped models and the
# peers (outside the repo), then measures:
#   1. memory read bandwidth (scripts/membw.c), the bound on decode speed;
#   2. predicted vs measured peak RSS, shaped Llama 3.2 3B and Gemma 3 4B,
#      3 contexts x 2 KV types (scripts/bench_memory.py);
#   3. a 4 GiB hard limit: budget 4 GiB loads and generates, an impossible
#      budget is refused (scripts/hard_limit.sh);
#   4. prefill/decode speed of both shaped models, and decode as a fraction
#      of the bandwidth bound;
#   5. PocketLM vs llama-bench vs llama-cpp-python, interleaved (scripts/bench_compare.py);
#   6. time to first token over a 10-turn chat, with KV reuse and re-evaluating.
# Results (Markdown and raw JSON) go to OUT_DIR (default
# ~/.cache/pocketlm/bench-results/DATE). Takes about 60 minutes on 2 cores.
# Usage: scripts/bench-all.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
OUT="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/bench-results/$(date +%Y%m%d-%H%M)}"
mkdir -p "$OUT"
bash scripts/install-deps.sh
bash scripts/fetch-test-models.sh all
cargo build --release --workspace
BIN="$CARGO_TARGET_DIR/release/pocketlm"
MODELS="$(dirname "$(python3 scripts/fetch_models.py --print-path qwen2.5-0.5b)")"
QWEN="$MODELS/qwen2.5-coder-0.5b-instruct-q4.gguf"
LLAMA="$MODELS/shaped/llama-3.2-3b-q4_k_m.gguf"
GEMMA="$MODELS/shaped/gemma-3-4b-q4_k_m.gguf"
[ -f "$LLAMA" ] || scripts/make-shaped-model llama-3.2-3b "$LLAMA" 2>&1 | tee "$OUT/shaped-llama.txt"
[ -f "$GEMMA" ] || scripts/make-shaped-model gemma-3-4b "$GEMMA" 2>&1 | tee "$OUT/shaped-gemma.txt"

{
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) vCPUs"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r)"
    echo "pocketlm: $(git rev-parse --short HEAD), llama-cpp-2 0.1.160 (ggml 0.26.0), x86-64-v3"
} | tee "$OUT/machine.txt"

echo "== 1. memory bandwidth"
cc -O3 -march=x86-64-v3 -fopenmp scripts/membw.c -o "$OUT/membw"
"$OUT/membw" 2 | tee "$OUT/membw.json"

echo "== 2. predicted vs measured peak RSS"
python3 scripts/bench_memory.py --pocketlm "$BIN" --jsonl "$OUT/memory.jsonl" "$LLAMA" "$GEMMA" | tee "$OUT/memory.md"

echo "== 3. hard 4 GiB limit"
for m in "$LLAMA" "$GEMMA"; do scripts/hard_limit.sh "$BIN" "$m"; done | tee "$OUT/hard-limit.jsonl"

echo "== 4. speed and the bandwidth bound"
for m in "$LLAMA" "$GEMMA"; do "$BIN" bench --model "$m" --threads 2 --json; done | tee "$OUT/speed.jsonl"
python3 - "$OUT/membw.json" "$OUT/speed.jsonl" "$LLAMA" "$GEMMA" <<'PY' | tee "$OUT/speed.md"
import json, os, sys
bw = json.load(open(sys.argv[1]))["read_gb_per_s"] * 1e9
runs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
sizes = {os.path.basename(p): os.path.getsize(p) for p in sys.argv[3:]}
print(f"memory read bandwidth: {bw / 1e9:.1f} GB/s (2 threads)")
print("| model | prefill pp512 tok/s | decode tg128 tok/s | TTFT (ms) | bound = bandwidth / weights (tok/s) | decode / bound |")
print("|---|---|---|---|---|---|")
for r in runs:
    bound = bw / sizes[r["model"]]
    print(f"| {r['model']} | {r['prefill_tokens_per_s']:.1f} | {r['decode_tokens_per_s']:.2f} | {r['ttft_ms']:.0f} | {bound:.2f} | {r['decode_tokens_per_s'] / bound:.2f} |")
PY

echo "== 5. side by side with llama-bench and llama-cpp-python"
eval "$(bash scripts/build-peers.sh)"
for m in "$LLAMA" "$QWEN"; do
    python3 scripts/bench_compare.py --pocketlm "$BIN" --llama-bench "$LLAMA_BENCH" --peer-python "$PEER_PYTHON" \
        --llama-bench-same "$LLAMA_BENCH_SAME" \
        --jsonl "$OUT/compare.jsonl" "$m" | tee "$OUT/compare-$(basename "$m" .gguf).md"
done

echo "== 6. multi-turn time to first token"
for m in "$QWEN" "$LLAMA"; do
    "$BIN" bench --model "$m" --turns 10 --gen-tokens 32 --threads 2 | tee "$OUT/turns-$(basename "$m" .gguf).md"
done
echo "results: $OUT"
