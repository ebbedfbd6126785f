#!/usr/bin/env bash
# Usage: scripts/hard_limit.sh POCKETLM_BIN MODEL.gguf [LIMIT_BYTES]
#
# Runs PocketLM under a hard memory limit (default 4 GiB), the way a phone's
# low-memory killer would: a memory cgroup (v2 memory.max or v1
# memory.limit_in_bytes, swap off) when this machine allows it (root), else an
# address-space rlimit (prlimit --as). Two runs:
#   1. --budget equal to the limit: must load, generate and exit 0;
#   2. --budget half the weights: must fail with the typed error, exit 1, and
#      never come near the limit (refused before any large allocation).
# Prints one JSON line per run with the exit code, the cgroup's peak usage and
# OOM-kill count, and PocketLM's own output. Exits non-zero if either run
# behaves otherwise. Needs root for cgroups.
set -uo pipefail
BIN="$1"; MODEL="$2"; LIMIT="${3:-$((4 << 30))}"
WEIGHTS=$(stat -c %s "$MODEL")
setup_cgroup() { # a fresh cgroup per run, so no page cache is charged from an earlier one
    NAME="pocketlm-limit-$$-$RANDOM"
    if [ -w /sys/fs/cgroup/cgroup.subtree_control ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
        CG=/sys/fs/cgroup/$NAME; mkdir "$CG" || return 1
        echo "$LIMIT" > "$CG/memory.max"; echo 0 > "$CG/memory.swap.max" 2>/dev/null
        PEAK_FILE=memory.peak; KILLS() { grep -w oom_kill "$CG/memory.events" | cut -d' ' -f2; }
    elif [ -w /sys/fs/cgroup/memory ]; then
        CG=/sys/fs/cgroup/memory/$NAME; mkdir "$CG" || return 1
        echo "$LIMIT" > "$CG/memory.limit_in_bytes"
        echo "$LIMIT" > "$CG/memory.memsw.limit_in_bytes" 2>/dev/null
        PEAK_FILE=memory.max_usage_in_bytes; KILLS() { grep -w oom_kill "$CG/memory.oom_control" | cut -d' ' -f2; }
    else
        return 1
    fi
}

cleanup() { if [ -n "${CG:-}" ]; then rmdir "$CG" 2>/dev/null; CG=""; fi; }
trap cleanup EXIT

run() { # $1 = budget bytes; prints a JSON line, returns the exit code
    local out err code peak=null kills=null
    out=$(mktemp); err=$(mktemp)
    local cmd=("$BIN" generate --model "$MODEL" --budget "$1" --max-tokens 16 --temperature 0 --threads 2 --json --prompt "Say hello.")
    MODE=cgroup
    setup_cgroup || { MODE=rlimit; CG=""; }
    if [ "$MODE" = cgroup ]; then
        sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' sh "$CG" "${cmd[@]}" >"$out" 2>"$err"; code=$?
        peak=$(cat "$CG/$PEAK_FILE"); kills=$(KILLS)
    else
        prlimit --as="$LIMIT" "${cmd[@]}" >"$out" 2>"$err"; code=$?
    fi
    python3 - "$MODE" "$LIMIT" "$1" "$code" "$peak" "$kills" "$out" "$err" <<'PY'
import json, sys
mode, limit, budget, code, peak, kills, out, err = sys.argv[1:]
stdout = open(out).read().strip()
print(json.dumps({"mode": mode, "limit_bytes": int(limit), "budget_bytes": int(budget), "exit_code": int(code),
                  "limit_peak_bytes": None if peak == "null" else int(peak), "oom_kills": None if kills == "null" else int(kills),
                  "stderr": open(err).read().strip()[-400:], "reply": json.loads(stdout) if stdout.startswith("{") else stdout[-400:]}))
PY
    rm -f "$out" "$err"
    cleanup
    return "$code"
}

status=0
run "$LIMIT"; [ $? -eq 0 ] || { echo "FAIL: a load with budget = limit must succeed and generate" >&2; status=1; }
run "$((WEIGHTS / 2))"; code=$?
[ $code -eq 1 ] || { echo "FAIL: an impossible budget must be a typed error (exit 1), got exit $code" >&2; status=1; }
exit $status
