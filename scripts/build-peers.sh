#!/usr/bin/env bash
# Build the peers PocketLM is benchmarked against, outside the repo, from the
# llama-cpp-python 0.3.36 source distribution (which vendors llama.cpp with
# ggml 0.25.3): llama.cpp's own llama-bench, and llama-cpp-python installed in
# a private virtualenv. Also llama-bench from the llama.cpp that PocketLM
# itself links (vendored by llama-cpp-sys-2 0.1.160, ggml 0.26.0), to tell
# binding overhead apart from llama.cpp version differences. All use
# PocketLM's x86-64 instruction set (AVX2, FMA, F16C, BMI2, OpenMP) so the
# comparison is like for like. Reruns are no-ops.
#
# Prints LLAMA_BENCH=<path>, LLAMA_BENCH_SAME=<path> and PEER_PYTHON=<path>.
set -euo pipefail
VERSION=0.3.36
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
ROOT="${POCKETLM_BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/bench-src}"
SRC="$ROOT/llama_cpp_python-$VERSION"
FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_OPENMP=ON"
mkdir -p "$ROOT"

if [ ! -d "$SRC" ]; then
    pip download --quiet --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$ROOT" >&2
    echo "$SHA256  $ROOT/llama_cpp_python-$VERSION.tar.gz" | sha256sum -c --quiet - >&2
    tar xzf "$ROOT/llama_cpp_python-$VERSION.tar.gz" -C "$ROOT"
fi

BENCH="$ROOT/build-llama-bench/bin/llama-bench"
if [ ! -x "$BENCH" ]; then
    # shellcheck disable=SC2086
    cmake -S "$SRC/vendor/llama.cpp" -B "$ROOT/build-llama-bench" -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF $FLAGS >&2
    cmake --build "$ROOT/build-llama-bench" --target llama-bench -j"$(nproc)" >&2
fi

# llama-cpp-sys-2 ships llama.cpp without its tools, so the sdist's
# llama-bench sources are built against PocketLM's llama.cpp (a copy).
SAME_SRC="$ROOT/llama.cpp-0.26"
SAME="$ROOT/build-llama-bench-0.26/bin/llama-bench"
if [ ! -x "$SAME" ]; then
    VENDORED="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-0.1.160/llama.cpp | head -1)"
    [ -d "$VENDORED" ] || { echo "llama-cpp-sys-2 0.1.160 is not in the cargo registry: build PocketLM first" >&2; exit 1; }
    rm -rf "$SAME_SRC" && cp -r "$VENDORED" "$SAME_SRC"
    rm -rf "$SAME_SRC/tools/llama-bench" && cp -r "$SRC/vendor/llama.cpp/tools/llama-bench" "$SAME_SRC/tools/"
    echo "add_subdirectory(llama-bench)" > "$SAME_SRC/tools/CMakeLists.txt"
    # shellcheck disable=SC2086
    cmake -S "$SAME_SRC" -B "$ROOT/build-llama-bench-0.26" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF $FLAGS >&2
    cmake --build "$ROOT/build-llama-bench-0.26" --target llama-bench -j"$(nproc)" >&2
fi

VENV="$ROOT/venv"
if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
    python3 -m venv "$VENV" >&2 || { apt-get install -y python3-venv >&2 && python3 -m venv "$VENV" >&2; }
    CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$VENV/bin/pip" install --quiet "$ROOT/llama_cpp_python-$VERSION.tar.gz" >&2
fi

echo "LLAMA_BENCH=$BENCH"
echo "LLAMA_BENCH_SAME=$SAME"
echo "PEER_PYTHON=$VENV/bin/python"
