#!/usr/bin/env python3
"""Write a "shaped" GGUF: the exact layout of a public Q4_K_M release, random weights.

Memory use and speed depend on tensor shapes and quantisation types, not on the
weight values, so a file with the architecture metadata, tensor names, shapes and
per-tensor types of the public Q4_K_M release costs what the real model costs.
The values are random but numerically sane (finite, small block scales), so the
engine runs it end to end. These files are for benchmarks only: their output is
noise and says nothing about quality.

Per-tensor types follow llama.cpp's Q4_K_M recipe (src/llama-quant.cpp,
llama_tensor_get_type_impl) for a dense model with tied embeddings:
  token_embd (also the output matrix)         Q6_K
  attn_v, ffn_down where use_more_bits(i, n)  Q6_K, else Q4_K
  attn_q, attn_k, attn_output, ffn_gate/up    Q4_K
  1-D tensors (norms, rope_freqs)             F32
use_more_bits(i, n) = i < n/8 or i >= 7n/8 or (i - n/8) % 3 == 2.

Tokenizers are copied, never invented: Llama 3's from llama.cpp's
models/ggml-vocab-llama-bpe.gguf (128,256 tokens), Gemma 3's from the Gemma 3
270M GGUF (262,144 tokens), padded to the 262,208 rows that Gemma 3 4B's
config declares, exactly as llama.cpp's converter pads it ("[PAD<id>]",
type UNUSED), so token_embd is [2560, 262208] like the public file.

Usage: shaped_model.py MODEL OUT.gguf --tokenizer-from GGUF [--template FILE] [--layers N] [--seed S]
"""
import argparse
import math
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

QK_K = 256
BLOCK_BYTES = {Q.Q4_K: 144, Q.Q6_K: 210}

# Public releases: shapes from the Hugging Face configs; sizes as listed for the
# bartowski Q4_K_M files (2.02 GB, 2.49 GB; decimal GB, rounded to 10 MB), the
# reference for the size check documented in docs/performance.md.
SHAPES = {
    "llama-3.2-3b": dict(
        arch="llama", name="Llama 3.2 3B Instruct (shaped)", n_layer=28, n_embd=3072,
        n_head=24, n_head_kv=8, head_dim=128, n_ff=8192, n_vocab=128256,
        context_length=131072, rope_theta=500000.0, rms_eps=1e-5,
        public_bytes=2_020_000_000,
    ),
    "gemma-3-4b": dict(
        arch="gemma3", name="Gemma 3 4B it (shaped)", n_layer=34, n_embd=2560,
        n_head=8, n_head_kv=4, head_dim=256, n_ff=10240, n_vocab=262208,
        context_length=131072, rope_theta=1_000_000.0, rms_eps=1e-6,
        sliding_window=1024, rope_scale=8.0,
        public_bytes=2_490_000_000,
    ),
}


def use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def f16_bytes(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).view(np.uint8).reshape(values.shape + (2,))


def quantized(rng: np.random.Generator, qtype: Q, n_in: int, n_out: int, scale: float) -> np.ndarray:
    """Random blocks of `qtype` for an [n_in, n_out] matrix, as uint8 rows."""
    assert n_in % QK_K == 0, "K-quant rows must be a multiple of 256"
    n_blocks = n_out * (n_in // QK_K)
    size = BLOCK_BYTES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    if qtype == Q.Q4_K:
        # layout: d (f16), dmin (f16), scales[12], qs[128]; x = d*sc*q - dmin*m
        blocks[:, 0:2] = f16_bytes(rng.uniform(0.5, 1.0, n_blocks) * scale / 63 / 15)
        blocks[:, 2:4] = f16_bytes(rng.uniform(0.5, 1.0, n_blocks) * scale / 63 / 2)
    else:
        # layout: ql[128], qh[64], scales[16] (int8), d (f16); x = d*sc*(q-32)
        blocks[:, 208:210] = f16_bytes(rng.uniform(0.5, 1.0, n_blocks) * scale / 127 / 32)
    return blocks.reshape(n_out, (n_in // QK_K) * size)


def llama3_rope_factors(head_dim: int, theta: float) -> np.ndarray:
    """rope_freqs.weight as convert_hf_to_gguf writes it for Llama 3.2 (rope_type llama3)."""
    factor, low, high, original = 32.0, 1.0, 4.0, 8192
    low_wavelen, high_wavelen = original / low, original / high
    out = []
    for i in range(0, head_dim, 2):
        wavelen = 2 * math.pi / (1.0 / theta ** (i / head_dim))
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (original / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def copy_tokenizer(writer: gguf.GGUFWriter, source: Path, n_vocab: int) -> None:
    """Copy every tokenizer.* key of `source`, padding the token lists to n_vocab."""
    reader = gguf.GGUFReader(source)
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer.") or key == "tokenizer.chat_template":
            continue
        value = field.contents()
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = field.types[-1]
            if key in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
                have = len(value)
                if have > n_vocab:
                    sys.exit(f"{source}: {have} tokens, more than the {n_vocab} rows the model declares")
                pad = {
                    "tokenizer.ggml.tokens": [f"[PAD{i}]" for i in range(have, n_vocab)],
                    "tokenizer.ggml.scores": [-10000.0] * (n_vocab - have),
                    "tokenizer.ggml.token_type": [int(gguf.TokenType.UNUSED)] * (n_vocab - have),
                }[key]
                value = list(value) + pad
            writer.add_array(key, value) if sub != gguf.GGUFValueType.STRING else writer.add_array(key, [str(v) for v in value])
        else:
            writer.add_key_value(key, value, vtype)
    tokens = reader.fields["tokenizer.ggml.tokens"]
    print(f"tokenizer: {len(tokens.data)} tokens from {source.name}, padded to {n_vocab}", file=sys.stderr)


def build(model: str, out: Path, tokenizer_from: Path, template: Path | None, layers: int | None, seed: int) -> None:
    s = SHAPES[model]
    n_layer = layers or s["n_layer"]
    arch, d, hd = s["arch"], s["n_embd"], s["head_dim"]
    q_dim, kv_dim, ff = s["n_head"] * hd, s["n_head_kv"] * hd, s["n_ff"]
    rng = np.random.default_rng(seed)

    w = gguf.GGUFWriter(out, arch)
    w.add_name(s["name"] if layers is None else f'{s["name"]}, {n_layer} layers')
    w.add_type("model")
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_Q4_K_M))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(s["context_length"])
    w.add_embedding_length(d)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(ff)
    w.add_head_count(s["n_head"])
    w.add_head_count_kv(s["n_head_kv"])
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_freq_base(s["rope_theta"])
    w.add_layer_norm_rms_eps(s["rms_eps"])
    if arch == "llama":
        w.add_vocab_size(s["n_vocab"])
        w.add_rope_dimension_count(hd)
    else:
        w.add_sliding_window(s["sliding_window"])
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(s["rope_scale"])
    copy_tokenizer(w, tokenizer_from, s["n_vocab"])
    if template is not None:
        w.add_chat_template(template.read_text())

    def f32(name: str, n: int, value: float = 1.0) -> None:
        w.add_tensor(name, np.full(n, value, dtype=np.float32))

    def mat(name: str, qtype: Q, n_in: int, n_out: int, scale: float = 0.05) -> None:
        w.add_tensor(name, quantized(rng, qtype, n_in, n_out, scale), raw_dtype=qtype)

    # tied embeddings: token_embd doubles as the output matrix, hence Q6_K
    mat("token_embd.weight", Q.Q6_K, d, s["n_vocab"])
    if arch == "llama":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(hd, s["rope_theta"]))
    f32("output_norm.weight", d)
    for i in range(n_layer):
        # the recipe counts layers of the *full* model, so a cut-down file keeps the types of its first layers
        more = use_more_bits(i, s["n_layer"])
        p = f"blk.{i}."
        f32(p + "attn_norm.weight", d)
        mat(p + "attn_q.weight", Q.Q4_K, d, q_dim)
        mat(p + "attn_k.weight", Q.Q4_K, d, kv_dim)
        mat(p + "attn_v.weight", Q.Q6_K if more else Q.Q4_K, d, kv_dim)
        mat(p + "attn_output.weight", Q.Q4_K, q_dim, d)
        f32(p + "ffn_norm.weight", d)
        mat(p + "ffn_gate.weight", Q.Q4_K, d, ff)
        mat(p + "ffn_up.weight", Q.Q4_K, d, ff)
        mat(p + "ffn_down.weight", Q.Q6_K if more else Q.Q4_K, ff, d)
        if arch == "gemma3":
            f32(p + "attn_q_norm.weight", hd)
            f32(p + "attn_k_norm.weight", hd)
            f32(p + "post_attention_norm.weight", d)
            f32(p + "post_ffw_norm.weight", d)

    tmp = out.with_name(out.name + ".partial")
    w.path = tmp
    w.write_header_to_file(path=tmp)
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()
    tmp.replace(out)
    size = out.stat().st_size
    if layers is None:
        ratio = size / s["public_bytes"]
        print(f"{out}: {size / 1e9:.3f} GB; public Q4_K_M release {s['public_bytes'] / 1e9:.2f} GB (ratio {ratio:.4f})", file=sys.stderr)
        if not 0.985 <= ratio <= 1.015:
            sys.exit(f"size check failed: {size:,} bytes is not within 1.5% of the public release")
    else:
        print(f"{out}: {size:,} bytes ({n_layer} of {s['n_layer']} layers)", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=sorted(SHAPES))
    ap.add_argument("out", type=Path)
    ap.add_argument("--tokenizer-from", type=Path, required=True, help="GGUF whose tokenizer.* keys are copied")
    ap.add_argument("--template", type=Path, help="chat template (Jinja) stored as tokenizer.chat_template")
    ap.add_argument("--layers", type=int, help="write only the first N layers (small files for tests)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.layers is not None and not 1 <= a.layers <= SHAPES[a.model]["n_layer"]:
        ap.error(f"--layers must be between 1 and {SHAPES[a.model]['n_layer']}")
    build(a.model, a.out, a.tokenizer_from, a.template, a.layers, a.seed)


if __name__ == "__main__":
    main()
