#!/usr/bin/env bash
# Builds the Android AAR: libpocketlm_ffi.so for arm64-v8a and x86_64 with
# cargo-ndk (C++ runtime linked statically, 16 KB page alignment from
# .cargo/config.toml), a second arm64-v8a library with ggml's dot-product and
# fp16 kernels (libpocketlm_ffi_dotprod.so, picked at run time by
# dev.pocketlm.NativeLibrary on CPUs that have both), the uniffi Kotlin
# bindings, then the Gradle library and its Maven publication (POM with the
# JNA and coroutines dependencies) in android/build/repo.
#
# POCKETLM_VULKAN=1 adds the Vulkan backend (used only when the app asks for
# the GPU and the device passes the probe). It needs Vulkan-Hpp headers and
# SPIR-V headers on the host (VULKAN_INCLUDE_DIR, SPIRV_HEADERS_DIR) and glslc
# on PATH; see docs/backends.md.
#
# Needs: the Android NDK r27 or newer (ANDROID_NDK_HOME, or else the
# ndkVersion of android/build.gradle.kts under $ANDROID_HOME/ndk), the Android
# SDK (ANDROID_HOME), JDK 17, Gradle 8.9+ (android/gradlew when generated) and
# rustup. Cannot run without the NDK.
set -euo pipefail

# Points every NDK variable at NDK: cargo-ndk reads ANDROID_NDK_HOME, while
# llama-cpp-sys-2's CMake build reads ANDROID_NDK, ANDROID_NDK_ROOT, NDK_ROOT
# or CARGO_NDK_ANDROID_NDK (never ANDROID_NDK_HOME) and would otherwise pick
# the newest NDK under ANDROID_HOME, maybe not the one cargo-ndk links with.
ndk_env() {
  local ndk="$1" rev
  rev="$(sed -n 's/^Pkg\.Revision *= *//p' "$ndk/source.properties" 2>/dev/null || true)"
  if ! [ "${rev%%.*}" -ge 27 ] 2>/dev/null; then
    echo "build-android: $ndk is not an Android NDK r27 or newer (Pkg.Revision '$rev')" >&2
    return 1
  fi
  export ANDROID_NDK_HOME="$ndk" ANDROID_NDK="$ndk" ANDROID_NDK_ROOT="$ndk" NDK_ROOT="$ndk" CARGO_NDK_ANDROID_NDK="$ndk"
}

# Sourced (scripts/check_packaging.py): only the function above.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0
cd "$(dirname "$0")/.."
ndk="${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-${ANDROID_NDK:-}}}"
if [ -z "$ndk" ] && [ -n "${ANDROID_HOME:-}" ]; then
  ndk="$ANDROID_HOME/ndk/$(sed -n 's/^ *ndkVersion = "\(.*\)".*/\1/p' android/build.gradle.kts)"
fi
[ -n "$ndk" ] || { echo "build-android: set ANDROID_NDK_HOME to an Android NDK (r27+), or ANDROID_HOME" >&2; exit 1; }
ndk_env "$ndk"
# minSdk in android/build.gradle.kts. llama-cpp-sys-2 reads ANDROID_API_LEVEL first.
export ANDROID_API_LEVEL="${ANDROID_API_LEVEL:-26}"
target_dir="${CARGO_TARGET_DIR:-target}"
features=android
[ "${POCKETLM_VULKAN:-0}" = 1 ] && features="android,vulkan"

rustup target add aarch64-linux-android x86_64-linux-android
command -v cargo-ndk >/dev/null || cargo install cargo-ndk --locked

# Baseline: armv8-a on arm64 (every 64-bit Arm phone), x86-64 for emulators.
cargo ndk -t arm64-v8a -t x86_64 -P "$ANDROID_API_LEVEL" -o android/build/jniLibs \
  build --profile mobile -p pocketlm-ffi --features "$features"

# Fast arm64: armv8.2-a with int8 dot product and fp16 arithmetic (Cortex-A55/A75
# and newer). Its own target directory, since llama.cpp's CPU kernels differ.
GGML_CPU_ARM_ARCH=armv8.2-a+dotprod+fp16 CARGO_TARGET_DIR="$target_dir/arm64-dotprod" \
  cargo ndk -t arm64-v8a -P "$ANDROID_API_LEVEL" build --profile mobile -p pocketlm-ffi --features "$features"
cp "$target_dir/arm64-dotprod/aarch64-linux-android/mobile/libpocketlm_ffi.so" \
  android/build/jniLibs/arm64-v8a/libpocketlm_ffi_dotprod.so

rm -rf android/build/generated/uniffi/kotlin
cargo run -q -p uniffi-bindgen -- generate --no-format --language kotlin \
  --library "$target_dir/aarch64-linux-android/mobile/libpocketlm_ffi.so" \
  --out-dir android/build/generated/uniffi/kotlin

gradle=gradle
[ -x android/gradlew ] && gradle=android/gradlew
"$gradle" -p android assembleRelease publish
# Named after rootProject.name in android/settings.gradle.kts.
echo "AAR: android/build/outputs/aar/pocketlm-android-release.aar"
echo "Maven repository (AAR, POM, sources): android/build/repo"
