#!/usr/bin/env python3
"""LoRA test adapters for the Qwen2.5 0.5B test model, and broken ones.

No PyPI package ships a LoRA adapter in GGUF, and training one needs torch
and PEFT (gigabytes of wheels). The tests check what an adapter must do, not
what it was trained for, so this script writes adapters in llama.cpp's LoRA
layout (what convert_lora_to_gguf.py writes) with the `gguf` package: random
matrices from a fixed seed, shaped from the base model's own tensor table.

Good adapters (all F32, so their effect can be computed exactly):
  qwen-lora-attn.gguf          rank 4, alpha 8, on every layer's attn_q and attn_v
  qwen-lora-attn-alpha16.gguf  the same matrices with alpha 16 (at scale 1 it
                               equals qwen-lora-attn.gguf at scale 2)
  qwen-lora-ffn.gguf           rank 2, alpha 4, on attn_q and ffn_down
  qwen-lora-sum.gguf           rank 6, alpha 12: attn and ffn stacked along the
                               rank, so at scale 1 it equals the two together
  qwen-lora-output.gguf        rank 2, alpha 2, on output.weight (the logits
                               change by exactly B·A·h, h the final hidden state)
  qwen-lora-tiny.gguf          rank 1 on blk.0.attn_v (4 KB: a fuzzing seed)
Adapters PocketLM must refuse before llama.cpp sees them:
  qwen-lora-bad-arch.gguf      made for gemma3
  qwen-lora-bad-shape.gguf     attn_q's lora_a is 512 wide, not 896
  qwen-lora-bad-alpha.gguf     adapter.lora.alpha as UINT32 (llama.cpp asserts
                               the type and aborts the process)
  qwen-lora-bad-embd.gguf      token_embd halves of ranks 4 and 8 (llama.cpp
                               loads it, then aborts at the first decode)

They go to <model cache>/lora/; runs with everything in place do nothing.
fetch_models.py calls it for qwen2.5-0.5b-lora (part of `all`).
Usage: lora_adapters.py [--dir DIR] [--bench-rank N ...]
(--bench-rank writes a realistic adapter, rank N on every linear layer in F16,
for scripts/bench-adapters.sh.)
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_models import MODELS, cache_dir, fetch  # noqa: E402

BASE = "qwen2.5-0.5b"
# Bump when the adapters change, so cached ones are written again.
VERSION = "2"
GOOD = ["attn", "attn-alpha16", "ffn", "sum", "output", "tiny"]
BAD = ["bad-arch", "bad-shape", "bad-alpha", "bad-embd"]


def ensure_python_packages() -> None:
    import embedding_model  # same pins as the embedding fixture

    embedding_model.ensure_python_packages()


def write(path: Path, arch: str, alpha, halves: dict, alpha_type: str = "f32") -> None:
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path) + ".partial", arch)
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_name(f"PocketLM test adapter {path.stem}")
    if alpha is not None:
        if alpha_type == "u32":
            w.add_uint32("adapter.lora.alpha", int(alpha))
        else:
            w.add_float32("adapter.lora.alpha", float(alpha))
    for name, (a, b) in halves.items():
        w.add_tensor(f"{name}.lora_a", np.ascontiguousarray(a, dtype=np.float32))
        w.add_tensor(f"{name}.lora_b", np.ascontiguousarray(b, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    Path(str(path) + ".partial").replace(path)


def build(dest: Path) -> Path:
    out = dest / "lora"
    stamp = out / f".version-{VERSION}"
    if stamp.exists() and all((out / f"qwen-lora-{n}.gguf").exists() for n in GOOD + BAD):
        return out
    base_path = fetch(BASE, dest)
    ensure_python_packages()
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(base_path))
    # ggml shape [n_in, n_out] of each base matrix.
    shapes = {t.name: (int(t.shape[0]), int(t.shape[1])) for t in reader.tensors if len(t.shape) == 2}
    n_layer = 1 + max(int(n.split(".")[1]) for n in shapes if n.startswith("blk."))
    rng = np.random.default_rng(20261203)

    def pair(name: str, rank: int, b_std: float):
        """lora_a as numpy (rank, n_in), lora_b as (n_out, rank): ggml [n_in, r] and [r, n_out]."""
        n_in, n_out = shapes[name]
        a = rng.standard_normal((rank, n_in)) / np.sqrt(n_in)
        b = rng.standard_normal((n_out, rank)) * b_std
        return a.astype(np.float32), b.astype(np.float32)

    out.mkdir(parents=True, exist_ok=True)
    attn = {}
    for il in range(n_layer):
        for m in ("attn_q", "attn_v"):
            attn[f"blk.{il}.{m}.weight"] = pair(f"blk.{il}.{m}.weight", 4, 0.02)
    ffn = {}
    for il in range(n_layer):
        for m in ("attn_q", "ffn_down"):
            ffn[f"blk.{il}.{m}.weight"] = pair(f"blk.{il}.{m}.weight", 2, 0.02)
    write(out / "qwen-lora-attn.gguf", "qwen2", 8, attn)
    write(out / "qwen-lora-attn-alpha16.gguf", "qwen2", 16, attn)
    write(out / "qwen-lora-ffn.gguf", "qwen2", 4, ffn)
    # Both at alpha/r = 2: stacking them along the rank (alpha 12, rank 6)
    # gives the same change as applying the two together.
    stacked = {}
    for name in sorted(set(attn) | set(ffn)):
        parts = [p for p in (attn.get(name), ffn.get(name)) if p is not None]
        if len(parts) == 1:
            a, b = parts[0]
            # Pad to rank 6 with zeros: the same change, at alpha/r = 12/6.
            a = np.vstack([a, np.zeros((6 - a.shape[0], a.shape[1]), np.float32)])
            b = np.hstack([b, np.zeros((b.shape[0], 6 - b.shape[1]), np.float32)])
        else:
            a = np.vstack([parts[0][0], parts[1][0]])
            b = np.hstack([parts[0][1], parts[1][1]])
        stacked[name] = (a, b)
    write(out / "qwen-lora-sum.gguf", "qwen2", 12, stacked)
    write(out / "qwen-lora-output.gguf", "qwen2", 2, {"output.weight": pair("output.weight", 2, 0.5)})

    write(out / "qwen-lora-tiny.gguf", "qwen2", 1, {"blk.0.attn_v.weight": pair("blk.0.attn_v.weight", 1, 0.02)})

    q = "blk.0.attn_q.weight"
    write(out / "qwen-lora-bad-arch.gguf", "gemma3", 8, {q: attn[q]})
    bad_a = rng.standard_normal((4, 512)).astype(np.float32)
    write(out / "qwen-lora-bad-shape.gguf", "qwen2", 8, {q: (bad_a, attn[q][1])})
    write(out / "qwen-lora-bad-alpha.gguf", "qwen2", 8, {q: attn[q]}, alpha_type="u32")
    n_embd, n_vocab = shapes["token_embd.weight"]
    embd_a = rng.standard_normal((n_vocab, 4)).astype(np.float32) * 0.01  # ggml [4, n_vocab]
    embd_b = rng.standard_normal((n_embd, 8)).astype(np.float32) * 0.01  # ggml [8, n_embd]
    write(out / "qwen-lora-bad-embd.gguf", "qwen2", 8, {"token_embd.weight": (embd_a, embd_b)})
    for old in out.glob(".version-*"):
        old.unlink()
    stamp.touch()
    return out


# Every matrix a PEFT LoRA with target_modules="all-linear" adapts.
ALL_LINEAR = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def build_bench(dest: Path, rank: int) -> Path:
    """A realistic adapter for benchmarks (not tests): rank `rank` on every
    linear layer, F16 (what convert_lora_to_gguf.py writes by default)."""
    path = dest / "lora" / f"qwen-lora-bench-r{rank}.gguf"
    if path.exists():
        return path
    base_path = fetch(BASE, dest)
    ensure_python_packages()
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(base_path))
    shapes = {t.name: (int(t.shape[0]), int(t.shape[1])) for t in reader.tensors if len(t.shape) == 2}
    rng = np.random.default_rng(rank)
    halves = {}
    for name, (n_in, n_out) in sorted(shapes.items()):
        if name.startswith("blk.") and name.split(".")[2] in ALL_LINEAR:
            a = (rng.standard_normal((rank, n_in)) / np.sqrt(n_in)).astype(np.float16)
            b = (rng.standard_normal((n_out, rank)) * 0.001).astype(np.float16)
            halves[name] = (a, b)
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path) + ".partial", "qwen2")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(rank))
    for name, (a, b) in halves.items():
        w.add_tensor(f"{name}.lora_a", a)
        w.add_tensor(f"{name}.lora_b", b)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    Path(str(path) + ".partial").replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="cache directory")
    parser.add_argument("--bench-rank", type=int, action="append", default=[],
                        help="also write qwen-lora-bench-rN.gguf: rank N on every linear layer, F16 (benchmarks only)")
    args = parser.parse_args()
    out = build(args.dir or cache_dir())
    for rank in args.bench_rank:
        print(build_bench(args.dir or cache_dir(), rank))
    print(f"pocketlm: LoRA test adapters ready in {out}", file=sys.stderr)


if __name__ == "__main__":
    assert BASE in MODELS
    main()
