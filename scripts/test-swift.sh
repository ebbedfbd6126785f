#!/usr/bin/env bash
# Swift SDK tests on Linux: builds libpocketlm_ffi for this machine, generates
# the Swift bindings from it (library mode) into the package, then runs
# `swift test` (Swift 6.0.3 from Debian trixie, in a debootstrapped rootfs
# cached outside the repo) against the real engine and the Qwen2.5 0.5B model.
# SWIFT_TEST_FILTER=REGEX runs only the matching tests (for development).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
root="$(bash scripts/swift-rootfs.sh)"
cargo build --workspace
libdir="$CARGO_TARGET_DIR/debug"
gen="$CARGO_TARGET_DIR/generated/swift"
rm -rf "$gen"
cargo run -q -p uniffi-bindgen -- generate --no-format --library "$libdir/libpocketlm_ffi.so" --language swift --out-dir "$gen"
mkdir -p ios/Sources/PocketLMFFI ios/Sources/pocketlm_ffiFFI
cp "$gen/PocketLMFFI.swift" ios/Sources/PocketLMFFI/
cp "$gen/pocketlm_ffiFFI.h" ios/Sources/pocketlm_ffiFFI/
cp "$gen/pocketlm_ffiFFI.modulemap" ios/Sources/pocketlm_ffiFFI/module.modulemap
model="$(python3 scripts/fetch_models.py qwen2.5-0.5b --print-path)"
# A real router probe, beside the library (mounted at /target).
probe="$(basename "$(bash scripts/make-test-probe.sh)")"
scratch="${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/swift-build"
mkdir -p "$scratch"

# A private mount namespace: every bind mount disappears when this ends.
exec unshare --mount --propagation private bash -euo pipefail -c '
  root="$1"; src="$2"; libdir="$3"; modeldir="$4"; scratch="$5"; model="$6"; filter="$7"; probe="$8"
  for d in proc dev src target models scratch; do mkdir -p "$root/$d"; done
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --bind "$src" "$root/src"
  mount --bind "$libdir" "$root/target"
  mount --bind "$modeldir" "$root/models"
  mount --bind "$scratch" "$root/scratch"
  chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
    LD_LIBRARY_PATH=/target POCKETLM_TEST_MODEL="/models/$model" POCKETLM_TEST_PROBE="/target/$probe" \
    timeout 1200 bash -c "cd /src && swift test --scratch-path /scratch -Xswiftc -warnings-as-errors -Xlinker -L/target ${filter:+--filter $filter} 2>&1"
' _ "$root" "$PWD" "$libdir" "$(dirname "$model")" "$scratch" "$(basename "$model")" "${SWIFT_TEST_FILTER:-}" "$probe"
