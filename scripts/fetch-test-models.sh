#!/usr/bin/env bash
# Download, assemble and SHA-256-verify the real test models into the user cache.
# Repeated runs do nothing. See scripts/fetch_models.py for options.
set -euo pipefail
exec python3 "$(dirname "$0")/fetch_models.py" "$@"
