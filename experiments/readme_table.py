"""The README's results table: one agent's benchmarks (in-distribution and zero-shot), every rival,
both questions, from their `summary.json` files.

    python experiments/readme_table.py LABEL=BENCH_DIR [LABEL=BENCH_DIR ...]

Per rival and benchmark: the agent's paired difference (agent − rival, points of test accuracy,
mean [95% CI] over the benchmark's seeds), untuned then tuned; ✓ where the CI lies above 0, ✗
where it lies below, nothing where it contains 0. The last row is the agent untuned against the
best rival tuned.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganno_jax.evaluation.report import cell  # noqa: E402  (one format for every table)


def main(argv: list[str]) -> str:
    benches = [a.rsplit("=", 1) for a in argv]  # a label may hold "=" itself
    sums = [(label, json.load(open(os.path.join(d, "summary.json")))) for label, d in benches]
    agent = sums[0][1]["agent"]
    head = "| rival | " + " | ".join(f"{label} untuned | {label} tuned" for label, _ in sums) + " |"
    out = [head, "|---" * (1 + 2 * len(sums)) + "|"]
    means = " | ".join(f"**{s['methods'][agent]['untuned_mean']:.2f}** | **{s['methods'][agent]['tuned_mean']:.2f}** "
                       f"({s['methods'][agent]['tuned_init_lr']:g})" for _, s in sums)
    out.append(f"| the agent (test accuracy %) | {means} |")
    for m in sums[0][1]["untuned"]:
        cells = []
        for _, s in sums:
            info = s["methods"][m]
            lr = "LR-free" if info.get("lr_free") else f"{info['tuned_init_lr']:g}"
            cells.append(f"{info['untuned_mean']:.2f}: {cell(s['untuned'][m])} | {info['tuned_mean']:.2f} ({lr}): "
                         f"{cell(s['tuned'][m])}")
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    skip = [s.get("untuned_vs_best_tuned") for _, s in sums]
    if all(skip):
        cells = [c for p in skip for c in (f"vs {p['rival']} tuned: {cell(p)}", "")]
        out.append("| the agent untuned vs the best rival tuned | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(main(sys.argv[1:]))
