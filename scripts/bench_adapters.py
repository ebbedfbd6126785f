#!/usr/bin/env python3
"""Rows of the LoRA adapter benchmark (see bench-adapters.sh): for each adapter
setting, the planner's prediction (`pocketlm plan --json`) and the median of
RUNS real generations (`pocketlm generate --json`: peak RSS, prefill and
decode speed). Usage: bench_adapters.py POCKETLM MODEL RUNS [ADAPTER[@SCALE] ...]
"""
import json
import statistics
import subprocess
import sys
from pathlib import Path

import gguf

# About 700 tokens, so the prompt fills a whole 512-token batch (the planner
# costs a full batch's activations).
PROMPT = ("Phones now carry enough memory and compute to run a small language model on the device itself: "
          "answers arrive without a network, nothing the user types leaves the phone, and each answer costs "
          "nothing to serve. The trade-offs are battery, heat, download size and quality on hard questions. ") * 10 + (
          "Summarise the trade-offs above in three bullet points.")
MIB = 1 << 20


def main() -> None:
    binary, model, runs, *adapters = sys.argv[1:]
    print("| adapters | adapter tensors MiB | predicted adapters MiB | predicted peak MiB | "
          "measured peak RSS MiB | prefill tok/s | decode tok/s |")
    print("|---|---|---|---|---|---|---|")
    for spec in ["none", *adapters]:
        lora = [] if spec == "none" else ["--lora", spec]
        plan = json.loads(subprocess.run([binary, "plan", model, "--ctx", "2048", "--kv-type", "f16", "--json", *lora],
                                         check=True, capture_output=True, text=True).stdout)
        metrics = []
        for _ in range(int(runs)):
            out = subprocess.run([binary, "generate", "--model", model, "--ctx", "2048", "--threads", "2",
                                  "--temperature", "0", "--max-tokens", "32", "--prompt", PROMPT, "--json", *lora],
                                 check=True, capture_output=True, text=True).stdout
            metrics.append(json.loads(out)["metrics"])
        tensors = "-"
        if spec != "none":
            reader = gguf.GGUFReader(spec.split("@")[0])
            tensors = f"{sum(int(t.n_bytes) for t in reader.tensors) / MIB:.1f}"
        label = "none" if spec == "none" else Path(spec).name
        adapter_mib = plan["estimate"].get("adapter_bytes", 0) / MIB
        peak = plan["predicted_peak_bytes"] / MIB
        rss = max(m["peak_rss_bytes"] for m in metrics) / MIB
        prefill = statistics.median(m["prefill_tokens_per_s"] for m in metrics)
        decode = statistics.median(m["decode_tokens_per_s"] for m in metrics)
        print(f"| {label} | {tensors} | {adapter_mib:.1f} | {peak:.0f} | {rss:.0f} | {prefill:.1f} | {decode:.1f} |", flush=True)


if __name__ == "__main__":
    main()
