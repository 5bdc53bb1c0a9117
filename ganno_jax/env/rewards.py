"""Reward kinds, pluggable by name. Each sees both branches' validation results.

`difference_accuracy` (the paper's): acc(action branch) − acc(no-op branch), both trained from the
same state on the same minibatches and scored on the same validation subset, so a joint no-op
gives exactly 0. On divergence every kind returns its divergence reward (default for the
difference reward: minus the no-op branch's accuracy, *our choice*; for the others the worst value
of the scale: 0 accuracy or −100 loss) and the episode ends.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Outcome:
    """Validation results of one env step."""

    val_accuracy: jax.Array  # () action branch
    val_loss: jax.Array  # () action branch
    noop_val_accuracy: jax.Array  # () no-op branch (equals the action branch when it is off)
    noop_val_loss: jax.Array  # ()
    diverged: jax.Array  # () bool
    best_val_loss: jax.Array  # () lowest validation loss of the episode before this step
    t: jax.Array  # () env steps taken, this one included
    episode_length: jax.Array  # () T
    u: jax.Array  # () a U(0, 1) draw (the subramanian2023 divergence penalty is random)


def difference_accuracy(o: Outcome) -> jax.Array:
    noop = jnp.nan_to_num(o.noop_val_accuracy)
    return jnp.where(o.diverged, -noop, jnp.nan_to_num(o.val_accuracy) - noop)


def difference_loss(o: Outcome) -> jax.Array:
    """loss(no-op branch) − loss(action branch): continuous, unlike accuracy on `n_val` examples
    (quantised in steps of 1/n_val). Losses are clipped to [0, 10]; divergence gives −1 (*our choice*)."""
    noop = jnp.clip(jnp.nan_to_num(o.noop_val_loss, nan=10.0), 0.0, 10.0)
    act = jnp.clip(jnp.nan_to_num(o.val_loss, nan=10.0), 0.0, 10.0)
    return jnp.where(o.diverged, -1.0, noop - act)


def accuracy(o: Outcome) -> jax.Array:
    return jnp.where(o.diverged, 0.0, jnp.nan_to_num(o.val_accuracy))


def neg_val_loss(o: Outcome) -> jax.Array:
    return jnp.where(o.diverged, -100.0, -jnp.clip(jnp.nan_to_num(o.val_loss, nan=100.0), 0.0, 100.0))


def subramanian2023(o: Outcome, gamma: float = 10.0, lam: float = 1.0) -> jax.Array:
    """γ(best_loss − val_loss) + λ(epochs_max − epoch), γ 10, λ 1 (Subramanian et al. 2023), with an
    env step as the "epoch"; on divergence the penalty −(1000 + U(0,1)·1000)."""
    val = jnp.clip(jnp.nan_to_num(o.val_loss, nan=100.0), 0.0, 100.0)
    r = gamma * (o.best_val_loss - val) + lam * (o.episode_length - o.t)
    return jnp.where(o.diverged, -(1000.0 + 1000.0 * o.u), r)


REWARDS: dict[str, Callable[[Outcome], jax.Array]] = {
    "difference_accuracy": difference_accuracy,
    "difference_loss": difference_loss,
    "accuracy": accuracy,
    "neg_val_loss": neg_val_loss,
    "subramanian2023": subramanian2023,
}
NEEDS_NOOP_BRANCH = {"difference_accuracy", "difference_loss"}
