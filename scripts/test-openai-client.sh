#!/usr/bin/env bash
# `pocketlm serve` checked with the official openai Python client (from PyPI,
# in a private virtualenv): runs the server on loopback with Gemma 3 270M and
# an API key (and all-MiniLM-L6-v2 for /v1/embeddings), then
# tests/openai_client_check.py against it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/openai-venv"
if ! "$VENV/bin/python" -c "import openai" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "openai==3.54.0"
fi
cargo build --workspace --quiet
MODEL="$(python3 scripts/fetch_models.py --print-path gemma3-270m)"
EMBEDDER="$(python3 scripts/fetch_models.py --print-path all-minilm-l6-v2)"
LOG="$(mktemp)"
export POCKETLM_TEST_KEY="test-key-$$"
"$CARGO_TARGET_DIR/debug/pocketlm" serve --model "$MODEL" --port 0 --ctx 1024 --api-key-env POCKETLM_TEST_KEY \
    --embedding-model "$EMBEDDER" > "$LOG" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 600); do grep -q "listening on" "$LOG" && break; sleep 0.1; done
URL="$(grep -o 'http://[^ ]*' "$LOG" | head -1)"
[ -n "$URL" ] || { echo "pocketlm serve did not start" >&2; exit 1; }
"$VENV/bin/python" tests/openai_client_check.py "$URL" "$POCKETLM_TEST_KEY"
