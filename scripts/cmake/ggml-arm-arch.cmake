# Included into llama.cpp's CMake project through CMAKE_PROJECT_INCLUDE (which
# llama-cpp-sys-2 forwards) by scripts/test-arm64.sh. For Linux aarch64 cross
# builds that build script pins GGML_CPU_ARM_ARCH=armv8-a after forwarding the
# GGML_* variables, so the only way to pick ggml's CPU kernels is to overwrite
# the cache entry here. POCKETLM_ARM_ARCH is e.g. armv8.2-a+dotprod+fp16.
if(DEFINED ENV{POCKETLM_ARM_ARCH} AND NOT "$ENV{POCKETLM_ARM_ARCH}" STREQUAL "")
  set(GGML_CPU_ARM_ARCH "$ENV{POCKETLM_ARM_ARCH}" CACHE STRING "ggml CPU -march for Arm" FORCE)
endif()
