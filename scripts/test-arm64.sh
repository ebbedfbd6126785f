#!/usr/bin/env bash
# ARM64 NEON, executed. Cross-builds the core's backend tests for
# aarch64-unknown-linux-gnu twice, the way the Android AAR ships them:
#   armv8-a                 every 64-bit Arm CPU (NEON only)
#   armv8.2-a+dotprod+fp16  int8 dot-product and fp16 kernels (Cortex-A55/A75 and newer)
# and runs them under qemu-aarch64 (user mode) on an emulated Cortex-A53 and on
# qemu's "max" CPU. Checks:
#   - the Qwen2.5 0.5B greedy answer matches the x86-64 build token for token;
#   - the dotprod build on the Cortex-A53 refuses to start with a typed
#     UnsupportedCpu error instead of dying with SIGILL.
# Installs what it needs (Debian: qemu-user, the aarch64 cross compilers,
# ccache; the rustup target). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source scripts/parity-lib.sh

need=()
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu)
command -v ccache >/dev/null || need+=(ccache)
if [ ${#need[@]} -gt 0 ]; then
  echo "pocketlm: installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || rustup target add aarch64-unknown-linux-gnu

target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=$sysroot"
cache="$(dirname "$CARGO_TARGET_DIR")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Builds the backend tests for one Arm variant in its own target directory
# (llama.cpp's CPU kernels differ) and prints the test binary's path.
build_variant() {
  local arch="$1"
  # llama-cpp-sys-2 pins GGML_CPU_ARM_ARCH=armv8-a for Linux cross builds;
  # this CMake include overrides the cache entry (see the file).
  CARGO_TARGET_DIR="$cache/target-arm64/$arch" POCKETLM_ARM_ARCH="$arch" \
    CMAKE_PROJECT_INCLUDE="$PWD/scripts/cmake/ggml-arm-arch.cmake" \
    cargo test -p pocketlm --test backends --target "$target" --no-run --message-format=json-render-diagnostics \
    | executable_of backends
}

echo "== x86-64 reference answer"
reference_answer "$work/x86.json" x86
cat "$work/x86.json"; echo

echo "== cross-building for $target"
base="$(build_variant armv8-a)"
fast="$(build_variant armv8.2-a+dotprod+fp16)"
[[ -x "$base" && -x "$fast" ]] || { echo "cross build produced no test binary" >&2; exit 1; }

failed=0
# run LABEL BINARY QEMU_CPU EXPECT_MISSING [TEST FILTER]
run() {
  local label="$1" bin="$2" cpu="$3" missing="$4" filter="${5:-}"
  echo "== $label on qemu -cpu $cpu"
  local started=$SECONDS
  set +e
  POCKETLM_PARITY_REF="$work/x86.json" POCKETLM_EXPECT_MISSING="$missing" \
    qemu-aarch64 -L "$sysroot" -cpu "$cpu" "$bin" --test-threads=1 --nocapture $filter 2>&1 \
    | grep --line-buffered -E "^test |test result|panicked|cpu aarch64|kernels|answered|left:|right:"
  local status=${PIPESTATUS[0]}
  set -e
  echo "   ($((SECONDS - started)) s, exit $status)"
  [ "$status" -eq 0 ] || failed=$((failed + 1))
}
# Every backend test on the oldest core; on "max" (dotprod, fp16, i8mm, SVE)
# the answer and the guard (an emulated model load takes about 40 s).
run "armv8-a build" "$base" cortex-a53 ""
run "armv8-a build" "$base" max "" "the_greedy_answer loading_refuses"
run "armv8.2-a+dotprod+fp16 build" "$fast" max "" "the_greedy_answer loading_refuses"
run "armv8.2-a+dotprod+fp16 build" "$fast" cortex-a53 "dotprod,fp16" loading_refuses_kernels_this_cpu_cannot_run

echo "arm64 (qemu): $((4 - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
