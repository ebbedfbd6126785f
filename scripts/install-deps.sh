#!/usr/bin/env bash
# Installs what building and testing PocketLM needs on Debian/Ubuntu, skipping
# what is already there: a C/C++ toolchain, cmake, libclang (for bindgen),
# Python 3 with pip (model fetching), a JDK and Maven (Kotlin tests),
# debootstrap (the Swift test rootfs), ccache, and a Rust toolchain (checked only).
set -euo pipefail

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
command -v python3 >/dev/null || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v debootstrap >/dev/null || missing+=(debootstrap)
# llama.cpp's CMake uses ccache when present: the CPU, Arm and Vulkan builds
# then share every object that does not differ between them.
command -v ccache >/dev/null || missing+=(ccache)
# bindgen (clang-sys) loads libclang itself: `libclang.so`, `libclang-N.so` or
# `libclang.so.N`. libclang-cpp.so is another library and does not count.
has_libclang() {
  local dir f
  for dir in ${LIBCLANG_PATH:-} /usr/lib/llvm-*/lib /usr/lib/"$(uname -m)"-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
    for f in "$dir"/libclang.so "$dir"/libclang.so.* "$dir"/libclang-[0-9]*.so*; do
      [ -e "$f" ] && return 0
    done
  done
  return 1
}
has_libclang || missing+=(libclang-dev)

if [ ${#missing[@]} -gt 0 ]; then
  echo "pocketlm: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "pocketlm: Rust is required (rustup.rs, 1.82 or newer); install it and re-run." >&2
  exit 1
fi
