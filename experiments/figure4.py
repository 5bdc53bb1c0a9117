"""Figure 4 (paper): depth generalisation. GANNO trained on ResNet-9 (Fashion-MNIST), evaluated
zero-shot on ResNet-18 (CIFAR-10) against the random agent and SGDR, at weight decays 0.01 and 0.1.

  python experiments/figure4.py --preset cpu        # trains, then evaluates; experiments/results/figure4_cpu/
  python experiments/figure4.py --preset cpu --ckpt runs/RUN    # evaluation only

Writes `train/` (the run folder, unless --ckpt is given) and `eval/` (results.md, results.csv, the
test-accuracy-over-steps plots `accuracy_*.png` that are the figure, and LR schedules).
Presets: `paper` uses the standard nets and the paper-scale episodes (an accelerator); `cpu` uses
ResNets of 1/8 width (8–64 channels) and the `cpu` episode (tau 5 × T 40 = 200 inner steps),
1,024 training env steps (16 PPO updates), init LR 1e-3, 2 seeds; `smoke`: minutes, for the slow
test.
"""

from __future__ import annotations

import os
import sys

from common import HERE, parser

from ganno_jax import evaluate, train

SCALE = {
    "smoke": dict(set=["model_width=0.125", "batch_size=16", "n_val=32"], init_lrs="1e-3", seeds=1),
    "cpu": dict(set=["model_width=0.125"], train_set=["total_env_steps=1024"], init_lrs="1e-3", seeds=2),
    "paper": dict(set=[], init_lrs="1e-4,1e-3,1e-2", seeds=3),
}

if __name__ == "__main__":
    args = parser(__doc__).parse_args()
    root = args.out or os.path.join(HERE, "results", f"figure4_{args.preset}")
    s = SCALE[args.preset]
    sets = [x for item in s["set"] for x in ("--set", item)]
    ckpt = args.ckpt
    if not ckpt:
        ckpt = os.path.join(root, "train")
        extra = [x for item in s.get("train_set", []) for x in ("--set", item)]
        code = train.main(["--env", "resnet9_fmnist", "--preset", args.preset, "--out", ckpt, *sets, *extra])
        if code:
            sys.exit(code)
    sys.exit(evaluate.main([
        "--ckpt", ckpt, "--env", args.env or "resnet18_cifar10", "--methods", "ganno,random,sgdr",
        "--init-lrs", s["init_lrs"], "--wds", "0.01,0.1", "--seeds", str(s["seeds"]),
        "--preset", args.preset, "--out", os.path.join(root, "eval"), *sets]))
