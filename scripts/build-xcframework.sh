#!/usr/bin/env bash
# Builds ios/PocketLMFFI.xcframework: static libraries with the Metal backend
# (Metal shaders embedded) for iOS devices, the iOS simulator (arm64 + x86_64)
# and macOS (arm64 + x86_64), the platforms Package.swift declares, with the C
# header and module map in Headers/pocketlm_ffiFFI/ of every slice
# (scripts/xcframework_layout.py). It also generates the Swift bindings into
# ios/Sources/PocketLMFFI, so the root Package.swift builds on Apple platforms.
# scripts/release-swift-package.sh then zips it for a release.
#
# Needs: macOS with Xcode 16+ (Package.swift is swift-tools-version 6.0;
# xcodebuild, lipo, python3) and rustup. Cannot run on Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
target_dir="${CARGO_TARGET_DIR:-target}"

# Metal on, with the .metallib embedded in the binary (nothing extra to ship).
# Deployment targets as in Package.swift's platforms.
export GGML_METAL=ON GGML_METAL_EMBED_LIBRARY=ON
export IPHONEOS_DEPLOYMENT_TARGET=15.0 MACOSX_DEPLOYMENT_TARGET=12.0
# No OpenMP on Apple (Apple's clang has none). GGML_OPENMP=OFF in the
# environment would not do: the workspace enables llama-cpp-2's `openmp`
# feature, and llama-cpp-sys-2 then defines GGML_OPENMP=ON after the GGML_*
# variables it forwards. It forwards CMAKE_* variables too, and this one makes
# ggml's find_package(OpenMP) fail, which leaves OpenMP out.
export CMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON

for t in "${targets[@]}"; do
  case "$t" in
    aarch64-apple-ios)     sdk=iphoneos        arch=arm64  min=$IPHONEOS_DEPLOYMENT_TARGET ;;
    aarch64-apple-ios-sim) sdk=iphonesimulator arch=arm64  min=$IPHONEOS_DEPLOYMENT_TARGET ;;
    x86_64-apple-ios)      sdk=iphonesimulator arch=x86_64 min=$IPHONEOS_DEPLOYMENT_TARGET ;;
    aarch64-apple-darwin)  sdk=macosx          arch=arm64  min=$MACOSX_DEPLOYMENT_TARGET ;;
    x86_64-apple-darwin)   sdk=macosx          arch=x86_64 min=$MACOSX_DEPLOYMENT_TARGET ;;
  esac
  # The SDK per target for llama.cpp's CMake build (passed on by llama-cpp-sys-2);
  # without it CMake compiles the simulator slices against the device SDK.
  # These are not part of the build script's fingerprint: after changing them,
  # `cargo clean --profile mobile --target <target>`.
  CMAKE_OSX_SYSROOT="$sdk" CMAKE_OSX_ARCHITECTURES="$arch" CMAKE_OSX_DEPLOYMENT_TARGET="$min" \
    cargo build --profile mobile -p pocketlm-ffi --features metal --target "$t"
done

lib() { echo "$target_dir/$1/mobile/libpocketlm_ffi.a"; }
out=build/apple
rm -rf "$out" ios/PocketLMFFI.xcframework
mkdir -p "$out/ios-sim" "$out/macos"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$out/ios-sim/libpocketlm_ffi.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$out/macos/libpocketlm_ffi.a"

cargo run -q -p uniffi-bindgen -- generate --no-format --language swift \
  --library "$(lib aarch64-apple-ios)" --out-dir "$out/swift"
mkdir -p ios/Sources/PocketLMFFI
cp "$out/swift/PocketLMFFI.swift" ios/Sources/PocketLMFFI/
python3 scripts/xcframework_layout.py headers "$out/swift" "$out/headers"

xcodebuild -create-xcframework \
  -library "$(lib aarch64-apple-ios)" -headers "$out/headers" \
  -library "$out/ios-sim/libpocketlm_ffi.a" -headers "$out/headers" \
  -library "$out/macos/libpocketlm_ffi.a" -headers "$out/headers" \
  -output ios/PocketLMFFI.xcframework
python3 scripts/xcframework_layout.py verify ios/PocketLMFFI.xcframework
echo "XCFramework: ios/PocketLMFFI.xcframework (for a release: scripts/release-swift-package.sh)"
