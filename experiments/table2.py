"""Table 2 (paper): GANNO vs its ablations (LR-only, timestep-only, single-agent), and the seed
systems on request; each trained on cnn2 Fashion-MNIST, evaluated zero-shot on cnn5.

  python experiments/table2.py --preset cpu                  # trains every agent, then evaluates
  python experiments/table2.py --preset cpu --runs DIR       # reuse DIR/<agent>/ run folders

Writes `train/<agent>/` (run folders), `eval/<agent>/` (one evaluation per agent: the evaluator
takes one checkpoint) and the merged `results.csv` / `results.md` with one row per agent.
Grid: initial LRs {0, 1e-4, …, 1e-2} as in the paper (`paper`), {0, 1e-3, 1e-2} with 2 seeds
on cnn5 Fashion-MNIST (`cpu`; every agent trained for 512 env steps = 8 PPO updates of the `cpu`
preset, equal budgets that fit a few hours on 2 cores: expect barely trained agents), one LR and one
seed (`smoke`).
"""

from __future__ import annotations

import csv
import json
import os
import sys

from common import HERE, parser

from ganno_jax import evaluate, train
from ganno_jax.evaluation import report

AGENTS = ["ganno-lr-only", "ganno-timestep-only", "ganno-single-agent", "ganno"]
SEED_SYSTEMS = ["xu2019", "subramanian2023"]
GRID = {
    "smoke": dict(env="cnn5_fmnist", init_lrs="1e-3", seeds=1, train_set=[], eval_set=["n_val=32"]),
    "cpu": dict(env="cnn5_fmnist", init_lrs="0,1e-3,1e-2", seeds=2, train_set=["total_env_steps=512"],
                eval_set=[]),
    "paper": dict(env="cnn5_cifar10", init_lrs="0,1e-4,3e-4,1e-3,3e-3,1e-2", seeds=3, train_set=[],
                  eval_set=[]),
}


def _sets(items):
    return [x for item in items for x in ("--set", item)]


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--runs", help="folder holding one trained run per agent, named by agent")
    ap.add_argument("--seed-systems", action="store_true", help="also xu2019 and subramanian2023")
    args = ap.parse_args()
    g = GRID[args.preset]
    root = args.out or os.path.join(HERE, "results", f"table2_{args.preset}")
    if os.path.exists(os.path.join(root, "results.md")):
        print(f"error: {root} already holds results; choose another --out", file=sys.stderr)
        return 2
    agents = AGENTS + (SEED_SYSTEMS if args.seed_systems else [])
    rows = []
    for agent in agents:
        run = os.path.join(args.runs or os.path.join(root, "train"), agent)
        if not args.runs:
            code = train.main(["--env", "cnn2_fmnist", "--preset", args.preset, "--agent", agent,
                               "--out", run, *_sets(g["train_set"])])
            if code:
                return code
        out = os.path.join(root, "eval", agent)
        code = evaluate.main(["--ckpt", run, "--env", args.env or g["env"], "--methods", agent,
                              "--init-lrs", g["init_lrs"], "--wds", "0.1", "--seeds", str(g["seeds"]),
                              "--preset", args.preset, "--out", out, *_sets(g["eval_set"])])
        if code:
            return code
        rows += [dict(r, init_lr=float(r["init_lr"]), weight_decay=float(r["weight_decay"]),
                      seed=int(r["seed"]), test_accuracy=float(r["test_accuracy"]),
                      diverged=r["diverged"] == "True")
                 for r in csv.DictReader(open(os.path.join(out, "results.csv")))]
    report.write_csv(os.path.join(root, "results.csv"), rows)
    title = (f"# Table 2 ({args.preset}): trained on cnn2_fmnist, evaluated on {args.env or g['env']}\n\n"
             f"One evaluation per agent under eval/<agent>/; merged here.")
    with open(os.path.join(root, "results.md"), "w") as f:
        f.write(report.markdown_table(rows, "test_accuracy", title))
    with open(os.path.join(root, "command.json"), "w") as f:
        json.dump({"argv": sys.argv}, f, indent=2)
    print(f"results: {root}/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
