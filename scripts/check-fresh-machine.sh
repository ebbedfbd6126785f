#!/usr/bin/env bash
# The fresh-machine check: the README's demo command, run from a clean clone
# of the committed tree inside a minimal Debian bookworm (debootstrap
# --variant=minbase) where only the Rust toolchain comes from the host. It
# proves that the project's own scripts install everything else (the libclang
# that bindgen loads, cmake, g++, Python, ...): a step that was only ever done
# by hand on this machine fails here.
#
# Caches come in through bind mounts so a rerun costs minutes, not a fresh
# download and compile of everything: the pristine rootfs (copied, never
# changed), apt's downloaded packages, ccache, the cargo registry and the
# verified models. The Rust target directory is new on every run, so bindgen
# and the llama.cpp build really run. Needs root (debootstrap, chroot, mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cache="${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/fresh"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
base="$cache/bookworm-minbase"
run="$cache/run"
started=$(date +%s)

command -v debootstrap >/dev/null || bash scripts/install-deps.sh
if [ ! -f "$base/.pocketlm-ready" ]; then
  rm -rf "$base.partial"
  mkdir -p "$cache"
  echo "fresh-machine: debootstrapping a minimal Debian bookworm" >&2
  debootstrap --variant=minbase bookworm "$base.partial" "$mirror" >&2
  touch "$base.partial/.pocketlm-ready"
  mv "$base.partial" "$base"
fi

rm -rf "$run"
cp -a "$base" "$run"
git clone --quiet --no-hardlinks "$PWD" "$run/work/pocketlm"
cp /etc/resolv.conf "$run/etc/resolv.conf"
rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
models="$(dirname "$(python3 scripts/fetch_models.py qwen2.5-0.5b --print-path)")"
ccache_dir="$(ccache -k cache_dir 2>/dev/null || echo "$HOME/.cache/ccache")"
mkdir -p "$cache/apt-archives/partial" "$ccache_dir" "$cargo_home/registry"

# A private mount namespace: every bind mount disappears when this ends, so
# removing the run directory afterwards cannot reach the host's files.
set +e
unshare --mount --propagation private bash -euo pipefail -c '
  run="$1"; rustup_home="$2"; cargo_home="$3"; models="$4"; ccache_dir="$5"; apt="$6"
  bind() { mkdir -p "$2"; mount --bind "$1" "$2"; [ "${3:-}" != ro ] || mount -o remount,bind,ro "$2"; }
  mount -t proc proc "$run/proc"
  mount --rbind /dev "$run/dev"
  bind "$rustup_home" "$run/root/.rustup" ro
  bind "$cargo_home/bin" "$run/root/.cargo/bin" ro
  bind "$cargo_home/registry" "$run/root/.cargo/registry"
  bind "$models" "$run/root/.cache/pocketlm/models" ro
  bind "$ccache_dir" "$run/root/.cache/ccache"
  bind "$apt" "$run/var/cache/apt/archives"
  chroot "$run" /usr/bin/env -i PATH=/root/.cargo/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb \
    timeout 3000 bash -c "cd /work/pocketlm && bash scripts/demo.sh" 2>&1
' _ "$run" "$rustup_home" "$cargo_home" "$models" "$ccache_dir" "$cache/apt-archives" | tee "$cache/last.log"
status=${PIPESTATUS[0]}
set -e
rm -rf "$run"
elapsed=$(( $(date +%s) - started ))
if [ "$status" -ne 0 ] || ! grep -qi "paris" "$cache/last.log"; then
  echo "fresh-machine: FAILED after ${elapsed}s (exit $status): the demo did not answer on a minimal Debian; log: $cache/last.log" >&2
  exit 1
fi
echo "fresh-machine: the demo answered on a minimal Debian bookworm in ${elapsed}s" >&2
