"""Environment throughput with a random policy vs the plain inner loop, as JSON.

Usage: python -m benchmarks.env_throughput [--env cnn2_fmnist] [--tau 20] [--envs 1,4] [--out FILE]

Counts (SPEC §1): an *env step* is `tau` inner steps under one joint action; with the no-op branch
on (training) it also runs `tau` inner steps of the counterfactual, so `work_inner_steps_per_s`
counts both branches and `inner_steps_per_s` only the action branch. Ratios are against a plain
jitted `optax.adamw` loop of the same model and batch in the same process (`plain_inner_steps_per_s`).
The physical ceiling of `ratio_work` is 1.0; of the action-branch ratio in training, 0.5.
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp

import ganno_jax
from benchmarks.common import device_info, emit_json, time_fn
from benchmarks.inner_step import plain_loop


def measure_env(env_id: str, tau: int, num_envs: int, noop: bool, steps: int) -> dict:
    env, params = ganno_jax.make(env_id, tau=tau, episode_length=10_000, n_val=512, noop_branch=noop,
                                 reward="difference_accuracy" if noop else "accuracy")
    keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)

    @jax.jit
    def run(states, key):
        def body(carry, k):
            states = carry
            act_key, step_key = jax.random.split(k)
            actions = jax.random.randint(act_key, (num_envs, env.num_agents()), 0, env.num_actions)
            _, states, reward, _, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(step_key, num_envs), states, actions, params)
            return states, reward
        return jax.lax.scan(body, states, jax.random.split(key, steps))

    t = time_fn(run, states, jax.random.PRNGKey(1), repeats=3)
    env_steps = steps * num_envs
    branches = 2 if noop else 1
    return {"num_envs": num_envs, "noop_branch": noop, "tau": tau,
            "env_steps_per_s": env_steps / t["median_s"],
            "inner_steps_per_s": env_steps * tau / t["median_s"],
            "work_inner_steps_per_s": env_steps * tau * branches / t["median_s"],
            "compile_s": t["compile_s"]}


def measure_plain(env_id: str, steps: int = 100) -> float:
    env, params = ganno_jax.make(env_id)
    n = steps * 128
    x = params.data.x_train[:n].reshape(steps, 128, *params.data.x_train.shape[1:])
    y = params.data.y_train[:n].reshape(steps, 128)
    state = env.task.init(jax.random.PRNGKey(0), jnp.full(env.num_agents(), 1e-3), 0.1)
    t = time_fn(plain_loop(env.task.model, x, y), state.params, repeats=3)
    return steps / t["median_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="cnn2_fmnist")
    ap.add_argument("--tau", type=int, default=20)
    ap.add_argument("--steps", type=int, default=4, help="env steps per timed call")
    ap.add_argument("--envs", default="1,4")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    plain = measure_plain(args.env)
    rows = []
    for e in (int(x) for x in args.envs.split(",")):
        for noop in (False, True):
            r = measure_env(args.env, args.tau, e, noop, args.steps)
            r["ratio_inner"] = r["inner_steps_per_s"] / plain
            r["ratio_work"] = r["work_inner_steps_per_s"] / plain
            rows.append(r)
            print(json.dumps(r), flush=True)
    result = {"device": device_info(), "env": args.env, "batch": 128,
              "plain_inner_steps_per_s": plain, "policy": "uniform random actions", "runs": rows}
    emit_json(result, args.out)


if __name__ == "__main__":
    main()
