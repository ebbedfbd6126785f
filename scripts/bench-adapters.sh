#!/usr/bin/env bash
# LoRA adapter benchmark: peak memory and speed of the Qwen2.5 0.5B test model
# with realistic adapters (rank 16 and 64 on every linear layer, F16, written
# by scripts/lora_adapters.py --bench-rank), against the memory planner's
# prediction. Release build, 2 threads, 3 runs each; prints a Markdown table
# (docs/adapters.md records one, with the machine it ran on).
# Usage: scripts/bench-adapters.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
runs="${1:-3}"
cargo build -q --release --workspace
bin="$CARGO_TARGET_DIR/release/pocketlm"
model="$(python3 scripts/fetch_models.py --print-path qwen2.5-0.5b)"
mapfile -t benches < <(python3 scripts/lora_adapters.py --bench-rank 16 --bench-rank 64)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(date -u +%F)"
echo
exec python3 scripts/bench_adapters.py "$bin" "$model" "$runs" "${benches[0]}" "${benches[1]}" "${benches[1]}@0"
