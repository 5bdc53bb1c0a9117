"""A trained scheduling policy as a small immutable artefact: load it, save it, act with it.

A `Policy` holds what deployment needs and nothing of training: the actor's parameters, the
observation normaliser, the observation layout (feature names and version), the action set, tau
and the config it was trained with. It comes from a training run (`load_policy(run_or_checkpoint)`),
from a policy file (`save_policy` / `load_policy("x.policy")`: msgpack, a few hundred kB), or from
the package (`pretrained()`). The evaluator and `ganno_jax.scheduler` act through `act`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization, struct

from ganno_jax.agent import normalizer
from ganno_jax.agent.networks import GRU_SIZE, Actor
from ganno_jax.errors import CheckpointError, UserInputError
from ganno_jax.files import atomic_write, check_target
from ganno_jax.trainer.config import TrainConfig, config_from_json

# Format 2: the policy's msgpack payload and its SHA-256, so that a changed byte is refused (format
# 1 had no checksum: a flipped byte loaded silently with altered weights).
POLICY_FORMAT = 2
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pretrained")


@struct.dataclass
class Policy:
    """An immutable trained policy (a pytree: its arrays can be passed to jitted code)."""

    actor_params: Any  # the shared recurrent actor's parameters
    obs_stats: normalizer.RunningStats  # (obs_dim,) running mean/var the actor's inputs are scaled by
    obs_names: tuple[str, ...] = struct.field(pytree_node=False)  # the observation's features, in order
    layout_version: int = struct.field(pytree_node=False)
    num_actions: int = struct.field(pytree_node=False)
    config: TrainConfig = struct.field(pytree_node=False)  # how it was trained (tau, action set, ...)

    @property
    def obs_layout(self) -> dict:
        return {"version": self.layout_version, "names": list(self.obs_names)}

    @property
    def tau(self) -> int:
        return self.config.tau

    @property
    def action_set(self) -> str:
        return self.config.action_set


def from_agent(agent, config: TrainConfig, obs_layout: dict, num_actions: int) -> Policy:
    """The deployable part of a trainer's AgentState."""
    return Policy(actor_params=agent.actor_params, obs_stats=agent.obs_stats, obs_names=tuple(obs_layout["names"]),
                  layout_version=int(obs_layout["version"]), num_actions=int(num_actions), config=config)


def init_carry(num_agents: int) -> tuple[jax.Array, jax.Array]:
    """(GRU states (num_agents, 64) zeros, first-step flag True): the state before a run."""
    return jnp.zeros((num_agents, GRU_SIZE)), jnp.ones((), bool)


def act(policy: Policy, carry, obs: jax.Array, key: jax.Array, greedy: bool = False):
    """One decision of every agent.

    Args:
      policy: the policy.
      carry: (hidden (num_agents, 64), first ()) from `init_carry` or the previous call.
      obs: (num_agents, obs_dim) raw observations in `policy.obs_names` order.
      key: PRNG key for sampling (unused when greedy).
      greedy: take the most likely action instead of sampling.

    Returns:
      (carry, actions (num_agents,) int32).
    """
    hidden, first = carry
    obs_n = normalizer.normalize(policy.obs_stats, obs)
    resets = jnp.broadcast_to(first, (1, obs.shape[0]))
    hidden, dist = Actor(policy.num_actions).apply(policy.actor_params, hidden, obs_n[None], resets)
    action = dist.mode()[0] if greedy else dist.sample(seed=key)[0]
    return (hidden, jnp.zeros((), bool)), action.astype(jnp.int32)


# --- files ---------------------------------------------------------------------------------------
def save_policy(policy: Policy, path: str) -> None:
    """Writes `policy` as one msgpack file (arrays as float32, metadata as JSON) with the SHA-256
    of its content."""
    if not isinstance(policy, Policy):
        raise UserInputError(f"save_policy takes a ganno_jax Policy (load_policy, pretrained), "
                             f"got {type(policy).__name__}")
    path = check_target(path, "save_policy")
    tree = {"meta": json.dumps({"obs_layout": policy.obs_layout, "num_actions": policy.num_actions,
                                "config": dataclasses.asdict(policy.config)}),
            "actor_params": jax.tree.map(np.asarray, policy.actor_params),
            "obs_stats": {k: np.asarray(v) for k, v in dataclasses.asdict(policy.obs_stats).items()}}
    payload = serialization.msgpack_serialize(tree)
    wrapped = {"format": POLICY_FORMAT, "sha256": hashlib.sha256(payload).hexdigest(), "payload": payload}
    data = serialization.msgpack_serialize(wrapped)
    atomic_write(path, lambda f: f.write(data), "save_policy")  # a unique temporary name, then one rename


def _read_policy_file(path: str) -> Policy:
    try:
        with open(path, "rb") as f:
            wrapped = serialization.msgpack_restore(f.read())
    except Exception as e:  # noqa: BLE001 - msgpack raises many types for a file that is not one
        raise CheckpointError(f"{path} is not a readable policy file ({e.__class__.__name__})") from None
    if not isinstance(wrapped, dict) or wrapped.get("format") != POLICY_FORMAT:
        version = wrapped.get("format") if isinstance(wrapped, dict) else None
        raise CheckpointError(f"{path} is not a readable policy file (format {version!r}, this version "
                              f"reads {POLICY_FORMAT}; re-save it from its run with save_policy)")
    payload = wrapped.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != wrapped.get("sha256"):
        raise CheckpointError(f"{path} is corrupt: its content does not match its SHA-256")
    try:
        tree = serialization.msgpack_restore(payload)
        meta = json.loads(tree["meta"])
        stats = normalizer.RunningStats(**{k: jnp.asarray(v) for k, v in tree["obs_stats"].items()})
        params = jax.tree.map(jnp.asarray, tree["actor_params"])
        layout = meta["obs_layout"]
        return Policy(actor_params=params, obs_stats=stats, obs_names=tuple(layout["names"]),
                      layout_version=int(layout["version"]), num_actions=int(meta["num_actions"]),
                      config=config_from_json(json.dumps(meta["config"])))
    except Exception as e:  # noqa: BLE001 - msgpack raises many types for a file that is not one
        raise CheckpointError(f"{path} is not a readable policy file ({e.__class__.__name__})") from None


def _read_checkpoint_policy(path: str) -> Policy:
    from ganno_jax.trainer import checkpoint

    ckpt_dir, step, meta = checkpoint.read_meta(path)
    try:
        config = config_from_json(json.dumps(meta["config"]))
        layout, num_actions = meta["obs_layout"], int(meta["num_actions"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint metadata in {ckpt_dir}/{step} is incomplete: {e}") from None
    saved = checkpoint.restore_agent_arrays(ckpt_dir, step)
    try:
        stats = normalizer.RunningStats(**{k: jnp.asarray(v) for k, v in saved["obs_stats"].items()})
        params = jax.tree.map(jnp.asarray, saved["actor_params"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {ckpt_dir}/{step} holds no agent: {e}") from None
    return Policy(actor_params=params, obs_stats=stats, obs_names=tuple(layout["names"]),
                  layout_version=int(layout["version"]), num_actions=num_actions, config=config)


def load_policy(path: str) -> Policy:
    """The policy in a run folder, a checkpoint step folder, or a policy file.

    Raises CheckpointError (one line) for a missing, incomplete or corrupt source.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise UserInputError(f"load_policy takes a path (run folder, checkpoint or .policy file), "
                             f"got {type(path).__name__}")
    path = os.fspath(path)
    if os.path.isfile(path):
        return _read_policy_file(path)
    return _read_checkpoint_policy(path)


def pretrained(name: str = "default") -> Policy:
    """A policy shipped inside the package (`ganno_jax/pretrained/<name>.policy`); see the README
    for how it was trained and what it scores."""
    path = os.path.join(PRETRAINED_DIR, f"{name}.policy")
    if not os.path.exists(path):
        known = sorted(f[: -len(".policy")] for f in os.listdir(PRETRAINED_DIR) if f.endswith(".policy"))
        raise CheckpointError(f"no pretrained policy {name!r}; shipped: {', '.join(known) or 'none'}")
    return _read_policy_file(path)


def check_layout(policy: Policy, obs_layout: dict, where: str) -> None:
    """CheckpointError unless the policy was trained on `obs_layout` (the env it will drive)."""
    if policy.obs_layout != obs_layout:
        raise CheckpointError(
            f"the policy's observation layout (v{policy.layout_version}, {len(policy.obs_names)} "
            f"features) differs from {where}'s (v{obs_layout['version']}, {len(obs_layout['names'])} features)")
