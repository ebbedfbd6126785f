#!/usr/bin/env bash
# The small shaped models the tests use (core/tests/shaped.rs, core/tests/vision.rs):
# the Llama 3.2 3B layout cut to 2 layers, the Gemma 3 4B layout cut to 6
# (5 sliding-window layers and 1 global), and its vision projector cut to 1
# encoder block, with broken variants. Written next to the test models;
# reruns are no-ops.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DIR="$(dirname "$(python3 "$HERE/fetch_models.py" --print-path gemma3-270m)")/shaped"
[ -f "$DIR/llama-3.2-3b-2layers.gguf" ] || "$HERE/make-shaped-model" llama-3.2-3b "$DIR/llama-3.2-3b-2layers.gguf" --layers 2
[ -f "$DIR/gemma-3-4b-6layers.gguf" ] || "$HERE/make-shaped-model" gemma-3-4b "$DIR/gemma-3-4b-6layers.gguf" --layers 6
MMPROJ="$DIR/gemma-3-4b-mmproj-1block"
# .v3: bump when shaped_projector.py changes what it writes.
if [ ! -f "$MMPROJ/.v3" ]; then
    mkdir -p "$MMPROJ"
    "$HERE/make-shaped-model" gemma-3-4b-mmproj "$MMPROJ/mmproj.gguf" --blocks 1
    "$HERE/make-shaped-model" gemma-3-4b-mmproj "$MMPROJ/mmproj-old-ffn-names.gguf" --blocks 1 --old-ffn-names
    for kind in shape key-type projection type position-type; do
        "$HERE/make-shaped-model" gemma-3-4b-mmproj "$MMPROJ/bad-$kind.gguf" --blocks 1 --broken "$kind"
    done
    touch "$MMPROJ/.v3"
fi
