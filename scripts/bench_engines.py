#!/usr/bin/env python3
"""The two constrained-decoding engines llama-cpp-2 offers, side by side:
llguidance (what PocketLM uses) and llama.cpp's JSON-Schema-to-GBNF converter
(the `common` feature) with its GBNF sampler.

Usage: bench_engines.py BIN_DIR MODEL OUT_DIR [--machine TEXT]

BIN_DIR holds the three binaries of tests/bench/engines (none, llguidance,
gbnf). Measured:
- coverage: one case per JSON Schema keyword (tests/bench/schema_keywords.json,
  each with the schema minus the keyword). llguidance either compiles a case
  or refuses it naming the keyword; the converter either fails, warns on
  stderr, or converts, and a converted grammar identical to the one without
  the keyword means the keyword was silently ignored (the answer would not
  be held to it);
- preparation time of each benchmark schema (tests/bench/structured_cases.json)
  and of the 20-field form schema, per engine;
- size: each binary stripped; the difference to `none` is what that engine
  adds to an app (release profile = the workspace's `mobile` profile).
Writes OUT_DIR/engines.json, OUT_DIR/engines.md and the converted grammars of
the benchmark schemas to OUT_DIR/gbnf/bench-NAME.gbnf (for bench-structured.sh).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bench_structured import FORM_SCHEMA  # noqa: E402


def wrap(prop):
    """An object with one required property `v` of schema `prop`."""
    return {"type": "object", "properties": {"v": prop}, "required": ["v"], "additionalProperties": False}


def keyword_cases():
    cases = []
    for k in json.loads((ROOT / "tests" / "bench" / "schema_keywords.json").read_text())["keywords"]:
        with_kw, without = k["schema"], k["without"]
        if k.get("property", True):
            with_kw, without = wrap(with_kw), wrap(without)
        cases.append({"name": f"kw-{k['name']}", "keyword": k["name"], "schema": with_kw, "without": without})
    return cases


def run(binary, *args):
    out = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def stripped_size(binary):
    with tempfile.NamedTemporaryFile() as f:
        subprocess.run(["strip", "-o", f.name, str(binary)], check=True)
        return os.path.getsize(f.name)


def verdict_llg(r):
    return "enforced" if r["ok"] else "refused: " + r["detail"].splitlines()[0][:90]


def verdict_gbnf(r):
    if not r["ok"]:
        return "error: " + r["detail"].splitlines()[0][:90]
    if r.get("warning"):
        return "**dropped with a warning**: " + r["warning"][:90]
    if r.get("ignored"):
        return "**silently ignored**"
    return "enforced"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bin_dir", type=Path)
    p.add_argument("model", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--machine", default=f"{os.cpu_count()} CPUs")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    gbnf_dir = a.out / "gbnf"
    shutil.rmtree(gbnf_dir, ignore_errors=True)
    gbnf_dir.mkdir()

    bench = json.loads((ROOT / "tests" / "bench" / "structured_cases.json").read_text())["schemas"]
    cases = keyword_cases() + [{"name": f"bench-{s['name']}", "schema": s["schema"]} for s in bench]
    cases.append({"name": "form-20-fields", "schema": FORM_SCHEMA})
    cases_file = a.out / "engine-cases.json"
    cases_file.write_text(json.dumps(cases))

    run(a.bin_dir / "none", a.model)
    llg = run(a.bin_dir / "llguidance", a.model, cases_file)
    gbnf = run(a.bin_dir / "gbnf", a.model, cases_file, gbnf_dir)
    vocab_ms = next(r["vocabulary_ms"] for r in llg if "vocabulary_ms" in r)
    llg = {r["name"]: r for r in llg if "name" in r}
    gbnf = {r["name"]: r for r in gbnf}
    sizes = {b: stripped_size(a.bin_dir / b) for b in ("none", "llguidance", "gbnf")}

    kw = [c for c in cases if "keyword" in c]
    res = {"machine": a.machine, "model": a.model.name, "sizes": sizes, "vocabulary_ms": vocab_ms,
           "llguidance": llg, "gbnf": gbnf, "keywords": [c["keyword"] for c in kw]}
    (a.out / "engines.json").write_text(json.dumps(res, indent=1))

    enforced_llg = sum(llg[c["name"]]["ok"] for c in kw)
    refused_llg = len(kw) - enforced_llg
    enforced_gbnf = sum(verdict_gbnf(gbnf[c["name"]]) == "enforced" for c in kw)
    unenforced_gbnf = sum(gbnf[c["name"]]["ok"] and verdict_gbnf(gbnf[c["name"]]) != "enforced" for c in kw)
    mib = lambda n: f"{n / 1048576:.2f} MiB"  # noqa: E731
    md = [f"## Constraint engines: llguidance vs llama.cpp's converter ({a.model.name})", "",
          f"{a.machine}.", "",
          "### Keyword coverage", "",
          f"{len(kw)} keywords. llguidance: {enforced_llg} enforced, {refused_llg} refused with an error. "
          f"llama.cpp's converter: {enforced_gbnf} enforced, {unenforced_gbnf} converted **without being enforced** "
          f"(dropped with a stderr warning, or silently ignored), {len(kw) - enforced_gbnf - unenforced_gbnf} errors.", "",
          "| keyword | llguidance | llama.cpp converter |", "|---|---|---|"]
    md += [f"| `{c['keyword']}` | {verdict_llg(llg[c['name']])} | {verdict_gbnf(gbnf[c['name']])} |" for c in kw]
    md += ["", "### Preparation time (ms)", "",
           f"llguidance's one-time vocabulary walk for this model: {vocab_ms:.0f} ms (cached with the model).", "",
           "| schema | llguidance compile | converter | GBNF sampler | GBNF total |", "|---|---|---|---|---|"]
    for c in cases:
        if "keyword" in c:
            continue
        l, g = llg[c["name"]], gbnf[c["name"]]
        md.append(f"| {c['name']} | {l['prepare_ms']:.1f} | {g.get('convert_ms', 0):.1f} | {g.get('sampler_ms', 0):.1f} | "
                  f"{g.get('prepare_ms', g.get('convert_ms', 0)):.1f} |")
    md += ["", "### Size added to an app (stripped, `mobile` profile settings)", "",
           "| binary | size | added |", "|---|---|---|",
           f"| llama.cpp, no constraint engine | {mib(sizes['none'])} | |",
           f"| + llguidance | {mib(sizes['llguidance'])} | {mib(sizes['llguidance'] - sizes['none'])} |",
           f"| + `common` converter (and GBNF sampler) | {mib(sizes['gbnf'])} | {mib(sizes['gbnf'] - sizes['none'])} |", ""]
    (a.out / "engines.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
