#!/usr/bin/env bash
# What the optional `cloud` layer costs an app: the host release build of the
# bindings library (libpocketlm_ffi.so, stripped) and the number of crates it
# links, with the bindings' default features (cloud) and without them.
# Usage: bash scripts/measure-sizes.sh   (two release builds; minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
measure() { # <label> <cargo feature args...>
  local label="$1"
  shift
  cargo build -q --release -p pocketlm-ffi "$@"
  local lib="$CARGO_TARGET_DIR/release/libpocketlm_ffi.so" stripped
  stripped="$(mktemp)"
  strip -o "$stripped" "$lib"
  local crates
  crates="$(cargo tree -p pocketlm-ffi "$@" -e normal --prefix none | sed 's/ (\*)//' | sort -u | wc -l)"
  awk -v l="$label" -v s="$(stat -c %s "$stripped")" -v u="$(stat -c %s "$lib")" -v c="$crates" \
    'BEGIN { printf "%-22s %6.1f MiB stripped (%6.1f MiB unstripped), %3d crates\n", l, s / 1048576, u / 1048576, c }'
  rm -f "$stripped"
}
echo "host: $(uname -m), $(rustc --version)"
measure "with cloud (default)"
measure "without cloud" --no-default-features
