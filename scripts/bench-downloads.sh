#!/usr/bin/env bash
# The downloader against curl on loopback: throughput, peak RSS and the time
# to resume after the process is killed half-way, on a file of random bytes
# (default 1 GiB; needs about three times that free on disk, and twice in
# /dev/shm). Builds the
# release CLI; results (Markdown and JSON) go to OUT_DIR (default
# ~/.cache/pocketlm/bench-results/downloads-DATE). Not part of the test command.
# Usage: [SIZE_MIB=1024] [RUNS=3] scripts/bench-downloads.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
{ command -v curl && [ -x /usr/bin/time ]; } >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl time >/dev/null; }
cargo build --release -p pocketlm-cli --quiet
OUT="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/bench-results/downloads-$(date +%Y%m%d-%H%M)}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
CPU="$(lscpu 2>/dev/null | grep 'Model name' | cut -d: -f2 | xargs || true)"
MACHINE="$(nproc) CPUs (${CPU:-unknown CPU}), $(date -u +%Y-%m-%dT%H:%MZ), pocketlm $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(curl --version | head -1 | cut -d' ' -f1-2)"
# Into the disk (where pocketlm's flush before the rename costs the device's
# write speed), then into a tmpfs (where it costs nothing).
for DEST in "$WORK/dest" /dev/shm/pocketlm-bench-dest; do
    python3 scripts/bench_downloads.py "$CARGO_TARGET_DIR/release/pocketlm" "$WORK" "$OUT" --dest "$DEST" \
        --size-mib "${SIZE_MIB:-1024}" --runs "${RUNS:-3}" --machine "$MACHINE"
done
rm -rf /dev/shm/pocketlm-bench-dest
