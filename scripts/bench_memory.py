#!/usr/bin/env python3
"""Predicted vs measured peak RSS: runs `pocketlm bench` once per model x KV
type x context (one process each, so each peak RSS is that configuration's
own) with a full 512-token prompt batch, and prints a Markdown table.

Usage: bench_memory.py [--pocketlm BIN] [--threads N] [--contexts 2048,4096,8192]
                       [--kv-types f16,q8_0] [--jsonl OUT] MODEL.gguf [MODEL.gguf ...]
       bench_memory.py --from-jsonl FILE   (format results saved earlier)
"""
import argparse
import json
import subprocess
import sys

MIB = 1 << 20
GIB = 1 << 30


def run(binary, model, ctx, kv, threads):
    out = subprocess.run(
        [binary, "bench", "--model", model, "--prompt-tokens", "512", "--gen-tokens", "8", "--runs", "1",
         "--threads", str(threads), "--kv-type", kv, "--ctx", str(ctx), "--json"],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def table(rows):
    lines = ["| model | context | KV type | weights | predicted peak (MiB) | measured peak RSS (MiB) | measured (GiB) | error |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pred, meas = r["predicted_peak_bytes"], r["peak_rss_bytes"]
        lines.append(f"| {r['model']} | {r['context_length']} | {r['kv_type']} | {r.get('weights', 'mmap')} | {pred / MIB:.0f} "
                     f"| {meas / MIB:.0f} | {meas / GIB:.2f} | {100 * (pred / meas - 1):+.1f} % |")
    worst = max(abs(r["predicted_peak_bytes"] / r["peak_rss_bytes"] - 1) for r in rows)
    lines.append("")
    lines.append(f"Largest prediction error: {100 * worst:.1f} % over {len(rows)} configurations.")
    return "\n".join(lines), worst


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*")
    p.add_argument("--pocketlm", default="pocketlm")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--contexts", default="2048,4096,8192")
    p.add_argument("--kv-types", default="f16,q8_0")
    p.add_argument("--jsonl", help="also append each raw result to this file")
    p.add_argument("--from-jsonl")
    a = p.parse_args()
    if a.from_jsonl:
        rows = [json.loads(line) for line in open(a.from_jsonl) if line.strip()]
    else:
        rows = []
        for m in a.models:
            for kv in a.kv_types.split(","):
                for ctx in a.contexts.split(","):
                    r = run(a.pocketlm, m, int(ctx), kv, a.threads)
                    print(json.dumps(r), file=sys.stderr)
                    if a.jsonl:
                        with open(a.jsonl, "a") as f:
                            f.write(json.dumps(r) + "\n")
                    rows.append(r)
    text, worst = table(rows)
    print(text)
    sys.exit(0 if worst <= 0.10 else 1)


if __name__ == "__main__":
    main()
