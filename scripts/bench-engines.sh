#!/usr/bin/env bash
# Compares the two constrained-decoding engines llama-cpp-2 offers on the
# same model and schemas: llguidance (what PocketLM uses) and llama.cpp's
# JSON-Schema-to-GBNF converter (its `common` feature): keyword coverage,
# preparation time and the size each adds to an app (scripts/bench_engines.py,
# tests/bench/engines). Then, with --decode, validity and decode speed under
# the converted grammars through `pocketlm serve` (scripts/bench-structured.sh
# with GBNF_DIR, on Qwen 0.5B).
# Builds llama.cpp once more with `common`, in its own target directory
# (about 10 minutes on 2 cores the first time). Not part of the test command.
# Usage: scripts/bench-engines.sh [--decode] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
DECODE=0
if [ "${1:-}" = "--decode" ]; then DECODE=1; shift; fi
OUT="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/bench-results/engines-$(date +%Y%m%d-%H%M)}"
mkdir -p "$OUT"
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/bench-venv"
if ! "$VENV/bin/python" -c "import openai, jsonschema" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "openai==3.54.0" jsonschema
fi
python3 scripts/fetch_models.py qwen2.5-0.5b
MODEL="$(python3 scripts/fetch_models.py --print-path qwen2.5-0.5b)"
TARGET="${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/target-engines"
CARGO_TARGET_DIR="$TARGET" cargo build --release --quiet --manifest-path tests/bench/engines/Cargo.toml
CPU="$(lscpu 2>/dev/null | grep 'Model name' | cut -d: -f2 | xargs || true)"
MACHINE="$(nproc) CPUs (${CPU:-unknown CPU}), $(date -u +%Y-%m-%dT%H:%MZ), pocketlm $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(rustc --version)"
"$VENV/bin/python" scripts/bench_engines.py "$TARGET/release" "$MODEL" "$OUT" --machine "$MACHINE"
if [ "$DECODE" = 1 ]; then
    GBNF_DIR="$OUT/gbnf" MODELS=qwen2.5-0.5b bash scripts/bench-structured.sh "$OUT"
fi
echo "results: $OUT"
