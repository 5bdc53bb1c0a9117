"""Table 1 (paper): GANNO zero-shot on cnn5 vs every handcrafted schedule and learned optimiser.

  python experiments/table1.py --preset cpu --ckpt runs/RUN        # writes experiments/results/table1_cpu/

Presets (the paper's protocol is `paper`: cnn5 on CIFAR-10, 5 initial LRs, wd 0.1, 3 seeds; its
length is the `paper` evaluation preset's tau × T inner steps):
  cpu: cnn5 on Fashion-MNIST (a cnn5 step on CIFAR-10 costs 140 ms on the 2-core CPU, 87 ms on
       Fashion-MNIST), 200 inner steps (tau 5 × T 40, the `cpu` training episode), initial LRs
       {1e-4, 1e-3, 1e-2}, 2 seeds. smoke: seconds, for tests.
"""

from __future__ import annotations

import sys

from common import parser, run

GRID = {
    "smoke": dict(env="cnn5_fmnist", init_lrs="1e-3", wds="0.1", seeds=1, set=["n_val=32", "batch_size=32"]),
    "cpu": dict(env="cnn5_fmnist", init_lrs="1e-4,1e-3,1e-2", wds="0.1", seeds=2),
    "paper": dict(env="cnn5_cifar10", init_lrs="1e-4,3e-4,1e-3,3e-3,1e-2", wds="0.1", seeds=3),
}
METHODS = ["random", "constant", "linear", "quadratic", "cosine", "exponential", "piecewise", "sgdr",
           "warmup_cosine", "onecycle", "lamb_cosine", "lion"]

if __name__ == "__main__":
    sys.exit(run("table1", parser(__doc__).parse_args(), GRID, METHODS))
