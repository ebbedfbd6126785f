#!/usr/bin/env bash
# Builds the Android AAR: libpocketlm_ffi.so for arm64-v8a and x86_64 with
# cargo-ndk (C++ runtime linked statically, 16 KB page alignment from
# .cargo/config.toml), the uniffi Kotlin bindings, then the Gradle library.
#
# Needs: the Android NDK (r27 or newer; ANDROID_NDK_HOME), the Android SDK
# (ANDROID_HOME), JDK 17, Gradle 8.9+, and rustup. Cannot run without the NDK.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to an Android NDK (r27+)}"
API_LEVEL="${ANDROID_API_LEVEL:-26}"

rustup target add aarch64-linux-android x86_64-linux-android
command -v cargo-ndk >/dev/null || cargo install cargo-ndk --locked

cargo ndk -t arm64-v8a -t x86_64 -P "$API_LEVEL" -o android/build/jniLibs \
  build --profile mobile -p pocketlm-ffi --features android

rm -rf android/build/generated/uniffi/kotlin
cargo run -q -p uniffi-bindgen -- generate --no-format --language kotlin \
  --library target/aarch64-linux-android/mobile/libpocketlm_ffi.so \
  --out-dir android/build/generated/uniffi/kotlin

gradle -p android assembleRelease
echo "AAR: android/build/outputs/aar/android-release.aar"
