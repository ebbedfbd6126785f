"""Writes seed inputs for the fuzz targets into DIR/<target>/ (outside the repo).

lora: the LoRA test adapters when cached (scripts/lora_adapters.py), cut to 64 KiB;
vision: a whole Gemma 3-layout projector at tiny sizes, made here; image: small PNGs
and a JPEG made here;
gguf and plan: small valid GGUF files made here (a Llama- and a Gemma-shaped
header with one tensor) and the first bytes of the real test models when they
are in the cache; template: the chat templates under core/tests/templates and
the ones inside the cached test models, each followed by NUL-separated messages.
"""
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def gguf_string(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


def gguf(arch: str, kvs: dict, tensor_elems: int = 256) -> bytes:
    meta = b""
    items = {"general.architecture": arch, **kvs}
    for key, value in items.items():
        meta += gguf_string(key.encode())
        if isinstance(value, str):
            meta += struct.pack("<I", 8) + gguf_string(value.encode())
        elif isinstance(value, list):
            meta += struct.pack("<IIQ", 9, 4, len(value)) + b"".join(struct.pack("<I", v) for v in value)
        else:
            meta += struct.pack("<I", 4) + struct.pack("<I", value)
    tensor = gguf_string(b"token_embd.weight") + struct.pack("<IQIQ", 1, tensor_elems, 0, 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, len(items)) + meta + tensor
    head += b"\0" * (-len(head) % 32)
    return head + b"\0" * (tensor_elems * 4)


def main(out: Path) -> None:
    for d in ("gguf", "plan", "template", "output", "catalog", "session", "vector_index", "lora", "vision", "image"):
        (out / d).mkdir(parents=True, exist_ok=True)
    llama = {f"llama.{k}": v for k, v in {
        "block_count": 16, "embedding_length": 2048, "attention.head_count": 32,
        "attention.head_count_kv": 8, "feed_forward_length": 8192, "context_length": 131072}.items()}
    gemma = {f"gemma3.{k}": v for k, v in {
        "block_count": 6, "embedding_length": 640, "attention.head_count": 4,
        "attention.head_count_kv": [1] * 6, "attention.key_length": 256,
        "attention.sliding_window": 512, "context_length": 32768}.items()}
    for name, data in (("llama", gguf("llama", llama)), ("gemma", gguf("gemma3", gemma))):
        (out / "gguf" / name).write_bytes(data)
        # The plan target's first byte picks "parse these bytes" (odd) mode.
        (out / "plan" / name).write_bytes(b"\x01" + data)
    (out / "vision" / "gemma3-tiny").write_bytes(tiny_projector())
    for name, data in tiny_images().items():
        (out / "image" / name).write_bytes(data)
    cache = Path(os.environ.get("POCKETLM_MODEL_DIR") or
                 Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pocketlm" / "models")
    messages = b"\0You are helpful.\0Hi <|im_start|>\0Hello!\0What is 2+2?"
    # lora: the test adapters when cached, cut to 64 KiB (headers and the first tensors).
    for adapter in sorted((cache / "lora").glob("*.gguf")) if (cache / "lora").is_dir() else []:
        (out / "lora" / adapter.stem).write_bytes(adapter.read_bytes()[: 1 << 16])
    for model in sorted(cache.glob("*.gguf")) if cache.is_dir() else []:
        with open(model, "rb") as f:
            head = f.read(1 << 16)
        (out / "gguf" / (model.stem + ".head")).write_bytes(head)
        template = chat_template(model)
        if template:
            (out / "template" / model.stem).write_bytes(template + messages)
    answers = {
        "hermes": b"Let me check.\0 <tool_\0call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par\0is\"}}\0</tool_call>",
        "bare": b"\0 {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"days\": 3}}",
        "fenced": b"``\0`json\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}\n```",
        "llama3": b"<|python_\0tag|>{\"name\": \"get_weather\", \"parameters\": {}}",
        "text": b"The answer is 4.\0 No tools \0needed: {not json",
    }
    for name, data in answers.items():
        (out / "output" / name).write_bytes(data)
    # The catalog target's first byte picks "parse these bytes as JSON" (odd) mode.
    builtin = ROOT / "core" / "base" / "src" / "catalog" / "builtin.json"
    (out / "catalog" / "builtin").write_bytes(b"\x01" + builtin.read_bytes())
    for path in sorted((ROOT / "core" / "tests" / "templates").glob("*.jinja")):
        (out / "template" / path.stem).write_bytes(path.read_bytes() + messages)


def tiny_projector() -> bytes:
    """A whole Gemma 3-layout projector: 28-pixel images in 14-pixel patches, width 8,
    1 block, pooled by 2 (one image token), projecting to 16 (the fuzz target's model)."""
    e, ff, proj = 8, 12, 16
    kvs = [("general.architecture", 8, "clip"), ("clip.projector_type", 8, "gemma3"),
           ("clip.has_vision_encoder", 7, True), ("clip.vision.embedding_length", 4, e),
           ("clip.vision.feed_forward_length", 4, ff), ("clip.vision.block_count", 4, 1),
           ("clip.vision.attention.head_count", 4, 2), ("clip.vision.projection_dim", 4, proj),
           ("clip.vision.image_size", 4, 28), ("clip.vision.patch_size", 4, 14),
           ("clip.vision.projector.scale_factor", 4, 2),
           ("clip.vision.attention.layer_norm_epsilon", 6, 1e-6),
           ("clip.vision.image_mean", 9, [0.5] * 3), ("clip.vision.image_std", 9, [0.5] * 3)]
    tensors = [("v.patch_embd.weight", [14, 14, 3, e], 1), ("v.patch_embd.bias", [e], 0),
               ("v.position_embd.weight", [e, 4], 0)]
    for t in ("attn_q", "attn_k", "attn_v", "attn_out"):
        tensors += [(f"v.blk.0.{t}.weight", [e, e], 1), (f"v.blk.0.{t}.bias", [e], 0)]
    tensors += [("v.blk.0.ffn_up.weight", [e, ff], 1), ("v.blk.0.ffn_up.bias", [ff], 0),
                ("v.blk.0.ffn_down.weight", [ff, e], 1), ("v.blk.0.ffn_down.bias", [e], 0)]
    for t in ("ln1", "ln2"):
        tensors += [(f"v.blk.0.{t}.weight", [e], 0), (f"v.blk.0.{t}.bias", [e], 0)]
    tensors += [("v.post_ln.weight", [e], 0), ("v.post_ln.bias", [e], 0),
                ("mm.soft_emb_norm.weight", [e], 0), ("mm.input_projection.weight", [proj, e], 1)]
    meta = b""
    for key, t, value in kvs:
        meta += gguf_string(key.encode()) + struct.pack("<I", t)
        if t == 8:
            meta += gguf_string(value.encode())
        elif t == 7:
            meta += struct.pack("<?", value)
        elif t == 4:
            meta += struct.pack("<I", value)
        elif t == 6:
            meta += struct.pack("<f", value)
        else:
            meta += struct.pack("<IQ", 6, len(value)) + b"".join(struct.pack("<f", v) for v in value)
    table, data = b"", b""
    for name, dims, kind in tensors:
        n = 1
        for d in dims:
            n *= d
        table += gguf_string(name.encode()) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        table += struct.pack("<IQ", kind, len(data))
        data += b"\0" * (n * (2 if kind == 1 else 4))
        data += b"\0" * (-len(data) % 32)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + meta + table
    head += b"\0" * (-len(head) % 32)
    return head + data


def tiny_images() -> dict:
    """Small valid PNGs (RGB, grey with alpha) and a tiny baseline JPEG."""
    import zlib

    def png(w, h, colour_type, channels):
        raw = b"".join(b"\0" + bytes((x * 7 + y) % 256 for x in range(w * channels)) for y in range(h))
        chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
        ihdr = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    # A 1x1 grey JPEG (baseline, one component), as common encoders write it.
    jpeg = bytes.fromhex(
        "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f"
        "141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b080001000101"
        "011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403"
        "050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a1617"
        "18191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a83"
        "8485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7"
        "d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbd3ffd9")
    return {"rgb": png(5, 3, 2, 3), "grey-alpha": png(4, 4, 4, 2), "grey-jpeg": jpeg}


def chat_template(path: Path) -> bytes:
    """The tokenizer.chat_template string of a GGUF file, or b"" (a minimal reader)."""
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    with open(path, "rb") as f:
        def read(n):
            return f.read(n)

        def skip_value(t):
            if t == 8:
                (n,) = struct.unpack("<Q", read(8))
                read(n)
            elif t == 9:
                et, n = struct.unpack("<IQ", read(12))
                for _ in range(n):
                    skip_value(et)
            else:
                read(sizes[t])

        if read(4) != b"GGUF":
            return b""
        _, _, n_kv = struct.unpack("<IQQ", read(20))
        for _ in range(n_kv):
            (n,) = struct.unpack("<Q", read(8))
            key = read(n)
            (t,) = struct.unpack("<I", read(4))
            if key == b"tokenizer.chat_template" and t == 8:
                (n,) = struct.unpack("<Q", read(8))
                return read(n)
            skip_value(t)
    return b""


if __name__ == "__main__":
    main(Path(sys.argv[1]))
