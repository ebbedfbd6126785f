#!/usr/bin/env bash
# Builds the Android AAR: libpocketlm_ffi.so for arm64-v8a and x86_64 with
# cargo-ndk (C++ runtime linked statically, 16 KB page alignment from
# .cargo/config.toml), a second arm64-v8a library with ggml's dot-product and
# fp16 kernels (libpocketlm_ffi_dotprod.so, picked at run time by
# dev.pocketlm.NativeLibrary on CPUs that have both), the uniffi Kotlin
# bindings, then the Gradle library.
#
# POCKETLM_VULKAN=1 adds the Vulkan backend (used only when the app asks for
# the GPU and the device passes the probe). It needs Vulkan-Hpp headers and
# SPIR-V headers on the host (VULKAN_INCLUDE_DIR, SPIRV_HEADERS_DIR) and glslc
# on PATH; see docs/backends.md.
#
# Needs: the Android NDK (r27 or newer; ANDROID_NDK_HOME), the Android SDK
# (ANDROID_HOME), JDK 17, Gradle 8.9+, and rustup. Cannot run without the NDK.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to an Android NDK (r27+)}"
API_LEVEL="${ANDROID_API_LEVEL:-26}"
features=android
[ "${POCKETLM_VULKAN:-0}" = 1 ] && features="android,vulkan"

rustup target add aarch64-linux-android x86_64-linux-android
command -v cargo-ndk >/dev/null || cargo install cargo-ndk --locked

# Baseline: armv8-a on arm64 (every 64-bit Arm phone), x86-64 for emulators.
cargo ndk -t arm64-v8a -t x86_64 -P "$API_LEVEL" -o android/build/jniLibs \
  build --profile mobile -p pocketlm-ffi --features "$features"

# Fast arm64: armv8.2-a with int8 dot product and fp16 arithmetic (Cortex-A55/A75
# and newer). Its own target directory, since llama.cpp's CPU kernels differ.
GGML_CPU_ARM_ARCH=armv8.2-a+dotprod+fp16 CARGO_TARGET_DIR=target/arm64-dotprod \
  cargo ndk -t arm64-v8a -P "$API_LEVEL" build --profile mobile -p pocketlm-ffi --features "$features"
cp target/arm64-dotprod/aarch64-linux-android/mobile/libpocketlm_ffi.so \
  android/build/jniLibs/arm64-v8a/libpocketlm_ffi_dotprod.so

rm -rf android/build/generated/uniffi/kotlin
cargo run -q -p uniffi-bindgen -- generate --no-format --language kotlin \
  --library target/aarch64-linux-android/mobile/libpocketlm_ffi.so \
  --out-dir android/build/generated/uniffi/kotlin

gradle -p android assembleRelease
echo "AAR: android/build/outputs/aar/android-release.aar"
