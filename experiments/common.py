"""Shared by the experiment scripts: preset grids and one call of the evaluator per result."""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # runnable as `python experiments/NAME.py` from a checkout

from ganno_jax import evaluate  # noqa: E402


def parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--preset", default="cpu", choices=("smoke", "cpu", "paper"))
    ap.add_argument("--ckpt", help="a trained GANNO run folder or checkpoint (omit: baselines only)")
    ap.add_argument("--env", help="override the preset's evaluation env")
    ap.add_argument("--out", help="default: experiments/results/<name>_<preset>")
    return ap


def run(name: str, args, grid: dict, methods: list[str]) -> int:
    """Evaluates `methods` on the preset's grid; returns the evaluator's exit status.

    Args:
      grid: {preset: {"env", "init_lrs", "wds", "seeds", "set": [KEY=VALUE ...]}}.
    """
    g = grid[args.preset]
    if args.ckpt:
        methods = ["ganno"] + methods
    out = args.out or os.path.join(HERE, "results", f"{name}_{args.preset}")
    argv = ["--env", args.env or g["env"], "--methods", ",".join(methods), "--init-lrs", g["init_lrs"],
            "--wds", g["wds"], "--seeds", str(g["seeds"]), "--preset", args.preset, "--out", out]
    for item in g.get("set", []):
        argv += ["--set", item]
    if args.ckpt:
        argv += ["--ckpt", args.ckpt]
    return evaluate.main(argv)
