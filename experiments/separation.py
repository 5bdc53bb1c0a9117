"""Do handcrafted schedules separate on a candidate benchmark task? (how the CPU benchmark was chosen)

    python experiments/separation.py --env cnn2_fmnist --width 0.25 --tau 25 --T 20 --seeds 5
    python experiments/separation.py --env mlp_fmnist --tau 25 --T 40 --seeds 5

Runs constant, linear, cosine, SGDR and one-cycle over the benchmark's initial LRs {1e-4 … 1e-2}
at weight decay 0.1 (seeds paired), prints test accuracy (mean ± SE per initial LR) and the
seconds each method's 25-run grid took, and saves the accuracies as `.npz` next to `--out`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganno_jax import make  # noqa: E402
from ganno_jax.evaluation import controllers  # noqa: E402
from ganno_jax.evaluation.rollout import run_grid  # noqa: E402

LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="mlp_fmnist")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--tau", type=int, default=25)
    ap.add_argument("--T", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--methods", default="constant,linear,cosine,sgdr,onecycle")
    ap.add_argument("--out", default="separation.npz")
    args = ap.parse_args(argv)
    env, params = make(args.env, model_width=args.width, tau=args.tau, episode_length=args.T, n_val=512)
    grid = [(lr, s) for lr in LRS for s in range(args.seeds)]
    res = {}
    for m in args.methods.split(","):
        t0 = time.time()
        r = run_grid(env, controllers.METHODS[m](controllers.MethodContext(env.num_actions)),
                     [g[1] for g in grid], [g[0] for g in grid], [0.1] * len(grid), params)
        acc = 100 * np.asarray(r.test_accuracy).reshape(len(LRS), args.seeds)
        res[m] = acc
        cells = " ".join(f"{a.mean():.2f}±{a.std(ddof=1) / np.sqrt(args.seeds):.2f}" for a in acc)
        print(f"{m:10s} {time.time() - t0:6.1f}s {cells} | avg {acc.mean():.2f}", flush=True)
    np.savez(args.out, **res)


if __name__ == "__main__":
    main()
