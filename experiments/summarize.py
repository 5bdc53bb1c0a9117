"""Tables of paired benchmark results from the `summary.json` files of an experiment folder.

    python experiments/summarize.py experiments/results/default_agent [--variants ippo,bc,central,both]
    python experiments/summarize.py experiments/results/ablation --variants bc,central,both \
        --envs mlp_fmnist --versus experiments/results/default_agent

`--versus DIR` adds a column: each variant's agent − the default (IPPO) agent of the same training
seed in DIR, paired over the benchmark cells (init LR, weight decay, seed) both ran.

For every variant and training seed with a `bench_<variant>_s<seed>_<env>/summary.json`: the
agent's mean test accuracy, and against each baseline the paired mean difference with its 95% CI,
marked ✓ where the CI lies above 0 (the agent beats the baseline on that seed's benchmark).
Writes `tables.md` in the folder and prints it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganno_jax.evaluation.report import paired  # noqa: E402

BASELINES = ("random", "constant", "cosine", "linear", "onecycle", "warmup_cosine", "sgdr")


def cell(p: dict) -> str:
    mark = " ✓" if p["ci95"][0] > 0 else (" ✗" if p["ci95"][1] < 0 else "")
    return f"{p['mean_diff']:+.2f} [{p['ci95'][0]:+.2f}, {p['ci95'][1]:+.2f}]{mark}"


def agent_cells(bench_dir: str) -> dict:
    """(init LR, weight decay, seed) -> the checkpoint's agent's test accuracy in %."""
    with open(os.path.join(bench_dir, "results.csv")) as f:
        return {(r["init_lr"], r["weight_decay"], r["seed"]): 100.0 * float(r["test_accuracy"])
                for r in csv.DictReader(f) if r["method"] not in BASELINES}


def table(folder: str, env: str, variants: list[str], seeds=(0, 1, 2), versus: str | None = None) -> str:
    extra = ["vs IPPO, same training seed"] if versus else []
    lines = [f"### {env}", "",
             "| agent | seed | agent mean ± SE | best handcrafted mean | "
             + " | ".join([f"vs {b}" for b in BASELINES] + extra) + " |",
             "|---" * (4 + len(BASELINES) + len(extra)) + "|"]
    for v in variants:
        for s in seeds:
            path = os.path.join(folder, f"bench_{v}_s{s}_{env}", "summary.json")
            if not os.path.exists(path):
                continue
            with open(path) as f:
                summ = json.load(f)
            agent = next(m for m in summ["methods"] if m not in BASELINES)
            a = summ["methods"][agent]
            best = max((summ["methods"][b]["mean"], b) for b in BASELINES[1:] if b in summ["methods"])
            cells = [cell(summ["paired"][b]) if b in summ["paired"] else "-" for b in BASELINES]
            if versus:
                ref_dir = os.path.join(versus, f"bench_ippo_s{s}_{env}")
                mine, ref = agent_cells(os.path.dirname(path)), agent_cells(ref_dir) if os.path.isdir(ref_dir) else {}
                keys = sorted(set(mine) & set(ref))
                p = paired(np.array([mine[k] - ref[k] for k in keys])) if keys else None
                cells.append(f"{cell(p)} ({p['wins']}/{p['n']} wins)" if p else "-")
            lines.append(f"| {v} | {s} | {a['mean']:.2f} ± {a['se']:.2f} | {best[1]} {best[0]:.2f} | "
                         + " | ".join(cells) + " |")
    sep = next((json.load(open(os.path.join(folder, d, "summary.json")))["separation"]
                for d in sorted(os.listdir(folder)) if d.endswith(env) and d.startswith("bench_")
                and os.path.exists(os.path.join(folder, d, "summary.json"))), None)
    if sep:
        lines += ["", f"Separation at the best initial LR ({sep['init_lr']:g}): {sep['best']} − {sep['worst']} = "
                      f"{sep['mean_diff']:+.2f} points, {sep['standard_errors']:.1f} standard errors (paired over seeds)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--variants", default="ippo")
    ap.add_argument("--envs", default="mlp_fmnist,mlp5_fmnist,mlp_mnist")
    ap.add_argument("--versus", default=None, help="folder with the default agent's bench_ippo_s<seed>_<env>")
    args = ap.parse_args(argv)
    text = "\n".join(table(args.folder, env, args.variants.split(","), versus=args.versus)
                      for env in args.envs.split(","))
    with open(os.path.join(args.folder, "tables.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
