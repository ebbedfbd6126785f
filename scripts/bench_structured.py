#!/usr/bin/env python3
"""Structured output and tool calling of `pocketlm serve`, measured with the openai client.

Usage: bench_structured.py BASE_URL API_KEY --label LABEL --out OUT_DIR
                           [--only validity,speed,tools] [--machine TEXT] [--gbnf-dir DIR]

validity  every case of tests/bench/structured_cases.json (10 schemas x 10 prompts):
          response_format json_schema (strict), temperature 0, max_tokens 256; the
          answer is parsed and checked with jsonschema (Draft 2020-12). With
          --gbnf-dir (grammars made by llama.cpp's converter, scripts/bench-engines.sh),
          the same again constrained by the converted GBNF instead.
speed     the first 2 prompts of every schema, unconstrained, constrained by the
          schema, by the case's hand-written GBNF grammar where it has one, and by
          the converted one with --gbnf-dir (llama-server's `grammar` body field);
          max_tokens 64. Decode tok/s comes from the
          response's non-standard `timings` object (llama-server's convention).
          Then a 20-field schema is sent 3 times (max_tokens 512, so the answer
          completes and carries `timings`) for `timings.constraint_ms`, the time
          spent preparing the constraint.
tools     every case of tests/bench/tool_cases.json with its tools and
          tool_choice auto; a case is right when the multiset of (name, arguments)
          equals the expected one (strings compared stripped and case-insensitively,
          numbers numerically).
Writes OUT_DIR/structured-LABEL.json (raw results) and OUT_DIR/structured-LABEL.md.
It is a benchmark: exit 0 whatever the scores, 1 only if the server cannot be reached.
"""
import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import jsonschema
import openai

CASES = Path(__file__).resolve().parent.parent / "tests" / "bench"
SECTIONS = ("validity", "speed", "tools")


def obj(props, required=None):
    return {"type": "object", "properties": props, "required": required or list(props), "additionalProperties": False}


def text(n):
    return {"type": "string", "maxLength": n}


def integer(lo, hi):
    return {"type": "integer", "minimum": lo, "maximum": hi}


def enum(*values):
    return {"type": "string", "enum": list(values)}


# 20 properties of mixed types: the cost of compiling a realistic form-sized schema.
FORM_SCHEMA = obj({
    "full_name": text(60), "nickname": text(30), "email": text(80), "phone": text(24), "city": text(40),
    "country": text(40), "age": integer(0, 120), "height_cm": integer(50, 250), "children": integer(0, 20),
    "rating": integer(1, 5), "plan": enum("free", "plus", "pro"), "language": enum("en", "de", "fr", "es", "ja"),
    "theme": enum("light", "dark", "system"), "newsletter": {"type": "boolean"}, "two_factor": {"type": "boolean"},
    "verified": {"type": "boolean"}, "balance": {"type": "number", "minimum": 0, "maximum": 1_000_000},
    "address": obj({"street": text(80), "postal_code": text(10)}),
    "tags": {"type": "array", "items": text(20), "maxItems": 5}, "bio": text(200),
})
assert len(FORM_SCHEMA["properties"]) == 20


def response_format(name, schema):
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def user(content):
    return [{"role": "user", "content": content}]


class Bench:
    def __init__(self, client, model):
        self.client, self.model = client, model

    def call(self, **kwargs):
        """One chat completion at temperature 0; an API error is a result, not an exception."""
        start = time.perf_counter()
        try:
            r = self.client.chat.completions.create(model=self.model, temperature=0, **kwargs)
        except openai.APIStatusError as e:
            return {"error": f"HTTP {e.status_code}: {e.message}", "wall_s": time.perf_counter() - start}
        except openai.APIError as e:  # connection lost, timeout
            return {"error": f"{type(e).__name__}: {e}", "wall_s": time.perf_counter() - start}
        wall = time.perf_counter() - start
        choice = r.choices[0]
        timings = (getattr(r, "model_extra", None) or {}).get("timings") or r.to_dict().get("timings") or {}
        calls = [{"name": c.function.name, "arguments": c.function.arguments} for c in choice.message.tool_calls or []]
        tokens = r.usage.completion_tokens if r.usage else None
        return {"content": choice.message.content, "finish_reason": choice.finish_reason, "tool_calls": calls,
                "completion_tokens": tokens, "timings": timings, "wall_s": wall,
                "end_to_end_tps": tokens / wall if tokens and wall > 0 else None}


def check_json(validator, r):
    """(valid, why) of one constrained answer."""
    if "error" in r:
        return False, r["error"]
    try:
        value = json.loads(r["content"] or "")
    except json.JSONDecodeError as e:
        return False, f"not JSON ({e})"
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    return (True, "") if error is None else (False, f"{error.json_path}: {error.message}")


def converted(gbnf_dir, name):
    """llama.cpp's converted GBNF for a benchmark schema, or None."""
    path = gbnf_dir / f"bench-{name}.gbnf" if gbnf_dir else None
    return path.read_text() if path and path.exists() else None


def run_validity(bench, schemas, gbnf_dir=None):
    """Validity under the schema (llguidance), or with gbnf_dir under llama.cpp's converted grammars."""
    cases = []
    for s in schemas:
        validator = jsonschema.Draft202012Validator(s["schema"])
        if gbnf_dir:
            grammar = converted(gbnf_dir, s["name"])
            if grammar is None:
                continue
            constraint = {"extra_body": {"grammar": grammar}}
        else:
            constraint = {"response_format": response_format(s["name"], s["schema"])}
        for prompt in s["prompts"]:
            r = bench.call(messages=user(prompt), max_tokens=256, **constraint)
            r["valid"], r["why"] = check_json(validator, r)
            cases.append({"schema": s["name"], "prompt": prompt, **r})
        ok = sum(c["valid"] for c in cases if c["schema"] == s["name"])
        print(f"validity {s['name']}: {ok}/{len(s['prompts'])}", file=sys.stderr)
    per_schema = {s["name"]: [sum(c["valid"] for c in cases if c["schema"] == s["name"]), len(s["prompts"])]
                  for s in schemas if any(c["schema"] == s["name"] for c in cases)}
    return {"valid": sum(c["valid"] for c in cases), "total": len(cases), "per_schema": per_schema, "cases": cases}


def run_form_timing(bench):
    runs = []
    for _ in range(3):
        r = bench.call(messages=user("Fill in a sample user profile as JSON."), max_tokens=512,
                       response_format=response_format("profile", FORM_SCHEMA))
        runs.append({"constraint_ms": r.get("timings", {}).get("constraint_ms"), **r})
    return runs


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def run_speed(bench, schemas, gbnf_dir=None):
    runs = []
    for s in schemas:
        validator = jsonschema.Draft202012Validator(s["schema"])
        for prompt in s["prompts"][:2]:
            modes = {"unconstrained": {}, "schema": {"response_format": response_format(s["name"], s["schema"])}}
            if "gbnf" in s:
                modes["gbnf"] = {"extra_body": {"grammar": s["gbnf"]}}
            if converted(gbnf_dir, s["name"]):
                modes["gbnf (converted)"] = {"extra_body": {"grammar": converted(gbnf_dir, s["name"])}}
            for mode, extra in modes.items():  # interleaved, so drift hits every mode alike
                r = bench.call(messages=user(prompt), max_tokens=64, **extra)
                t = r.get("timings", {})
                runs.append({"schema": s["name"], "prompt": prompt, "mode": mode, "tps": t.get("predicted_per_second"),
                             "predicted_n": t.get("predicted_n"), "valid": check_json(validator, r)[0], **r})
        print(f"speed {s['name']}: done", file=sys.stderr)

    def summary(mode, schema_names):
        rs = [r for r in runs if r["mode"] == mode and r["schema"] in schema_names]
        return {"prompts": len(rs), "decode_tps": mean(r["tps"] for r in rs), "tokens": mean(r["predicted_n"] for r in rs),
                "end_to_end_tps": mean(r.get("end_to_end_tps") for r in rs), "valid_json": sum(r["valid"] for r in rs)}

    every = {s["name"] for s in schemas}
    gbnf = {s["name"] for s in schemas if "gbnf" in s}
    rows = {"unconstrained": summary("unconstrained", every), "schema": summary("schema", every)}
    conv = {r["schema"] for r in runs if r["mode"] == "gbnf (converted)"}
    if conv:
        rows["gbnf (converted)"] = summary("gbnf (converted)", conv)
    if gbnf:
        rows.update({"unconstrained (GBNF prompts)": summary("unconstrained", gbnf),
                     "schema (GBNF prompts)": summary("schema", gbnf), "gbnf": summary("gbnf", gbnf)})
    return {"rows": rows, "runs": runs}


def norm(v):
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, str):
        return v.strip().casefold()
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return v


def canonical(calls):
    return sorted(json.dumps([c["name"], norm(c["arguments"])], sort_keys=True) for c in calls)


def run_tools(bench, data):
    by_name = {t["function"]["name"]: t for t in data["tools"]}
    cases = []
    for c in data["cases"]:
        offered = data["tools"] if c["tool_names"] == "all" else [by_name[n] for n in c["tool_names"]]
        r = bench.call(messages=c["messages"], tools=offered, tool_choice="auto", max_tokens=256)
        got = []
        for call in r.get("tool_calls", []):
            try:
                arguments = json.loads(call["arguments"])
            except (TypeError, json.JSONDecodeError):
                arguments = call["arguments"]  # kept raw: never equal to the expected object
            got.append({"name": call["name"], "arguments": arguments})
        exact = "error" not in r and canonical(got) == canonical(c["expected"])
        names = "error" not in r and sorted(g["name"] for g in got) == sorted(e["name"] for e in c["expected"])
        cases.append({"id": c["id"], "kind": c["kind"], "exact": exact, "names": names, "got": got,
                      "expected": c["expected"], "content": r.get("content"), "error": r.get("error"),
                      "finish_reason": r.get("finish_reason")})
    print(f"tools: {sum(c['exact'] for c in cases)}/{len(cases)} exact", file=sys.stderr)
    kinds = Counter(c["kind"] for c in cases)
    per_kind = {k: {"cases": n, "exact": sum(c["exact"] for c in cases if c["kind"] == k),
                    "names": sum(c["names"] for c in cases if c["kind"] == k)} for k, n in kinds.items()}
    none = [c for c in cases if c["kind"] == "none"]
    return {"exact": sum(c["exact"] for c in cases), "names": sum(c["names"] for c in cases), "total": len(cases),
            "per_kind": per_kind, "none_without_call": sum(not c["got"] and not c["error"] for c in none),
            "none_total": len(none), "cases": cases}


def fmt(v, digits=1):
    return "n/a" if v is None else f"{v:.{digits}f}"


def pct(n, total):
    return f"{n}/{total} ({100 * n / total:.0f} %)" if total else "0/0"


def slowdown(base, other):
    if not base or not other:
        return "n/a (no `timings.predicted_per_second`)"
    return f"slowdown {100 * (1 - other / base):+.1f} % ({base:.2f} -> {other:.2f} tok/s), {1000 / other - 1000 / base:+.2f} ms/token"


def validity_markdown(title, v):
    """A validity section: the total, one row per schema, the first 20 failures."""
    out = [f"### {title}", "", f"Valid: **{pct(v['valid'], v['total'])}**", "", "| schema | valid |", "|---|---|"]
    out += [f"| {name} | {n}/{total} |" for name, (n, total) in v["per_schema"].items()]
    failures = [c for c in v["cases"] if not c["valid"]]
    if failures:
        out += ["", "Failures:", ""]
        out += [f"- {c['schema']}: finish_reason {c.get('finish_reason')}; {c['why'][:160]}" for c in failures[:20]]
        out += [f"- ... and {len(failures) - 20} more (see the JSON)"] if len(failures) > 20 else []
    return out + [""]


def markdown(res):
    out = [f"## Structured output and tool calling: {res['label']}", "",
           f"{res['machine']}; model `{res['model']}`; openai {res['openai']}, jsonschema {res['jsonschema']}.", ""]
    sections = (("validity", "Validity (json_schema strict, temperature 0, max_tokens 256)"),
                ("validity_gbnf", "Validity under llama.cpp's converted GBNF (same prompts, max_tokens 256)"))
    for key, title in sections:
        if key in res:
            out += validity_markdown(title, res[key])
    if "speed" in res:
        s = res["speed"]["rows"]
        out += ["### Decode speed (max_tokens 64; tok/s from `timings.predicted_per_second`)", "",
                "| mode | prompts | decode tok/s | tokens | end-to-end tok/s | valid JSON |", "|---|---|---|---|---|---|"]
        out += [f"| {m} | {r['prompts']} | {fmt(r['decode_tps'], 2)} | {fmt(r['tokens'])} | "
                f"{fmt(r['end_to_end_tps'], 2)} | {r['valid_json']}/{r['prompts']} |" for m, r in s.items()]
        out += ["", f"- JSON Schema (llguidance) vs unconstrained: {slowdown(s['unconstrained']['decode_tps'], s['schema']['decode_tps'])}"]
        if "gbnf (converted)" in s:
            out += [f"- llama.cpp's converted GBNF vs unconstrained: "
                    f"{slowdown(s['unconstrained']['decode_tps'], s['gbnf (converted)']['decode_tps'])}"]
        if "gbnf" in s:
            base = s["unconstrained (GBNF prompts)"]["decode_tps"]
            out += [f"- GBNF (llama.cpp) vs unconstrained: {slowdown(base, s['gbnf']['decode_tps'])}",
                    f"- JSON Schema vs unconstrained, same prompts: {slowdown(base, s['schema (GBNF prompts)']['decode_tps'])}"]
        out += ["- End-to-end tok/s is completion tokens over wall time (includes prefill); "
                "valid JSON counts answers cut at 64 tokens as invalid.", ""]
        out += ["### Constraint preparation (20-field schema)", "", "| run | constraint_ms |", "|---|---|"]
        out += [f"| {i + 1} | {fmt(r['constraint_ms'])} |" for i, r in enumerate(res["speed"]["form"])]
        out += ["", "Run 1 is the first constrained request of this benchmark: on a freshly started server it "
                "includes the one-time vocabulary preparation; runs 2-3 compile the schema only.", ""]
    if "tools" in res:
        t = res["tools"]
        out += ["### Tool calling (tool_choice auto, temperature 0)", "",
                f"Exact: **{pct(t['exact'], t['total'])}**; tool names right: {pct(t['names'], t['total'])}; "
                f"no-tool cases answered without a call: {pct(t['none_without_call'], t['none_total'])}", "",
                "| kind | cases | exact | names right |", "|---|---|---|---|"]
        out += [f"| {k} | {r['cases']} | {r['exact']} | {r['names']} |" for k, r in t["per_kind"].items()]
        out.append("")
    return "\n".join(out)


def short_summary(res):
    lines = [f"{res['label']} ({res['model']}):"]
    if "validity" in res:
        lines.append(f"  validity {pct(res['validity']['valid'], res['validity']['total'])}")
    if "validity_gbnf" in res:
        lines.append(f"  validity under converted GBNF {pct(res['validity_gbnf']['valid'], res['validity_gbnf']['total'])}")
    if "speed" in res:
        rows = res["speed"]["rows"]
        lines.append("  decode tok/s " + ", ".join(f"{m} {fmt(rows[m]['decode_tps'], 2)}" for m in ("unconstrained", "schema", "gbnf", "gbnf (converted)")
                                                  if m in rows))
        lines.append("  20-field constraint_ms " + ", ".join(fmt(r["constraint_ms"]) for r in res["speed"]["form"]))
    if "tools" in res:
        t = res["tools"]
        lines.append(f"  tools exact {pct(t['exact'], t['total'])}, names {pct(t['names'], t['total'])}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_url")
    parser.add_argument("api_key")
    parser.add_argument("--label", required=True, help="names the output files, e.g. qwen2.5-0.5b")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: validity,speed,tools")
    parser.add_argument("--machine", default=f"{os.cpu_count()} CPUs", help="machine description for the Markdown")
    parser.add_argument("--gbnf-dir", type=Path, help="llama.cpp's converted grammars (bench-NAME.gbnf)")
    args = parser.parse_args()
    only = [s for s in args.only.split(",") if s]
    if not only or set(only) - set(SECTIONS):
        parser.error(f"--only takes a comma-separated subset of {','.join(SECTIONS)}")

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=600)
    try:
        model = client.models.list().data[0].id
    except (openai.APIError, IndexError) as e:
        print(f"bench_structured: server at {args.base_url} unreachable or unusable: {e}", file=sys.stderr)
        sys.exit(1)
    bench = Bench(client, model)
    schemas = json.loads((CASES / "structured_cases.json").read_text())["schemas"]
    res = {"label": args.label, "model": model, "machine": args.machine, "base_url": args.base_url,
           "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "openai": openai.__version__, "jsonschema": version("jsonschema")}
    form = run_form_timing(bench) if "speed" in only else None  # first, to catch the vocabulary preparation
    if "validity" in only:
        res["validity"] = run_validity(bench, schemas)
        if args.gbnf_dir:
            res["validity_gbnf"] = run_validity(bench, schemas, args.gbnf_dir)
    if "speed" in only:
        res["speed"] = {**run_speed(bench, schemas, args.gbnf_dir), "form": form}
    if "tools" in only:
        res["tools"] = run_tools(bench, json.loads((CASES / "tool_cases.json").read_text()))

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"structured-{args.label}.json").write_text(json.dumps(res, indent=1, default=str))
    (args.out / f"structured-{args.label}.md").write_text(markdown(res) + "\n")
    print(short_summary(res))


if __name__ == "__main__":
    main()
