#!/usr/bin/env python3
"""Predicted vs measured peak RSS: runs `pocketlm bench` for each model x KV
type x context and prints a Markdown table (one process per configuration, so
each peak RSS is that configuration's own).

Usage: bench_memory.py [--pocketlm BIN] [--threads N] MODEL.gguf [MODEL.gguf ...]
       bench_memory.py --from-jsonl FILE   (format results saved earlier)
"""
import argparse
import json
import subprocess
import sys

CONTEXTS = [1000, 2000, 4000]  # prompt tokens; bench's context is the next multiple of 256 above prompt+gen+16
KV_TYPES = ["f16", "q8_0"]


def run(binary, model, prompt_tokens, kv, threads):
    out = subprocess.run(
        [binary, "bench", "--model", model, "--prompt-tokens", str(prompt_tokens), "--gen-tokens", "8",
         "--runs", "1", "--threads", str(threads), "--kv-type", kv, "--json"],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def table(rows):
    mib = 1 << 20
    lines = ["| model | context | KV type | predicted peak (MiB) | measured peak RSS (MiB) | error |", "|---|---|---|---|---|---|"]
    for r in rows:
        pred, meas = r["predicted_peak_bytes"], r["peak_rss_bytes"]
        lines.append(f"| {r['model']} | {r['context_length']} | {r['kv_type']} | {pred / mib:.1f} | {meas / mib:.1f} | {100 * (pred / meas - 1):+.1f} % |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*")
    p.add_argument("--pocketlm", default="pocketlm")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--from-jsonl")
    a = p.parse_args()
    if a.from_jsonl:
        rows = [json.loads(line) for line in open(a.from_jsonl) if line.strip()]
    else:
        rows = [run(a.pocketlm, m, c, kv, a.threads) for m in a.models for kv in KV_TYPES for c in CONTEXTS]
        for r in rows:
            print(json.dumps(r), file=sys.stderr)
    print(table(rows))


if __name__ == "__main__":
    main()
