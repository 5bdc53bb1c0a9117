"""The default agent with far more experience, for one GPU in one call of at most 9 minutes.

The `cpu` preset on mlp_fmnist (the benchmark's task) with 32× its env copies and updates of the
same rollout length: 256 env copies × 40 env steps × 60 updates = 614,400 env steps, 32× the
CPU run's 19,200 (15.4 M inner steps), with 16 minibatches per epoch (240 recurrent sequences
each, against the CPU run's 30) so the PPO epoch takes 16 steps, not 4. Data come from
an ignored folder inside the checkout (`.carry/data`, copied from `../shared/data`, named in the
device tool's `carry`), so nothing outside the checkout is needed on the GPU machine.

    python experiments/gpu_default_agent.py --out runs/gpu_s0 --seed 0            # the GPU run
    python experiments/gpu_default_agent.py --out /tmp/x --scale smoke             # CPU check

Then benchmark the run on the CPU (`make benchmark CKPT=runs/gpu_s0`, or with
`--baselines-from experiments/results/rivals/bench_default_mlp_fmnist`) and ship it only if it
beats the shipped agent on the paired comparison.
"""

import argparse
import os
import sys

SCALES = {
    # 32× the CPU experience; the earlier H200 figures (benchmarks/README.md) suggest well under 9 minutes.
    "gpu": {"num_envs": 256, "total_env_steps": 256 * 40 * 60, "num_minibatches": 16},
    # The same flags at smoke size: the recipe's plumbing, on any CPU, in about a minute.
    "smoke": {"num_envs": 4, "total_env_steps": 4 * 8 * 2, "num_minibatches": 2, "rollout_len": 8,
              "seq_len": 4, "tau": 2, "episode_length": 4, "n_val": 32},
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", default="0")
    ap.add_argument("--scale", default="gpu", choices=sorted(SCALES))
    args = ap.parse_args(argv)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    carried = os.path.join(root, ".carry", "data")
    if not os.environ.get("GANNO_DATA_DIR") and os.path.isdir(carried):
        os.environ["GANNO_DATA_DIR"] = carried
    from ganno_jax import train

    sets = [f"{k}={v}" for k, v in SCALES[args.scale].items()]
    argv = ["--env", "mlp_fmnist", "--preset", "cpu", "--seed", args.seed, "--out", args.out]
    return train.main(argv + [x for s in sets for x in ("--set", s)])


if __name__ == "__main__":
    sys.exit(main())
