"""Results of an evaluation grid: CSV rows, a paper-style markdown table, PNG plots."""

from __future__ import annotations

import csv
from collections import defaultdict

import numpy as np

from ganno_jax.plotting import plot_layer_lrs

CSV_FIELDS = ("method", "env", "init_lr", "weight_decay", "seed", "test_accuracy", "test_loss",
              "final_val_accuracy", "diverged", "inner_steps", "wall_time_s")


def write_csv(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in CSV_FIELDS})


def read_csv(path: str) -> list[dict]:
    """Rows written by `write_csv`, with their numbers and flags typed back."""
    types = {"init_lr": float, "weight_decay": float, "seed": int, "test_accuracy": float,
             "test_loss": float, "final_val_accuracy": float, "inner_steps": int, "wall_time_s": float,
             "diverged": lambda v: v == "True"}
    with open(path, newline="") as f:
        return [{k: types.get(k, str)(v) for k, v in r.items()} for r in csv.DictReader(f)]


def markdown_table(rows: list[dict], metric: str = "test_accuracy", title: str = "") -> str:
    """Methods × initial LRs (+ average), mean ± std over seeds in %, best per column in bold.

    One table per weight decay. The row average is the mean over initial LRs of the per-seed
    values; its ± is the std over seeds of the per-seed averages (as the paper reports it).
    """
    out = [title] if title else []
    for wd in sorted({r["weight_decay"] for r in rows}):
        sub = [r for r in rows if r["weight_decay"] == wd]
        lrs = sorted({r["init_lr"] for r in sub})
        methods = list(dict.fromkeys(r["method"] for r in sub))
        cell = defaultdict(dict)  # (method, lr) -> {seed: value}
        for r in sub:
            cell[(r["method"], r["init_lr"])][r["seed"]] = 100.0 * r[metric]
        stats = {}
        for m in methods:
            for lr in lrs:
                v = np.array(list(cell[(m, lr)].values()))
                stats[(m, lr)] = (v.mean(), v.std())
            seeds = sorted(set.intersection(*(set(cell[(m, lr)]) for lr in lrs)))
            avg = np.array([np.mean([cell[(m, lr)][s] for lr in lrs]) for s in seeds])
            stats[(m, "avg")] = (avg.mean(), avg.std())
        cols = lrs + ["avg"]
        best = {c: max(stats[(m, c)][0] for m in methods) for c in cols}
        diverged = defaultdict(int)
        for r in sub:
            diverged[r["method"]] += int(r["diverged"])
        out.append(f"\nWeight decay {wd:g} — {metric.replace('_', ' ')} (%), mean ± std over seeds\n")
        out.append("| Method | " + " | ".join(f"{lr:g}" for lr in lrs) + " | Average | Diverged |")
        out.append("|---" * (len(cols) + 2) + "|")
        for m in methods:
            cells = []
            for c in cols:
                mean, std = stats[(m, c)]
                text = f"{mean:.2f} ± {std:.2f}"
                cells.append(f"**{text}**" if np.isclose(mean, best[c]) else text)
            out.append(f"| {m} | " + " | ".join(cells) + f" | {diverged[m]} |")
    return "\n".join(out) + "\n"


def save_curves(path: str, curves: dict) -> None:
    """Writes `curves` ({(method, init_lr, wd): {name: array}}) as `method|lr|wd|name` npz keys."""
    np.savez_compressed(path, **{f"{m}|{lr:g}|{wd:g}|{k}": v for (m, lr, wd), c in curves.items()
                                 for k, v in c.items()})


def load_curves(path: str) -> dict:
    """The inverse of `save_curves`, so plots can be redrawn from a finished evaluation."""
    curves: dict = defaultdict(dict)
    with np.load(path) as f:
        for key in f.files:
            m, lr, wd, name = key.split("|")
            curves[(m, float(lr), float(wd))][name] = f[key]
    return dict(curves)


def plot_grid(path_prefix: str, curves: dict, tau: int, label: str) -> list[str]:
    """Per-layer LR schedules and test accuracy over inner steps, one PNG pair per (init LR, wd).

    Args:
      curves: {(method, init_lr, wd): {"lrs": (seeds, T, A), "test_accuracy": (seeds, T)}}; the
        accuracy curve is on the fixed test subset (see `rollout`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for lr, wd in sorted({(k[1], k[2]) for k in curves}):
        methods = [k[0] for k in curves if k[1:] == (lr, wd)]
        cols = min(len(methods), 5)
        rows = -(-len(methods) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False,
                                 sharey=True)
        for ax in axes.flat[len(methods):]:
            ax.set_visible(False)
        for ax, m in zip(axes.flat, methods):
            lrs = curves[(m, lr, wd)]["lrs"][0]  # first seed
            ax.set_title(f"{m}", fontsize=9)
            if np.all(np.isnan(lrs)):  # an LR-free optimiser records none
                ax.text(0.5, 0.5, "LR-free: no learning rate", ha="center", va="center",
                        transform=ax.transAxes, fontsize=8)
                ax.set_xticks([])
                continue
            steps = np.arange(lrs.shape[0]) * tau
            plot_layer_lrs(ax, steps, lrs, step_plot=True, legend=ax is axes.flat[0], fontsize=6)
        for ax in axes[-1]:
            ax.set_xlabel("inner steps")
        for ax in axes[:, 0]:
            ax.set_ylabel("learning rate")
        fig.suptitle(f"{label}: per-layer LR, init LR {lr:g}, wd {wd:g} (seed 0)", fontsize=10)
        fig.tight_layout()
        p = f"{path_prefix}lr_schedules_lr{lr:g}_wd{wd:g}.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        written.append(p)

        fig, ax = plt.subplots(figsize=(7, 4))
        for m in methods:
            acc = curves[(m, lr, wd)]["test_accuracy"]
            steps = (np.arange(acc.shape[1]) + 1) * tau
            ax.plot(steps, acc.mean(0), label=m, lw=2.0 if m == "ganno" else 1.0)
            ax.fill_between(steps, acc.min(0), acc.max(0), alpha=0.12)
        ax.set_xlabel("inner steps")
        ax.set_ylabel("test accuracy (fixed subset)")
        ax.set_title(f"{label}: init LR {lr:g}, wd {wd:g} (mean, min–max over seeds)", fontsize=9)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        p = f"{path_prefix}accuracy_lr{lr:g}_wd{wd:g}.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        written.append(p)
    return written



SEPARATION_METHODS = ("constant", "linear", "cosine", "sgdr", "onecycle")


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def paired(diffs: np.ndarray) -> dict:
    """Mean, 95% CI (Student t over the n paired cells), wins (> 0) and n of paired differences."""
    from scipy import stats

    mean, se = _mean_se(diffs)
    half = float(stats.t.ppf(0.975, len(diffs) - 1) * se) if len(diffs) > 1 else float("nan")
    return {"mean_diff": mean, "se": se, "ci95": [mean - half, mean + half],
            "wins": int(np.sum(diffs > 0)), "ties": int(np.sum(diffs == 0)), "n": int(len(diffs))}


def summary(rows: list[dict], agent: str | None, metric: str = "test_accuracy") -> dict:
    """The benchmark's `summary.json`: per method the mean, standard error and n of `metric` (in %)
    over all (init LR, weight decay, seed) cells; for `agent`, per other method the paired
    difference (agent − method) over the cells both ran; and how far the handcrafted schedules
    separate at the best initial LR (best − worst of SEPARATION_METHODS present, paired over seeds,
    in standard errors: the protocol must tell schedules apart)."""
    cells: dict = defaultdict(dict)  # method -> {(lr, wd, seed): value in %}
    for r in rows:
        cells[r["method"]][(r["init_lr"], r["weight_decay"], r["seed"])] = 100.0 * r[metric]
    out = {"metric": f"{metric} (%)", "agent": agent if agent in cells else None, "methods": {}, "paired": {}}
    for m, c in cells.items():
        mean, se = _mean_se(np.array(list(c.values())))
        out["methods"][m] = {"mean": mean, "se": se, "n": len(c)}
    if agent is not None and agent in cells:
        for m, c in cells.items():
            if m != agent:
                keys = sorted(set(c) & set(cells[agent]))
                out["paired"][m] = paired(np.array([cells[agent][k] - c[k] for k in keys]))
    out.update(user_questions(rows, agent, metric))
    for m, info in out.pop("per_method").items():
        out["methods"][m].update(info)
    hand = [m for m in SEPARATION_METHODS if m in cells]
    if len(hand) >= 2:
        lrs = sorted({k[0] for k in cells[hand[0]]})
        best_of = {lr: max(np.mean([v for k, v in cells[m].items() if k[0] == lr]) for m in hand) for lr in lrs}
        lr = max(lrs, key=best_of.get)
        means = {m: np.mean([v for k, v in cells[m].items() if k[0] == lr]) for m in hand}
        hi, lo = max(means, key=means.get), min(means, key=means.get)
        keys = sorted(k for k in cells[hi] if k[0] == lr)
        p = paired(np.array([cells[hi][k] - cells[lo][k] for k in keys]))
        out["separation"] = {"init_lr": lr, "best": hi, "worst": lo, **p,
                             "standard_errors": p["mean_diff"] / p["se"] if p["se"] > 0 else float("inf")}
    return out


def user_questions(rows: list[dict], agent: str | None, metric: str = "test_accuracy",
                   select: str = "final_val_accuracy") -> dict:
    """A user's two questions, paired over (weight decay, seed):

    untuned, "I will not tune the LR": each method's mean of `metric` over the initial LRs;
    tuned, "I will try every LR of the grid": each method at the initial LR whose mean `select`
    (validation accuracy) over seeds is best, its `metric` per seed there.

    Returns {"untuned": {m: paired}, "tuned": {m: paired}} (agent − m, empty without an agent) and
    "per_method": {m: {"by_init_lr": {lr: mean %}, "tuned_init_lr": lr, "untuned_mean", "tuned_mean"}}.
    A method that ignores the LR has the same rows in every LR column, so both answers are its value.
    """
    val: dict = defaultdict(lambda: defaultdict(dict))  # m -> lr -> (wd, seed) -> value
    test: dict = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        key = (r["weight_decay"], r["seed"])
        test[r["method"]][r["init_lr"]][key] = 100.0 * r[metric]
        val[r["method"]][r["init_lr"]][key] = 100.0 * r[select]
    untuned, tuned, per_method = {}, {}, {}
    for m in test:
        lrs = sorted(test[m])
        keys = sorted(set.intersection(*(set(test[m][lr]) for lr in lrs)))
        best = max(lrs, key=lambda lr: np.mean([val[m][lr][k] for k in keys]))  # first of ties
        untuned[m] = {k: float(np.mean([test[m][lr][k] for lr in lrs])) for k in keys}
        tuned[m] = {k: test[m][best][k] for k in keys}
        per_method[m] = {"by_init_lr": {str(lr): float(np.mean(list(test[m][lr].values()))) for lr in lrs},
                         "tuned_init_lr": best, "untuned_mean": float(np.mean(list(untuned[m].values()))),
                         "tuned_mean": float(np.mean(list(tuned[m].values())))}
    out = {"untuned": {}, "tuned": {}, "per_method": per_method}
    if agent is not None and agent in test:
        for name, per in (("untuned", untuned), ("tuned", tuned)):
            for m in per:
                if m != agent:
                    keys = sorted(set(per[m]) & set(per[agent]))
                    out[name][m] = paired(np.array([per[agent][k] - per[m][k] for k in keys]))
        rivals = [m for m in tuned if m != agent]
        if rivals:  # can a user skip tuning altogether? the agent untuned against the best rival tuned
            best = max(rivals, key=lambda m: np.mean(list(tuned[m].values())))
            keys = sorted(set(tuned[best]) & set(untuned[agent]))
            out["untuned_vs_best_tuned"] = {"rival": best, **paired(np.array(
                [untuned[agent][k] - tuned[best][k] for k in keys]))}
    return out


def cell(p: dict) -> str:
    """A paired difference as `mean [low, high]`, ✓ where the 95% CI lies above 0, ✗ below."""
    mark = " ✓" if p["ci95"][0] > 0 else (" ✗" if p["ci95"][1] < 0 else "")
    return f"{p['mean_diff']:+.2f} [{p['ci95'][0]:+.2f}, {p['ci95'][1]:+.2f}]{mark}"


def questions_table(summary: dict, agent: str) -> str:
    """Markdown: per baseline, untuned and tuned means and the agent's paired difference [95% CI]."""
    methods = summary["methods"]
    a = methods[agent]
    out = ["\n## A user's two questions (paired over seeds; test accuracy %)\n",
           f"untuned: mean over the initial LRs; tuned: at the initial LR with the best mean validation "
           f"accuracy. {agent}: untuned {a['untuned_mean']:.2f}, tuned {a['tuned_mean']:.2f} "
           f"(at {a['tuned_init_lr']:g}).\n",
           "| method | untuned | agent − method [95% CI] | tuned (LR) | agent − method [95% CI] |",
           "| --- | --- | --- | --- | --- |"]

    for m, info in methods.items():
        if m == agent or m not in summary["untuned"]:
            continue
        lr = "LR-free" if info.get("lr_free") else f"{info['tuned_init_lr']:g}"
        out.append(f"| {m} | {info['untuned_mean']:.2f} | {cell(summary['untuned'][m])} | "
                   f"{info['tuned_mean']:.2f} ({lr}) | {cell(summary['tuned'][m])} |")
    skip = summary.get("untuned_vs_best_tuned")
    if skip:
        out.append(f"\nSkip tuning altogether? {agent} untuned − {skip['rival']} tuned (the best tuned rival): "
                   f"{cell(skip)}.")
    return "\n".join(out) + "\n"
