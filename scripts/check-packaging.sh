#!/usr/bin/env bash
# The mobile packaging, checked without building (no NDK, Gradle or Xcode on
# this machine): the XCFramework's header and module map layout, the NDK
# variables build-android.sh exports, the Gradle publication and wrapper,
# Package.swift's platforms and privacy manifest, and the Swift release script.
# scripts/check_packaging.py does the work; each check prints a line.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/check_packaging.py
