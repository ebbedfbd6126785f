#!/usr/bin/env bash
# Every native library an Android app receives from PocketLM must load with
# 16 KB pages (Google Play's requirement for 64-bit ABIs since Android 15):
# JNA's libjnidispatch.so from the AAR the library depends on (the version in
# android/build.gradle.kts, fetched from Maven Central, SHA-256 pinned here),
# and PocketLM's own libpocketlm_ffi.so for Android whenever it has been built
# (scripts/build-android.sh; no NDK on the CI machine). scripts/check_page_alignment.py
# reads the ELF headers.
set -euo pipefail
cd "$(dirname "$0")/.."
JNA="$(sed -n 's/.*net.java.dev.jna:jna:\([0-9.]*\)@aar.*/\1/p' android/build.gradle.kts)"
declare -A SHA256=(
    [5.17.0]=4dbeffffa665d97ad5aa7eee297531d3c841a86716ab7f774fd6956422b3cf38
)
[ -n "${SHA256[$JNA]:-}" ] || { echo "check-16k-pages: no pinned SHA-256 for JNA $JNA: add it here after checking its AAR" >&2; exit 1; }
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/maven"
AAR="$CACHE/jna-$JNA.aar"
if [ ! -f "$AAR" ] || ! echo "${SHA256[$JNA]}  $AAR" | sha256sum -c --quiet 2>/dev/null; then
    mkdir -p "$CACHE"
    python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
        "https://repo1.maven.org/maven2/net/java/dev/jna/jna/$JNA/jna-$JNA.aar" "$AAR.tmp"
    echo "${SHA256[$JNA]}  $AAR.tmp" | sha256sum -c --quiet || { echo "check-16k-pages: jna-$JNA.aar does not match its pinned SHA-256" >&2; exit 1; }
    mv "$AAR.tmp" "$AAR"
fi
FILES=("$AAR")
for dir in "${CARGO_TARGET_DIR:-target}" android/src/main/jniLibs; do
    while IFS= read -r so; do FILES+=("$so"); done < <(find "$dir" -path '*-linux-android*' -name 'libpocketlm_ffi.so' 2>/dev/null; find "$dir" -path '*jniLibs*' -name '*.so' 2>/dev/null)
done
python3 scripts/check_page_alignment.py --self-test
python3 scripts/check_page_alignment.py "${FILES[@]}"
