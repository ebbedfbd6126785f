#!/usr/bin/env bash
# Structured output and tool calling of `pocketlm serve`, measured with the
# official openai Python client (in a private virtualenv) on Qwen2.5 0.5B and
# 1.5B: JSON Schema validity over tests/bench/structured_cases.json (10 schemas
# x 10 prompts), decode speed unconstrained vs JSON Schema vs GBNF, constraint
# preparation time of a 20-field schema, and tool-calling accuracy over
# tests/bench/tool_cases.json (scripts/bench_structured.py). Results (Markdown
# and raw JSON) go to OUT_DIR (default
# ~/.cache/pocketlm/bench-results/structured-DATE).
# With GBNF_DIR set (grammars from scripts/bench-engines.sh), also validity
# and speed under llama.cpp's converted GBNF; MODELS picks the models
# (default "qwen2.5-0.5b qwen2.5-1.5b"), ONLY the sections (default all:
# validity,speed,tools).
# Usage: [GBNF_DIR=DIR] [MODELS="..."] [ONLY=...] scripts/bench-structured.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/bench-venv"
if ! "$VENV/bin/python" -c "import openai, jsonschema" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "openai==3.54.0" jsonschema
fi
python3 scripts/fetch_models.py qwen2.5-0.5b qwen2.5-1.5b
cargo build --release -p pocketlm-cli --quiet
BIN="$CARGO_TARGET_DIR/release/pocketlm"
OUT="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/bench-results/structured-$(date +%Y%m%d-%H%M)}"
mkdir -p "$OUT"
CPU="$(lscpu 2>/dev/null | grep 'Model name' | cut -d: -f2 | xargs || true)"
MACHINE="$(nproc) CPUs (${CPU:-unknown CPU}), $(date -u +%Y-%m-%dT%H:%MZ), pocketlm $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $MACHINE"
export POCKETLM_BENCH_KEY="bench-key-$$"

SERVER=""
trap '[ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true' EXIT
MODELS="${MODELS:-qwen2.5-0.5b qwen2.5-1.5b}"
EXTRA=()
[ -z "${GBNF_DIR:-}" ] || EXTRA=(--gbnf-dir "$GBNF_DIR")
[ -z "${ONLY:-}" ] || EXTRA+=(--only "$ONLY")
for LABEL in $MODELS; do
    MODEL="$(python3 scripts/fetch_models.py --print-path "$LABEL")"
    LOG="$OUT/serve-$LABEL.log"
    "$BIN" serve --model "$MODEL" --port 0 --ctx 2048 --api-key-env POCKETLM_BENCH_KEY > "$LOG" 2>&1 &
    SERVER=$!
    for _ in $(seq 1200); do
        grep -q "listening on" "$LOG" && break
        kill -0 "$SERVER" 2>/dev/null || break
        sleep 0.1
    done
    URL="$(grep -o 'http://[^ ]*' "$LOG" | head -1)"
    [ -n "$URL" ] || { echo "pocketlm serve did not start for $LABEL (see $LOG)" >&2; exit 1; }
    echo "== $LABEL at $URL"
    "$VENV/bin/python" scripts/bench_structured.py "$URL" "$POCKETLM_BENCH_KEY" --label "$LABEL" --out "$OUT" \
        --machine "$MACHINE" "${EXTRA[@]}"
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
done

for LABEL in $MODELS; do echo "$OUT/structured-$LABEL.md"; done
for LABEL in $MODELS; do echo; cat "$OUT/structured-$LABEL.md"; done
