#!/usr/bin/env bash
# Prepares a Debian trixie root filesystem with Swift 6 (package swiftlang) for
# running the Swift package's tests on Linux. Cached outside the repository;
# a ready rootfs is reused. Prints the rootfs path on stdout.
# Needs root (debootstrap, chroot). About 2.7 GB and a few minutes the first time.
set -euo pipefail
ROOT="${POCKETLM_SWIFT_ROOTFS:-${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/swift-trixie}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# usr/bin/swift is an absolute symlink (update-alternatives) that only
# resolves inside the rootfs: test the binary it points to.
if [ -x "$ROOT/usr/libexec/swift/bin/swift" ] && [ -f "$ROOT/.pocketlm-ready" ]; then
  echo "$ROOT"
  exit 0
fi
command -v debootstrap >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}
partial="$ROOT.partial"
rm -rf "$partial"
mkdir -p "$(dirname "$ROOT")"
echo "pocketlm: debootstrapping Debian trixie into $partial" >&2
debootstrap --variant=minbase trixie "$partial" "$MIRROR" >&2
echo "pocketlm: installing swiftlang in the rootfs" >&2
chroot "$partial" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c \
  "apt-get update -qq && apt-get install -y -qq --no-install-recommends swiftlang libc6-dev libstdc++-14-dev libgcc-14-dev libgomp1 >/dev/null && apt-get clean" >&2
touch "$partial/.pocketlm-ready"
rm -rf "$ROOT"
mv "$partial" "$ROOT"
echo "$ROOT"
