# Sourced by test-arm64.sh and test-vulkan.sh: the pieces both use to compare
# another build's greedy answer with this host's CPU-only build.

# reference_answer OUT LABEL: runs the greedy-answer test on the host's
# CPU-only build and saves its answer to OUT; on failure, shows the log and exits.
reference_answer() {
  local out="$1" label="$2" log
  log="$(dirname "$out")/reference.log"
  POCKETLM_PARITY_OUT="$out" cargo test -q -p pocketlm --test backends -- the_greedy_answer >"$log" 2>&1 || true
  grep -E "test result|FAILED|panicked" "$log" || true
  test -s "$out" || { tail -40 "$log" >&2; echo "no $label reference answer" >&2; exit 1; }
}

# executable_of NAME: reads cargo's --message-format=json output on stdin and
# prints the path of the executable built for target NAME.
executable_of() {
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"
}
