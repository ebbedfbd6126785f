#!/usr/bin/env python3
"""Accuracy against the share answered on the device, from `pocketlm eval --per-question` files.

Usage: plot_routing.py OUT.png TITLE PER_QUESTION.jsonl [SIGNAL ...]

Draws, for each signal, prefer-local keeping the most confident questions on the device
(the rest go to the cloud), plus random routing (a straight line) and the oracle (a router
that knows which side is right). Needs matplotlib (scripts/eval-routing.sh installs it in
a virtual environment outside the repository).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def curve(records, key):
    order = sorted(range(len(records)), key=key, reverse=True)
    n = len(records)
    correct = sum(r["cloud_correct"] for r in records)
    xs, ys = [0.0], [correct / n]
    for k, i in enumerate(order, 1):
        correct += records[i]["device_correct"] - records[i]["cloud_correct"]
        xs.append(k / n)
        ys.append(correct / n)
    return xs, ys


def main():
    out, title, path, *signals = sys.argv[1:]
    records = [json.loads(line) for line in open(path) if line.strip()]
    if any(r["cloud_correct"] is None for r in records):
        sys.exit("every record needs cloud_correct: run pocketlm eval with a cloud")
    signals = signals or sorted({k for r in records for k in r["scores"]})
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for name in signals:
        xs, ys = curve(records, lambda i, name=name: records[i]["scores"].get(name, float("-inf")))
        ax.plot(xs, ys, label=name)
    xs, ys = curve(records, lambda i: records[i]["device_correct"] - records[i]["cloud_correct"])
    ax.plot(xs, ys, "k:", label="oracle")
    ax.plot([0, 1], [ys[0], ys[-1]], "k--", label="random")
    ax.set_xlabel("share answered on the device")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main()
