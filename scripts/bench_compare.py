#!/usr/bin/env python3
"""PocketLM vs llama.cpp's llama-bench vs llama-cpp-python, interleaved.

Same model, same threads, same prompt and generation lengths (pp512, tg128 by
default), greedy decoding; generation always follows the prompt (llama-bench
decodes at depth pp via -d). Each round runs the three tools one after another as
separate processes, in an order that rotates every round, so slow drifts of the
machine (thermal, page cache, neighbours) hit all three alike. The median over
rounds is reported. Peers come from scripts/build-peers.sh.

Usage: bench_compare.py --pocketlm BIN --llama-bench BIN --peer-python PY [--llama-bench-same BIN]
                        [--rounds 3] [--threads 2] [--pp 512] [--tg 128] [--jsonl OUT] MODEL.gguf
--llama-bench-same adds llama-bench built from PocketLM's own llama.cpp.
"""
import argparse
import json
import statistics
import subprocess
import sys
import textwrap

PEER = textwrap.dedent("""
    import json, sys, time
    import llama_cpp
    from llama_cpp import Llama
    model, pp, tg, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    llm = Llama(model_path=model, n_ctx=pp + tg + 16, n_batch=512, n_ubatch=512, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    text = "The quick brown fox jumps over the lazy dog while the river runs past old stone bridges. " * 200
    prompt = llm.tokenize(text.encode(), add_bos=True)[:pp]
    def once():
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        tok = llm.sample(temp=0.0)
        ttft = time.perf_counter() - t0
        t2 = time.perf_counter()
        for _ in range(tg - 1):
            llm.eval([tok])
            tok = llm.sample(temp=0.0)
        t3 = time.perf_counter()
        return {"prefill_tokens_per_s": pp / (t1 - t0), "decode_tokens_per_s": (tg - 1) / (t3 - t2), "ttft_ms": ttft * 1000}
    once()  # warm-up, as pocketlm bench does
    r = once()
    r["version"] = llama_cpp.__version__
    print(json.dumps(r))
""")


def llama_bench(binary, model, pp, tg, threads):
    """Prefill: pp tokens into an empty cache. Decode: tg tokens at depth pp
    (-d), i.e. after the prompt, as PocketLM and llama-cpp-python decode."""
    def run(*args):
        out = subprocess.run([binary, "-m", model, "-t", str(threads), "-r", "1", "-o", "json", *args],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)[0]
    prefill = run("-p", str(pp), "-n", "0")
    decode = run("-p", "0", "-n", str(tg), "-d", str(pp))
    return {"prefill_tokens_per_s": prefill["avg_ts"], "decode_tokens_per_s": decode["avg_ts"],
            "build": prefill.get("build_commit", "?"), "flash_attn": prefill.get("flash_attn"),
            "n_batch": prefill.get("n_batch"), "n_ubatch": prefill.get("n_ubatch")}


def pocketlm(binary, model, pp, tg, threads):
    out = subprocess.run([binary, "bench", "--model", model, "--prompt-tokens", str(pp), "--gen-tokens", str(tg),
                          "--runs", "1", "--threads", str(threads), "--json"], check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    return {k: r[k] for k in ("prefill_tokens_per_s", "decode_tokens_per_s", "ttft_ms", "weights")}


def peer(python, model, pp, tg, threads):
    out = subprocess.run([python, "-c", PEER, model, str(pp), str(tg), str(threads)], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--pocketlm", required=True)
    p.add_argument("--llama-bench", required=True)
    p.add_argument("--peer-python", required=True)
    p.add_argument("--llama-bench-same")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pp", type=int, default=512)
    p.add_argument("--tg", type=int, default=128)
    p.add_argument("--jsonl")
    a = p.parse_args()
    tools = [("llama-bench", lambda: llama_bench(a.llama_bench, a.model, a.pp, a.tg, a.threads)),
             ("PocketLM", lambda: pocketlm(a.pocketlm, a.model, a.pp, a.tg, a.threads)),
             ("llama-cpp-python", lambda: peer(a.peer_python, a.model, a.pp, a.tg, a.threads))]
    if a.llama_bench_same:
        tools.append(("llama-bench (PocketLM's llama.cpp)", lambda: llama_bench(a.llama_bench_same, a.model, a.pp, a.tg, a.threads)))
    results = {name: [] for name, _ in tools}
    for round_ in range(a.rounds):
        k = round_ % len(tools)
        for name, fn in tools[k:] + tools[:k]:
            r = fn()
            r.update(tool=name, round=round_ + 1, model=a.model.rsplit("/", 1)[-1])
            print(json.dumps(r), file=sys.stderr)
            if a.jsonl:
                with open(a.jsonl, "a") as f:
                    f.write(json.dumps(r) + "\n")
            results[name].append(r)
    med = {name: {k: statistics.median(r[k] for r in rs) for k in ("prefill_tokens_per_s", "decode_tokens_per_s")}
           for name, rs in results.items()}
    base = med["llama-bench"]
    print(f"model: {a.model.rsplit('/', 1)[-1]}, threads {a.threads}, pp{a.pp} / tg{a.tg}, median of {a.rounds} interleaved rounds")
    print("llama-bench and llama-cpp-python: llama.cpp of llama-cpp-python 0.3.36 (ggml 0.25.3); PocketLM: llama-cpp-2 0.1.160 (ggml 0.26.0)")
    print("| tool | prefill tok/s | decode tok/s | prefill vs llama-bench | decode vs llama-bench |")
    print("|---|---|---|---|---|")
    for name in results:
        m = med[name]
        print(f"| {name} | {m['prefill_tokens_per_s']:.1f} | {m['decode_tokens_per_s']:.2f} "
              f"| {m['prefill_tokens_per_s'] / base['prefill_tokens_per_s']:.3f} | {m['decode_tokens_per_s'] / base['decode_tokens_per_s']:.3f} |")
    ours, peer_ = med["PocketLM"], med["llama-cpp-python"]
    ok = (ours["prefill_tokens_per_s"] >= 0.98 * base["prefill_tokens_per_s"] and ours["decode_tokens_per_s"] >= 0.98 * base["decode_tokens_per_s"]
          and ours["prefill_tokens_per_s"] >= peer_["prefill_tokens_per_s"] and ours["decode_tokens_per_s"] >= peer_["decode_tokens_per_s"])
    print(f"targets (>= 0.98x llama-bench, >= llama-cpp-python): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
