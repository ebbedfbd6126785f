# Sourced by the scripts: one shared build directory outside the repository,
# so every clone (and CI on the same machine) reuses the llama.cpp build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pocketlm/target}"
# llama.cpp's CMake compiles through ccache when it is installed. Leaving the
# build directory out of the hash lets the CPU, Arm-variant and Vulkan builds
# (each in its own directory) share the objects they have in common.
export CCACHE_NOHASHDIR=1
# Hash the compiler by content, not by its timestamp, so a build in another
# root filesystem with the same gcc (the fresh-machine check) hits the cache.
export CCACHE_COMPILERCHECK="${CCACHE_COMPILERCHECK:-content}"
