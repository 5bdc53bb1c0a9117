"""Learner drift: does a solved memory task stay solved, Adam against AMSGrad?

Trains the recall task of `tests/toy_env.RecallEnv` (3 agents, 4 cues, 5-step episodes; 16 envs,
rollout 16, lr 2e-3, γ 0.9) for 400 updates per training seed and learner optimiser, and prints,
per run: the first update whose sampled reward exceeds 0.99, the lowest sampled reward after
update 150 (the task is solved by ~40), the highest policy entropy after 150, and the greedy
reward on 512 fresh episodes at the end.

    python experiments/learner_drift.py --seeds 0 1 2 3 4 5 > experiments/results/learner_drift/table.md
"""

import argparse
import dataclasses
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from test_trainer import RECALL, _greedy_recall  # noqa: E402  the test's task and greedy check
from toy_env import RecallEnv  # noqa: E402

from ganno_jax.trainer.anakin import make_trainer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--opts", nargs="+", default=["adam", "amsgrad"])
    args = ap.parse_args()
    env = RecallEnv(num_agents=3, episode_length=5)
    print("| agent_opt | seed | solved at update | min reward after 150 | max entropy after 150 | greedy at 400 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for opt in args.opts:
        train = make_trainer(dataclasses.replace(RECALL, agent_opt=opt), env, None).train
        for seed in args.seeds:
            runner, (m, _) = train(jax.random.PRNGKey(seed))
            reward, ent = np.asarray(m["reward"]), np.asarray(m["entropy"])
            greedy = _greedy_recall(runner.agent, env, jax.random.PRNGKey(100 + seed))
            print(f"| {opt} | {seed} | {int(np.argmax(reward > 0.99))} | {reward[150:].min():.3f} | "
                  f"{ent[150:].max():.3f} | {greedy:.3f} |", flush=True)


if __name__ == "__main__":
    main()
