#!/usr/bin/env bash
# Prepares a Swift Package release of ios/PocketLMFFI.xcframework (built by
# scripts/build-xcframework.sh): zips it, computes its checksum, and writes
# build/release/Package.swift, the root Package.swift with the binary target
# switched to the zip's URL and checksum. That Package.swift and the generated
# bindings (ios/Sources/PocketLMFFI, ignored on main) go on the release tag only.
#
# Usage: scripts/release-swift-package.sh VERSION ZIP_URL
#   ZIP_URL: where the zip will be downloaded from, e.g.
#   https://github.com/OWNER/pocketlm/releases/download/0.1.0/PocketLMFFI.xcframework.zip
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 VERSION ZIP_URL" >&2; exit 2; }
version="$1" url="$2" out=build/release
for f in ios/PocketLMFFI.xcframework/Info.plist ios/Sources/PocketLMFFI/PocketLMFFI.swift; do
  [ -f "$f" ] || { echo "release-swift-package: no $f; run scripts/build-xcframework.sh first" >&2; exit 1; }
done
local_target='.binaryTarget(name: "pocketlm_ffiFFI", path: "ios/PocketLMFFI.xcframework")'
grep -qF "$local_target" Package.swift || { echo "release-swift-package: Package.swift has no $local_target" >&2; exit 1; }

rm -rf "$out" && mkdir -p "$out"
zip="$PWD/$out/PocketLMFFI.xcframework.zip"
if command -v ditto >/dev/null; then
  ditto -c -k --sequesterRsrc --keepParent ios/PocketLMFFI.xcframework "$zip"
else
  (cd ios && zip -qry "$zip" PocketLMFFI.xcframework)
fi
if command -v swift >/dev/null; then
  checksum="$(swift package compute-checksum "$zip")"
else
  checksum="$(sha256sum "$zip" | cut -d' ' -f1)" # what compute-checksum computes
fi

package="$(cat Package.swift)"
printf '%s\n' "${package/"$local_target"/".binaryTarget(name: \"pocketlm_ffiFFI\", url: \"$url\", checksum: \"$checksum\")"}" \
  > "$out/Package.swift"
echo "Release $version: $out/PocketLMFFI.xcframework.zip (checksum $checksum), upload it to $url"
echo "Then commit the release variant on a detached HEAD and tag it (main keeps the local binary target):"
echo "  git switch --detach && cp $out/Package.swift Package.swift && git add -f Package.swift ios/Sources/PocketLMFFI \\"
echo "    && git commit -m 'PocketLM $version' && git tag $version && git switch -"
