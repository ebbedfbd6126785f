"""Writes seed inputs for the fuzz targets into DIR/<target>/ (outside the repo).

lora: the LoRA test adapters when cached (scripts/lora_adapters.py), cut to 64 KiB;
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
    for d in ("gguf", "plan", "template", "output", "catalog", "session", "vector_index", "lora"):
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
