"""Orbax checkpoints of a training run: the agent, the full runner state, and metadata.

Three items per step, so that evaluation can restore the agent alone, for any environment:
  agent:  AgentState (policy/critic params, their optimiser state, normalisers)
  runner: the rest of RunnerState (env states, observations, GRU states, RNG, update count)
  meta:   JSON: config, observation layout, number of agents of the training env, versions
"""

from __future__ import annotations

import json
import os

import jax
import orbax.checkpoint as ocp

from ganno_jax.errors import CheckpointError

FORMAT_VERSION = 1


def manager(run_dir: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        os.path.abspath(os.path.join(run_dir, "checkpoints")),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        item_names=("agent", "runner", "meta"),
    )


def save(mngr: ocp.CheckpointManager, step: int, runner, meta: dict) -> None:
    """Saves the runner state at `step` (updates done) and waits until it is on disk."""
    meta = {**meta, "format_version": FORMAT_VERSION, "step": step}
    mngr.save(step, args=ocp.args.Composite(
        agent=ocp.args.StandardSave(runner.agent),
        runner=ocp.args.StandardSave(runner.replace(agent=None)),
        meta=ocp.args.JsonSave(meta)))
    mngr.wait_until_finished()


def _abstract(tree, shardings=None):
    if shardings is None:
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def restore_runner(mngr: ocp.CheckpointManager, like, shardings=None, step: int | None = None):
    """Restores the full runner state (for --resume) into the structure of `like`."""
    step = mngr.latest_step() if step is None else step
    if step is None:
        raise CheckpointError(f"no checkpoint in {mngr.directory}")
    agent_sh = shardings.agent if shardings is not None else None
    runner_sh = shardings.replace(agent=None) if shardings is not None else None
    try:
        out = mngr.restore(step, args=ocp.args.Composite(
            agent=ocp.args.StandardRestore(_abstract(like.agent, agent_sh)),
            runner=ocp.args.StandardRestore(_abstract(like.replace(agent=None), runner_sh)),
            meta=ocp.args.JsonRestore()))
    except Exception as e:  # noqa: BLE001 - orbax raises many types for unreadable data
        raise CheckpointError(f"cannot restore checkpoint {step} in {mngr.directory}: {e}") from e
    return out.runner.replace(agent=out.agent), out.meta


def find_checkpoint(path: str) -> tuple[str, int]:
    """Resolves a run folder or a checkpoint step folder to (checkpoints dir, step)."""
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint path {path} does not exist")
    if os.path.isdir(os.path.join(path, "checkpoints")):
        path = os.path.join(path, "checkpoints")
    if os.path.basename(path).isdigit() and os.path.isdir(path):
        return os.path.dirname(path), int(os.path.basename(path))
    steps = sorted(int(d) for d in os.listdir(path) if d.isdigit()) if os.path.isdir(path) else []
    if not steps:
        raise CheckpointError(f"{path} holds no checkpoint (expected a run folder or checkpoints/<step>)")
    return path, steps[-1]


def read_meta(path: str) -> tuple[str, int, dict]:
    """(checkpoints dir, step, metadata) of a run folder or checkpoint, without restoring arrays."""
    ckpt_dir, step = find_checkpoint(path)
    meta_path = os.path.join(ckpt_dir, str(step), "meta", "metadata")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{ckpt_dir}/{step} has no readable metadata: {e}") from e
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint format {meta.get('format_version')} is not "
                              f"{FORMAT_VERSION}, the one this version reads")
    return ckpt_dir, step, meta


def restore_agent(ckpt_dir: str, step: int, like_agent):
    """The AgentState saved at `step`, restored into the structure of `like_agent`."""
    mngr = ocp.CheckpointManager(ckpt_dir, item_names=("agent", "runner", "meta"))
    try:
        out = mngr.restore(step, args=ocp.args.Composite(
            agent=ocp.args.StandardRestore(_abstract(like_agent))))
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"cannot restore the agent from {ckpt_dir}/{step}: {e}") from e
    return out.agent
