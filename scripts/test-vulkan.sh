#!/usr/bin/env bash
# Vulkan, executed. Builds the core and the CLI with the Vulkan backend and
# runs them on Mesa's lavapipe (a software Vulkan device), every layer
# offloaded. Checks:
#   - the GPU passes the probe (kernel self-test against the CPU) and the
#     Qwen2.5 0.5B greedy answer matches the CPU-only x86 build token for token;
#   - a forced probe failure falls back to the CPU with the reason;
#   - `pocketlm info` and `pocketlm bench` report backend and device.
# Installs what it needs: glslc, SPIR-V headers, Mesa's Vulkan drivers and
# loader from Debian bookworm, and (build time only) the Vulkan 1.4 headers
# from Debian trixie's libvulkan-dev, since bookworm's 1.3.239 are too old for
# ggml-vulkan. lavapipe is slow (about 1 token/s for 0.5B), so answers are short.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source scripts/parity-lib.sh

need=()
command -v glslc >/dev/null || need+=(glslc)
[ -f /usr/share/cmake/SPIRV-Headers/SPIRV-HeadersConfig.cmake ] || need+=(spirv-headers)
[ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need+=(mesa-vulkan-drivers)
[ -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 ] || need+=(libvulkan1)
command -v ccache >/dev/null || need+=(ccache)
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#need[@]} -gt 0 ]; then
  echo "pocketlm: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Vulkan headers for the build: trixie's libvulkan-dev, fetched through apt
# (signature-checked against Debian's archive key), unpacked outside the repo.
cache="$(dirname "$CARGO_TARGET_DIR")"
sdk="$cache/vulkan-sdk-1.4.309"
if [ ! -f "$sdk/usr/include/vulkan/vulkan.hpp" ]; then
  apt_dir="$(mktemp -d)"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$apt_dir/sources.list"
  opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir" -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -qq
  # The version this was proven with; a later trixie update if that one is gone.
  (cd "$apt_dir" && { apt-get "${opts[@]}" download libvulkan-dev=1.4.309.0-1 || apt-get "${opts[@]}" download libvulkan-dev; } >/dev/null)
  rm -rf "$sdk.partial" && mkdir -p "$sdk.partial/usr/lib"
  dpkg-deb -x "$apt_dir"/libvulkan-dev_*.deb "$sdk.partial"
  # Link against bookworm's loader (the deb's own symlink points into libvulkan1).
  ln -sf /usr/lib/x86_64-linux-gnu/libvulkan.so.1 "$sdk.partial/usr/lib/libvulkan.so"
  rm -rf "$apt_dir" "$sdk" && mv "$sdk.partial" "$sdk"
fi
export VULKAN_SDK="$sdk/usr"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "== CPU-only x86-64 reference answer"
reference_answer "$work/cpu.json" CPU

# ggml skips CPU-type Vulkan devices (lavapipe is one) unless told which to
# use. Set only now: llama-cpp-sys-2 forwards GGML_* variables to CMake, so
# the CPU-only build above must not see it.
export GGML_VK_VISIBLE_DEVICES=0

failed=0
echo "== core backend tests on Vulkan (lavapipe)"
set +e
POCKETLM_TEST_BACKEND=gpu POCKETLM_PARITY_REF="$work/cpu.json" \
  cargo test -p pocketlm --features vulkan --test backends -- --test-threads=1 --nocapture \
    the_greedy_answer vulkan_passes a_failed_gpu_probe 2>&1 \
  | grep --line-buffered -E "^test |test result|panicked|vulkan|answered|left:|right:|GPU"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=$((failed + 1))
set -e

echo "== pocketlm info / bench on Vulkan"
cli="$(cargo build -q -p pocketlm-cli --features vulkan --message-format=json-render-diagnostics | executable_of pocketlm)"
model="$(python3 scripts/fetch_models.py qwen2.5-0.5b --print-path)"
check() { # check LABEL SHOW-EXPR PASS-EXPR COMMAND...: runs COMMAND, checks its exit status and JSON
  local label="$1" show="$2" pass="$3" out rc=0
  shift 3
  out="$("$@")" || rc=$?
  if [ "$rc" -eq 0 ] && printf '%s' "$out" | python3 -c "import json,sys; j=json.load(sys.stdin); print('   ', $show); sys.exit(0 if ($pass) else 1)"; then
    echo "ok   $label"
  else
    echo "FAIL $label (exit status $rc)"; failed=$((failed + 1))
  fi
}
check "info --backend gpu runs on vulkan" \
  "j['backend']['backend'], j['backend']['device'], j['backend']['probe_max_diff']" \
  "j['backend']['backend'] == 'vulkan' and j['backend']['device'] != ''" \
  "$cli" info "$model" --backend gpu --json
check "a forced probe failure falls back to the cpu" \
  "j['backend']['backend'], j['backend']['fallback_reason']" \
  "j['backend']['backend'] == 'cpu' and 'POCKETLM_GPU_PROBE' in j['backend']['fallback_reason']" \
  env POCKETLM_GPU_PROBE=fail "$cli" info "$model" --backend gpu --json
check "bench reports the backend and device" \
  "j['backend'], j['device'], 'prefill', round(j['prefill_tokens_per_s'], 1), 'decode', round(j['decode_tokens_per_s'], 1)" \
  "j['backend'] == 'vulkan' and j['device'] != '' and j['decode_tokens_per_s'] > 0" \
  "$cli" bench --model "$model" --backend gpu --prompt-tokens 8 --gen-tokens 2 --runs 1 --json

set -e
echo "vulkan (lavapipe): $((4 - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
