"""Orbax checkpoints of a training run: the agent, the full runner state, and metadata.

Three items per step, so that evaluation can restore the agent alone, for any environment:
  agent:  AgentState (policy/critic params, their optimiser state, normalisers)
  runner: the rest of RunnerState (env states, observations, GRU states, RNG, update count)
  meta:   JSON: config, observation layout, number of agents of the training env, versions
Integrity: Orbax (TensorStore) stores array chunks without checksums, so a flipped byte inside an
array file restores silently. Each step folder gets `MANIFEST` (SHA-256 of every file Orbax
wrote) once the save is complete, and every restore verifies it first; a mismatch is a
CheckpointError naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os

import jax
import orbax.checkpoint as ocp

from ganno_jax.errors import CheckpointError

FORMAT_VERSION = 1


def latest_step(run_dir: str) -> int | None:
    """The newest checkpoint step of a run folder, read without creating anything."""
    path = os.path.join(run_dir, "checkpoints")
    steps = [int(d) for d in os.listdir(path) if d.isdigit()] if os.path.isdir(path) else []
    return max(steps) if steps else None


def manager(run_dir: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        os.path.abspath(os.path.join(run_dir, "checkpoints")),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        item_names=("agent", "runner", "meta"),
    )


def save(mngr: ocp.CheckpointManager, step: int, runner, meta: dict, write_manifest: bool = True) -> None:
    """Saves the runner state at `step` (updates done) and waits until it is on disk; the process
    that writes the manifest (one per run) does so once every process has finished."""
    meta = {**meta, "format_version": FORMAT_VERSION, "step": step}
    mngr.save(step, args=ocp.args.Composite(
        agent=ocp.args.StandardSave(runner.agent),
        runner=ocp.args.StandardSave(runner.replace(agent=None)),
        meta=ocp.args.JsonSave(meta)))
    mngr.wait_until_finished()
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"checkpoint {step} saved")
    if write_manifest:
        _write_manifest(os.path.join(str(mngr.directory), str(step)))


MANIFEST = "MANIFEST"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(step_dir: str) -> list[str]:
    out = []
    for root, _, names in os.walk(step_dir):
        out += [os.path.relpath(os.path.join(root, n), step_dir) for n in names if n != MANIFEST]
    return sorted(out)


def _write_manifest(step_dir: str) -> None:
    """Records the SHA-256 of every file of a finished checkpoint step."""
    digests = {rel: _sha256(os.path.join(step_dir, rel)) for rel in _files(step_dir)}
    tmp = os.path.join(step_dir, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(digests, f, indent=0, sort_keys=True)
    os.replace(tmp, os.path.join(step_dir, MANIFEST))


def verify_manifest(step_dir: str, items: tuple[str, ...] | None = None) -> None:
    """Raises CheckpointError naming the first file (of `items`' subfolders, or all) that is
    missing or whose content differs from what `write_manifest` recorded."""
    path = os.path.join(step_dir, MANIFEST)
    try:
        with open(path) as f:
            digests = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {step_dir} has no readable {MANIFEST} ({e.__class__.__name__}): "
                              f"it is incomplete or was not written by this version") from None
    for rel, digest in sorted(digests.items()):
        if items is not None and rel.split(os.sep)[0] not in items:
            continue
        full = os.path.join(step_dir, rel)
        if not os.path.exists(full):
            raise CheckpointError(f"checkpoint file {full} is missing")
        if _sha256(full) != digest:
            raise CheckpointError(f"checkpoint file {full} is corrupt (its SHA-256 differs from {MANIFEST})")


def _short(e: Exception) -> str:
    """The first line of an Orbax/TensorStore error, capped (they dump whole specs)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{e.__class__.__name__}: {text[:200]}"


def _abstract(tree, shardings=None):
    if shardings is None:  # one device, whatever topology saved it
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), tree)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def restore_runner(mngr: ocp.CheckpointManager, like, shardings=None, step: int | None = None):
    """Restores the full runner state (for --resume) into the structure of `like`."""
    step = mngr.latest_step() if step is None else step
    if step is None:
        raise CheckpointError(f"no checkpoint in {mngr.directory}")
    agent_sh = shardings.agent if shardings is not None else None
    runner_sh = shardings.replace(agent=None) if shardings is not None else None
    verify_manifest(os.path.join(str(mngr.directory), str(step)))
    try:
        out = mngr.restore(step, args=ocp.args.Composite(
            agent=ocp.args.StandardRestore(_abstract(like.agent, agent_sh)),
            runner=ocp.args.StandardRestore(_abstract(like.replace(agent=None), runner_sh)),
            meta=ocp.args.JsonRestore()))
    except Exception as e:  # noqa: BLE001 - orbax raises many types for unreadable data
        raise CheckpointError(f"cannot restore checkpoint {step} in {mngr.directory}: {_short(e)}") from None
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


def restore_agent_arrays(ckpt_dir: str, step: int) -> dict:
    """The saved AgentState as a nested dict of arrays on this process's first device, as written:
    the structure comes from the checkpoint's own metadata (so altered metadata still restores
    and the layout check can name it), and any saving topology (other devices or processes)
    restores onto one device."""
    import absl.logging

    # The arrays of the agent and of the runner: a damaged run is refused whole. Its JSON metadata
    # is parsed and checked on its own terms (an edited layout is named as such, not as corrupt).
    verify_manifest(os.path.join(ckpt_dir, str(step)), items=("agent", "runner"))
    path = os.path.join(ckpt_dir, str(step), "agent")
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    verbosity = absl.logging.get_verbosity()
    absl.logging.set_verbosity(absl.logging.ERROR)  # the item folder has no step metadata: not news
    try:
        ckptr = ocp.StandardCheckpointer()
        tree = ckptr.metadata(path).item_metadata
        target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree)
        return dict(ckptr.restore(path, target))
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"cannot restore the agent from {ckpt_dir}/{step}: {_short(e)}") from None
    finally:
        absl.logging.set_verbosity(verbosity)


def restore_agent(ckpt_dir: str, step: int, like_agent):
    """The AgentState saved at `step`, restored into the structure of `like_agent`."""
    verify_manifest(os.path.join(ckpt_dir, str(step)), items=("agent", "runner"))
    mngr = ocp.CheckpointManager(ckpt_dir, item_names=("agent", "runner", "meta"))
    try:
        out = mngr.restore(step, args=ocp.args.Composite(
            agent=ocp.args.StandardRestore(_abstract(like_agent))))
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"cannot restore the agent from {ckpt_dir}/{step}: {_short(e)}") from None
    return out.agent
