#!/usr/bin/env python3
"""Write a "shaped" vision projector: Gemma 3's mmproj layout, random weights.

The layout is that of the public Gemma 3 4B projector (llama.cpp's
convert_hf_to_gguf.py --mmproj on google/gemma-3-4b-it, as in ggml-org's
mmproj-model-f16.gguf): a SigLIP-So400m encoder at 896x896 pixels in 14-pixel
patches (64 a side), 27 blocks of width 1152 (16 heads, FFN 4304, GELU),
average pooling by 4 (256 image tokens), RMS norm and one projection into the
text model's 2560-wide embedding. Matrices and the patch embedding are F16;
vectors and the position embedding F32, like the public file.

The values are random but numerically sane (small Gaussian matrices, unit
norm weights, zero biases), so llama.cpp runs the encoder end to end; what the
text model then says about an image is noise. --blocks N writes only the first
N encoder blocks (small files for fast tests: the memory an image's encoding
needs does not depend on N, its time does).

Usage: shaped_projector.py OUT.gguf [--blocks N] [--projection-dim D] [--seed S] [--broken KIND] [--old-ffn-names]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import gguf

IMAGE, PATCH, EMBD, FFN, BLOCKS, HEADS, MERGE = 896, 14, 1152, 4304, 27, 16, 4


# Broken variants for the refusal tests: each is caught by PocketLM's check
# before llama.cpp reads the file ("shape", "key-type" and "position-type"
# would abort the process in clip.cpp or at the first image).
BREAKS = ("shape", "key-type", "projection", "type", "position-type")


def build(out: Path, blocks: int, projection: int, seed: int, broken: str | None = None, old_ffn_names: bool = False) -> None:
    rng = np.random.default_rng(seed)
    side = IMAGE // PATCH
    w = gguf.GGUFWriter(out, "clip")
    w.add_name(f"Gemma 3 4B projector (shaped{'' if blocks == BLOCKS else f', {blocks} blocks'})")
    w.add_type("mmproj")
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.use_gelu", True)
    w.add_string("clip.projector_type", "gemma3")
    if broken == "key-type":
        w.add_int32("clip.vision.image_size", IMAGE)  # clip.cpp asserts UINT32 and aborts
    else:
        w.add_uint32("clip.vision.image_size", IMAGE)
    w.add_uint32("clip.vision.patch_size", PATCH)
    w.add_uint32("clip.vision.embedding_length", EMBD)
    w.add_uint32("clip.vision.feed_forward_length", FFN)
    w.add_uint32("clip.vision.block_count", blocks)
    w.add_uint32("clip.vision.attention.head_count", HEADS)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    w.add_uint32("clip.vision.projection_dim", projection // 2 if broken == "projection" else projection)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

    def f16(name: str, *shape: int, scale: float = 0.02) -> None:
        # numpy shapes are the reverse of ggml's (ne0 is the last axis)
        w.add_tensor(name, (rng.standard_normal(shape[::-1], dtype=np.float32) * scale).astype(np.float16))

    def f32(name: str, n: int, value: float) -> None:
        w.add_tensor(name, np.full(n, value, dtype=np.float32))

    f16("v.patch_embd.weight", PATCH, PATCH, 3, EMBD)
    f32("v.patch_embd.bias", EMBD, 0.0)
    if broken == "position-type":
        f16("v.position_embd.weight", EMBD, side * side)  # the CPU backend aborts adding F16 to F32
    else:
        w.add_tensor("v.position_embd.weight", (rng.standard_normal((side * side, EMBD), dtype=np.float32) * 0.02))
    for b in range(blocks):
        p = f"v.blk.{b}."
        for t in ("attn_q", "attn_k", "attn_v", "attn_out"):
            # "shape": a key matrix half as wide; clip.cpp loads it, then aborts in its warm-up graph
            f16(p + t + ".weight", EMBD, EMBD // 2 if broken == "shape" and t == "attn_k" else EMBD)
            f32(p + t + ".bias", EMBD, 0.0)
        # --old-ffn-names: the first Gemma 3 converter's names (each FFN matrix under the
        # other's name); same values, which clip.cpp swaps back
        up, down = ("ffn_down", "ffn_up") if old_ffn_names else ("ffn_up", "ffn_down")
        f16(p + up + ".weight", EMBD, FFN)
        f32(p + up + ".bias", FFN, 0.0)
        f16(p + down + ".weight", FFN, EMBD)
        f32(p + down + ".bias", EMBD, 0.0)
        for t in ("ln1", "ln2"):
            f32(p + t + ".weight", EMBD, 1.0)
            f32(p + t + ".bias", EMBD, 0.0)
    f32("v.post_ln.weight", EMBD, 1.0)
    f32("v.post_ln.bias", EMBD, 0.0)
    f32("mm.soft_emb_norm.weight", EMBD, 1.0)
    if broken == "projection":
        f16("mm.input_projection.weight", projection // 2, EMBD)
    elif broken == "type":
        w.add_tensor("mm.input_projection.weight", np.zeros((EMBD, projection // 32 * 34), dtype=np.uint8), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    else:
        f16("mm.input_projection.weight", projection, EMBD)

    tmp = out.with_name(out.name + ".partial")
    w.path = tmp
    w.write_header_to_file(path=tmp)
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()
    tmp.replace(out)
    print(f"{out}: {out.stat().st_size:,} bytes ({blocks} of {BLOCKS} blocks)", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--blocks", type=int, default=BLOCKS)
    ap.add_argument("--projection-dim", type=int, default=2560, help="the text model's embedding width (Gemma 3 4B: 2560)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--broken", choices=BREAKS, help="write a malformed variant (for refusal tests)")
    ap.add_argument("--old-ffn-names", action="store_true", help="name the FFN matrices as the first Gemma 3 converter did")
    a = ap.parse_args()
    if not 1 <= a.blocks <= BLOCKS:
        ap.error(f"--blocks must be between 1 and {BLOCKS}")
    out = a.out
    out.parent.mkdir(parents=True, exist_ok=True)
    build(out, a.blocks, a.projection_dim, a.seed, a.broken, a.old_ffn_names)


if __name__ == "__main__":
    main()
