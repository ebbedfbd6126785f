#!/usr/bin/env bash
# Fuzzes the pure layer with cargo-fuzz (libFuzzer, AddressSanitizer, nightly
# Rust): the GGUF reader, the memory planner, chat template rendering and
# the parsers of streamed answers (tool calls, partial JSON).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
# Targets: gguf, plan, template, output, catalog, session, vector_index, lora, vision, image (core/fuzz/fuzz_targets). The corpus and any
# crash artifacts live in ~/.cache/pocketlm/fuzz; a crash fails the script, and
# each one found so far is a regression test in the normal suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf plan template output catalog session vector_index lora vision image)

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null || [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz 0.13.1" ]; then
  cargo install cargo-fuzz --version 0.13.1 --locked --quiet
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/fuzz"
mkdir -p "$cache"
python3 scripts/fuzz_seeds.py "$cache/seeds"

status=0
for target in "${targets[@]}"; do
  mkdir -p "$cache/corpus/$target" "$cache/artifacts/$target"
  log="$cache/$target.log"
  echo "fuzz: $target for ${seconds}s" >&2
  if ! cargo +nightly fuzz run --fuzz-dir core/fuzz --target-dir "$cache/target" "$target" \
      "$cache/corpus/$target" "$cache/seeds/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$cache/artifacts/$target/" >"$log" 2>&1; then
    echo "fuzz: $target FAILED (log: $log)" >&2
    tail -40 "$log" >&2
    status=1
    continue
  fi
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  echo "fuzz: $target: ${runs:-?} executions in ${seconds}s, no crash" >&2
  echo "$(date -u +%FT%TZ) $target ${runs:-0} ${seconds}s" >>"$cache/history.tsv"
done
exit $status
