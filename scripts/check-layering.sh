#!/usr/bin/env bash
# The layering check (docs/architecture.md): fails when
#   - an `unsafe` block or a llama.cpp call (llama_cpp_2, llama_cpp_sys_2)
#     appears outside the engine layer (core/src/engine/);
#   - a crate other than the core depends on llama.cpp directly;
#   - the pure layer (pocketlm-base) depends on llama.cpp;
#   - the core, or the bindings, built without the `cloud` feature pull in an
#     HTTP, TLS or async-runtime crate (reqwest, hyper, rustls, tokio).
# The compiler enforces the first rule too (`#![deny(unsafe_code)]` in the
# core with one `#[allow]` on the engine module, `#![forbid(unsafe_code)]` in
# pocketlm-base); this check also covers the bindings and the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
failures=0
fail() { echo "layering: FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "layering: ok   $*"; }

# Rust sources outside the engine layer, comments stripped.
outside_engine() {
  find core/src core/base/src bindings/src sample-apps/cli/src -name '*.rs' -not -path 'core/src/engine/*' -print0 |
    xargs -0 grep -nE "$1" | grep -vE '^[^:]+:[0-9]+:\s*//' || true
}
hits="$(outside_engine '\bunsafe\b')"
if [ -n "$hits" ]; then fail "unsafe outside core/src/engine:"$'\n'"$hits"; else pass "no unsafe outside core/src/engine"; fi
hits="$(outside_engine '\bllama_cpp_(2|sys_2)\b')"
if [ -n "$hits" ]; then fail "llama.cpp used outside core/src/engine:"$'\n'"$hits"; else pass "no llama.cpp call outside core/src/engine"; fi

# Who depends on llama.cpp directly.
direct="$(cargo tree --workspace -e normal,build -i llama-cpp-2 --depth 1 --prefix none 2>/dev/null | sed 1d | awk '{print $1}' | sort -u | tr '\n' ' ')"
if [ "$direct" = "pocketlm " ]; then pass "only the core depends on llama-cpp-2"; else fail "llama-cpp-2 is a direct dependency of: $direct"; fi
if cargo tree -p pocketlm-base -e normal --prefix none | grep -q '^llama-cpp'; then
  fail "pocketlm-base depends on llama.cpp"
else
  pass "pocketlm-base does not depend on llama.cpp"
fi

# Networking only with the `cloud` feature.
net='^(reqwest|hyper|rustls|tokio) '
check_net() { # <label> <expect: none|some> <cargo tree args...>
  local label="$1" expect="$2"
  shift 2
  local found
  found="$(cargo tree "$@" -e normal --prefix none | grep -E "$net" | awk '{print $1}' | sort -u | tr '\n' ' ' || true)"
  if [ "$expect" = none ] && [ -n "$found" ]; then fail "$label pulls in $found"; return; fi
  if [ "$expect" = some ] && [ -z "$found" ]; then fail "$label has no HTTP stack: the check itself is broken"; return; fi
  pass "$label: ${found:-no reqwest, hyper, rustls or tokio}"
}
check_net "core without cloud" none -p pocketlm
check_net "bindings without cloud" none -p pocketlm-ffi --no-default-features
check_net "core with cloud" some -p pocketlm --features cloud

echo "layering check: $((7 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
