"""The README's performance table, generated from a `benchmarks.throughput` JSON.

Usage: python -m benchmarks.report benchmarks/results/throughput-cpu.json

Prints markdown: per model the inner steps per second of the plain optax loop, the deployment
(policy every tau steps, no no-op branch) and the trainer (both branches counted as work) with
their ratios to plain and the goals they are held to, achieved FLOP/s, PyTorch eager and the
JSON's per-part profile of one env step; then the scaling over vmapped env copies and devices.
"""

from __future__ import annotations

import argparse
import json

# The goals each measured ratio is held to, next to it.
GOALS = {"ratio_deploy": "≥ 0.95", "ratio_deploy_tau100": "≥ 0.97", "ratio_train": "≥ 0.90",
         "ratio_plain_vs_torch": "≥ 2"}


def _f(x, digits=2) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def model_table(result: dict) -> str:
    """One row per measurement, one column per model."""
    models = result["models"]
    names = [m["model"] for m in models]
    tau = models[0]["tau"]
    rows = [
        (f"plain optax, inner steps/s (tau {tau})", [_f(m["plain_inner_steps_per_s"], 1) for m in models], ""),
        ("deployment, inner steps/s", [_f(m["deploy_inner_steps_per_s"], 1) for m in models], ""),
        ("deployment / plain", [_f(m["ratio_deploy"]) for m in models], GOALS["ratio_deploy"]),
        ("deployment / plain at tau 100", [_f(m.get("ratio_deploy_tau100")) for m in models],
         GOALS["ratio_deploy_tau100"]),
        ("training work / plain (both branches)", [_f(m["ratio_train"]) for m in models], GOALS["ratio_train"]),
        ("training, env steps/s", [_f(m["train_env_steps_per_s"], 3) for m in models], ""),
        ("plain GFLOP/s", [_f(m["achieved_flops_per_s"]["plain"] / 1e9, 1) for m in models], ""),
        ("plain / measured matmul peak", [_f(m.get("fraction_of_peak")) for m in models], "≥ 0.50 (cnn2)"),
        ("PyTorch eager AdamW, inner steps/s", [_f(m.get("torch_inner_steps_per_s"), 1) for m in models], ""),
        ("plain JAX / PyTorch", [_f(m.get("ratio_plain_vs_torch")) for m in models],
         GOALS["ratio_plain_vs_torch"]),
        ("compile s (plain / deploy / train)",
         [" / ".join(_f(m["compile_s"][k], 1) for k in ("plain", "deploy", "train")) for m in models], ""),
    ]
    parts = sorted({k for m in models for k in m.get("parts_ms_per_env_step", {})})
    rows += [(f"profile: {k}, ms per env step", [_f(m.get("parts_ms_per_env_step", {}).get(k)) for m in models], "")
             for k in parts]
    lines = ["| measurement | " + " | ".join(names) + " | goal |", "|---" * (len(names) + 2) + "|"]
    lines += [f"| {label} | " + " | ".join(vals) + f" | {goal} |" for label, vals, goal in rows]
    return "\n".join(lines)


def scaling_table(result: dict) -> str:
    """Inner steps/s over the number of vmapped env copies (and devices), relative to 1 env."""
    rows = result["scaling_envs"]
    base = rows[0]
    lines = ["| env copies | devices | deploy inner steps/s | × 1 env | train inner steps/s | × 1 env |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['num_envs']} | {r['num_devices']} | {_f(r['deploy_inner_steps_per_s'], 1)} | "
                     f"{_f(r['deploy_inner_steps_per_s'] / base['deploy_inner_steps_per_s'])} | "
                     f"{_f(r['train_inner_steps_per_s'], 1)} | "
                     f"{_f(r['train_inner_steps_per_s'] / base['train_inner_steps_per_s'])} |")
    for r in result.get("scaling_devices", []):
        lines.append(f"| {r['num_envs']} | {r['num_devices']} | — | — | {_f(r['train_inner_steps_per_s'], 1)} | "
                     f"{_f(r['train_inner_steps_per_s'] / base['train_inner_steps_per_s'])} |")
    return "\n".join(lines)


def user_loop_table(result: dict) -> str:
    """`ganno_jax.scheduler` against `optax.adamw` in a user's own jitted scan (absent in older JSON)."""
    rows = result.get("user_loop", [])
    if not rows:
        return ""
    lines = ["| user loop (scan of the user's Flax model) | steps | AdamW ms/step | scheduler ms/step | "
             "AdamW / scheduler | goal |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['steps']} | {_f(r['adamw_ms_per_step'], 3)} | "
                     f"{_f(r['scheduler_ms_per_step'], 3)} | {_f(r['ratio_user_loop'])} | ≥ 0.95 |")
    return "\n".join(lines)


def render(result: dict) -> str:
    d = result["device"]
    head = (f"`benchmarks.throughput --preset {result['preset']}`: {d['platform']} ({d['device_kind']}), "
            f"{d['num_devices']} device(s), jax {d['jax']}, {d['date'][:10]}; medians of repeats, compile apart; "
            f"synthetic 28×28 data, batch 128.")
    peak = result.get("roofline")
    if peak:
        head += (f" Roofline measured in the same run: f32 matmul {peak['matmul_n']}² "
                 f"{peak['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s, 3×3 convolution {peak['conv_shape_nhwc']} "
                 f"{peak['conv_flops_per_s'] / 1e9:.1f} GFLOP/s.")
    tables = [head, model_table(result), scaling_table(result), user_loop_table(result)]
    return "\n\n".join(t for t in tables if t) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json")
    args = ap.parse_args(argv)
    with open(args.json) as f:
        print(render(json.load(f)), end="")


if __name__ == "__main__":
    main()
