# Sourced by the scripts: one shared build directory outside the repository,
# so every clone (and CI on the same machine) reuses the llama.cpp build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/target}"
