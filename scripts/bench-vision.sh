#!/usr/bin/env bash
# What a vision projector costs, measured: peak RSS of `pocketlm generate` on
# the shaped Gemma 3 4B (6 layers) without and with its shaped projector and
# one image, beside what `pocketlm plan --mmproj` predicts, and how long one
# image takes to encode. Usage: scripts/bench-vision.sh [PROJECTOR.gguf]
# (default: the 1-block test projector; the memory an image's encoding needs
# does not depend on the block count, its time does: make a full 27-block one
# with scripts/shaped_projector.py OUT.gguf). Results: docs/images.md.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/env.sh"
bash "$HERE/make-test-shaped-models.sh"
DIR="$(dirname "$(python3 "$HERE/fetch_models.py" --print-path gemma3-270m)")/shaped"
MODEL="$DIR/gemma-3-4b-6layers.gguf"
MMPROJ="${1:-$DIR/gemma-3-4b-mmproj-1block/mmproj.gguf}"
cargo build -q --release -p pocketlm-cli
BIN="$CARGO_TARGET_DIR/release/pocketlm"
IMG="$(mktemp --suffix .png)"
trap 'rm -f "$IMG"' EXIT
python3 - "$IMG" <<'PY'
import struct, sys, zlib
w = h = 640
raw = b"".join(b"\0" + b"".join(bytes((x % 256, y % 256, 90)) for x in range(w)) for y in range(h))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
rss() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1; }
base=$(rss "$BIN" generate --model "$MODEL" --ctx 1024 --max-tokens 3 --threads 2 --prompt "What is this?")
with=$(rss "$BIN" generate --model "$MODEL" --ctx 1024 --max-tokens 3 --threads 2 --mmproj "$MMPROJ" --image "$IMG" --prompt "What is this?")
echo "peak RSS without projector: $((base / 1024)) MiB; with projector and one image: $((with / 1024)) MiB; added: $(((with - base) / 1024)) MiB"
"$BIN" plan "$MODEL" --budget 4GiB --ctx 1024 --mmproj "$MMPROJ"
"$BIN" generate --model "$MODEL" --ctx 1024 --max-tokens 1 --threads 2 --mmproj "$MMPROJ" --image "$IMG" --json --prompt "What is this?" \
    | python3 -c 'import json,sys; m=json.load(sys.stdin)["metrics"]; print("one image: %d positions, time to first token %.1f s (encode + prefill)" % (m["prompt_tokens_evaluated"], m["ttft_ms"] / 1000))'
