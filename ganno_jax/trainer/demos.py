"""Demonstrations from handcrafted schedules, mapped onto the agents' discrete actions.

A schedule from `inner/schedules.py` with peak α = the episode's initial LR gives, at every
env step t, a target LR for the next block of tau inner steps: its value at inner step t·tau.
Each agent takes the action whose result is closest to that target in log space (`track`), and
the env runs on those actions, so the demonstration holds the observations an agent would see
while following the schedule as closely as its action set allows. Tracking error is recorded
(`log10_error`: |log10 LR − log10 target| per agent and step).

Format (one `.npz` per schedule, extendable by hand): obs (E, T, A, D) float32, actions (E, T, A)
int32, rewards (E, T), dones (E, T) bool, lrs and targets (E, T, A), and `obs_names`.
E episodes, T env steps, A agents, D features. `load` accepts any such file.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from ganno_jax.env.actions import ACTION_SETS, apply_action_set
from ganno_jax.inner.schedules import schedule as make_schedule
from ganno_jax.inner import optim

FIELDS = ("obs", "actions", "rewards", "dones", "lrs", "targets")


def track(env, lrs: jax.Array, target: jax.Array) -> jax.Array:
    """(num_agents,) the action per agent whose new LR is closest to `target` in log10."""
    cfg = env.config
    candidates = jnp.stack([apply_action_set(lrs, jnp.full(lrs.shape, a, jnp.int32), cfg.lr_max,
                                             cfg.action_set, cfg.lr_min)
                            for a in range(ACTION_SETS[cfg.action_set])])  # (num_actions, A)
    log = lambda x: jnp.log10(jnp.maximum(x, 1e-10))  # noqa: E731
    return jnp.argmin(jnp.abs(log(candidates) - log(target)[None]), axis=0).astype(jnp.int32)


def make_demo_rollout(env, schedule_name: str):
    """`rollout(key, params) -> dict of (T, ...) arrays`: one episode following the schedule."""
    T, tau = env.config.episode_length, env.config.tau

    def rollout(key, params):
        reset_key, run_key = jax.random.split(key)
        obs, state = env.reset(reset_key, params)
        sched = make_schedule(schedule_name, state.init_lr, T * tau)

        def body(carry, xs):
            obs, state = carry
            t, step_key = xs
            lrs = optim.get_learning_rates(state.inner.opt_state)
            target = jnp.broadcast_to(sched(t * tau), lrs.shape)
            actions = track(env, lrs, target)
            new_obs, state, reward, done, info = env.step_env(step_key, state, actions, params)
            out = {"obs": obs, "actions": actions, "rewards": reward, "dones": done, "lrs": info["lrs"],
                   "targets": target}
            return (new_obs, state), out

        _, traj = jax.lax.scan(body, (obs, state), (jnp.arange(T), jax.random.split(run_key, T)))
        return traj

    return rollout


def generate(env, params, schedule_name: str, num_episodes: int, key: jax.Array) -> dict:
    """`num_episodes` demonstrations of one schedule (initial conditions drawn as in training)."""
    rollout = jax.jit(jax.vmap(make_demo_rollout(env, schedule_name), in_axes=(0, None)))
    out = jax.device_get(rollout(jax.random.split(key, num_episodes), params))
    out = {k: np.asarray(v) for k, v in out.items()}
    out["log10_error"] = np.abs(np.log10(np.maximum(out["lrs"], 1e-10)) - np.log10(np.maximum(out["targets"], 1e-10)))
    return out


def save(path: str, demo: dict, obs_names) -> None:
    np.savez_compressed(path, obs_names=np.asarray(obs_names), **{k: demo[k] for k in FIELDS})


def load(path: str) -> tuple[dict, tuple[str, ...]]:
    with np.load(path) as f:
        return {k: f[k] for k in FIELDS}, tuple(str(n) for n in f["obs_names"])


def generate_all(env, params, schedules: tuple[str, ...], episodes: int, key: jax.Array,
                 out_dir: str | None = None) -> dict[str, dict]:
    """Demonstrations of every schedule; written as `<out_dir>/<schedule>.npz` when given."""
    demos = {}
    for i, name in enumerate(schedules):
        demos[name] = generate(env, params, name, episodes, jax.random.fold_in(key, i))
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
            save(os.path.join(out_dir, f"{name}.npz"), demos[name], env.obs_names)
    return demos
