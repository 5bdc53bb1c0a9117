"""Running mean/variance (parallel-merge form), for observations and value targets.

The agent owns these statistics; they are saved in every checkpoint. Updates take a batch and
merge it in (Chan et al.'s parallel variance), so the result does not depend on how a batch is
split across devices once the per-device moments are averaged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningStats:
    mean: jax.Array  # (...,) feature shape
    var: jax.Array  # (...,)
    count: jax.Array  # () examples seen (float, starts at a tiny epsilon)


def init_stats(shape: tuple[int, ...]) -> RunningStats:
    return RunningStats(mean=jnp.zeros(shape), var=jnp.ones(shape), count=jnp.asarray(1e-4, jnp.float32))


def update_stats(stats: RunningStats, batch: jax.Array, axis_name: str | None = None) -> RunningStats:
    """Merges a batch (leading axes are examples) into the running statistics.

    Args:
      stats: current statistics with feature shape F.
      batch: (..., *F) examples; all leading axes are reduced.
      axis_name: if given, batch moments are averaged over this mapped axis (devices) first.
    """
    feat = stats.mean.ndim
    x = batch.reshape((-1,) + batch.shape[batch.ndim - feat:]) if feat else batch.reshape(-1)
    b_mean, b_sq = x.mean(0), jnp.square(x).mean(0)
    b_count = jnp.asarray(x.shape[0], jnp.float32)
    if axis_name is not None:
        b_mean, b_sq = jax.lax.pmean((b_mean, b_sq), axis_name)
        b_count = jax.lax.psum(b_count, axis_name)
    b_var = jnp.maximum(b_sq - jnp.square(b_mean), 0.0)
    delta = b_mean - stats.mean
    total = stats.count + b_count
    mean = stats.mean + delta * b_count / total
    m2 = stats.var * stats.count + b_var * b_count + jnp.square(delta) * stats.count * b_count / total
    return RunningStats(mean=mean, var=m2 / total, count=total)


def normalize(stats: RunningStats, x: jax.Array, clip: float = 10.0) -> jax.Array:
    """(x − mean) / std, clipped to ±clip."""
    return jnp.clip((x - stats.mean) / jnp.sqrt(stats.var + 1e-8), -clip, clip)


def denormalize(stats: RunningStats, x: jax.Array) -> jax.Array:
    return x * jnp.sqrt(stats.var + 1e-8) + stats.mean
