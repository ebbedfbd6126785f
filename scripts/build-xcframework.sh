#!/usr/bin/env bash
# Builds ios/PocketLMFFI.xcframework (device + simulator static libraries with
# the Metal backend, Metal shaders embedded) and generates the Swift bindings
# into ios/Sources/PocketLMFFI, so the root Package.swift builds on Apple.
#
# Needs: macOS with Xcode 15+ (xcodebuild, lipo) and rustup. Cannot run on Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
rustup target add "${targets[@]}"

# Metal on, with the .metallib embedded in the binary (nothing extra to ship).
export GGML_METAL=ON GGML_METAL_EMBED_LIBRARY=ON
export IPHONEOS_DEPLOYMENT_TARGET=15.0
for t in "${targets[@]}"; do
  cargo build --profile mobile -p pocketlm-ffi --features metal --target "$t"
done

out=build/apple
rm -rf "$out" ios/PocketLMFFI.xcframework
mkdir -p "$out/sim" "$out/headers"
lipo -create target/aarch64-apple-ios-sim/mobile/libpocketlm_ffi.a target/x86_64-apple-ios/mobile/libpocketlm_ffi.a \
  -output "$out/sim/libpocketlm_ffi.a"

cargo run -q -p uniffi-bindgen -- generate --no-format --language swift \
  --library target/aarch64-apple-ios/mobile/libpocketlm_ffi.a --out-dir "$out/swift"
mkdir -p ios/Sources/PocketLMFFI
cp "$out/swift/PocketLMFFI.swift" ios/Sources/PocketLMFFI/
cp "$out/swift/pocketlm_ffiFFI.h" "$out/headers/"
cp "$out/swift/pocketlm_ffiFFI.modulemap" "$out/headers/module.modulemap"

xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/mobile/libpocketlm_ffi.a -headers "$out/headers" \
  -library "$out/sim/libpocketlm_ffi.a" -headers "$out/headers" \
  -output ios/PocketLMFFI.xcframework
echo "XCFramework: ios/PocketLMFFI.xcframework (checksum for a release: swift package compute-checksum on its zip)"
