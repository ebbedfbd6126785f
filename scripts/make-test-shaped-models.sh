#!/usr/bin/env bash
# The small shaped models the tests use (core/tests/shaped.rs): the Llama 3.2 3B
# layout cut to 2 layers and the Gemma 3 4B layout cut to 6 (5 sliding-window
# layers and 1 global). Written next to the test models; reruns are no-ops.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DIR="$(dirname "$(python3 "$HERE/fetch_models.py" --print-path gemma3-270m)")/shaped"
[ -f "$DIR/llama-3.2-3b-2layers.gguf" ] || "$HERE/make-shaped-model" llama-3.2-3b "$DIR/llama-3.2-3b-2layers.gguf" --layers 2
[ -f "$DIR/gemma-3-4b-6layers.gguf" ] || "$HERE/make-shaped-model" gemma-3-4b "$DIR/gemma-3-4b-6layers.gguf" --layers 6
