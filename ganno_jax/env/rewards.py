"""Reward kinds, pluggable by name. Each sees both branches' validation results.

`difference_accuracy` (the paper's): acc(action branch) − acc(no-op branch), both trained from the
same state on the same minibatches and scored on the same validation subset, so a joint no-op
gives exactly 0. On divergence every kind returns its divergence reward (default for the
difference reward: minus the no-op branch's accuracy, *our choice*; for the others the worst value
of the scale: 0 accuracy or −100 loss) and the episode ends.

Rewards without short-horizon bias (the one-step kinds above favour whatever raises the next
measurement, e.g. a lower LR): `telescoping_accuracy` and `telescoping_log_loss` pay the change of
the validation metric since the last env step, measured on ONE validation subset fixed for the
whole episode (`FIXED_VAL_SUBSET`), so consecutive steps are paired and the undiscounted return
telescopes to the episode's final improvement: Σ_t r_t = m(θ_T) − m(θ_0) (the env measures the
fresh network at reset for these). `paired_telescoping_accuracy` subtracts the same change of the
base branch, the base alone run beside the agents from the same start (`EnvConfig.base_branch`).
`terminal_accuracy` pays the final network's accuracy on that
subset at the last step and 0 before. A diverged network scores accuracy 0 and loss `MAX_LOSS`.
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
    prev_val_accuracy: jax.Array = 0.0  # () the last env step's (or the fresh network's) accuracy
    prev_val_loss: jax.Array = 0.0  # () and loss, on the same subset when it is fixed per episode
    prev_noop_val_accuracy: jax.Array = 0.0  # () the second branch's accuracy after the last step


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


MAX_LOSS = 10.0  # losses are clipped to [MIN_LOSS, MAX_LOSS] before logs; divergence scores MAX_LOSS
MIN_LOSS = 1e-4


def _log_loss(loss: jax.Array) -> jax.Array:
    return jnp.log(jnp.clip(jnp.nan_to_num(loss, nan=MAX_LOSS, posinf=MAX_LOSS), MIN_LOSS, MAX_LOSS))


def telescoping_accuracy(o: Outcome) -> jax.Array:
    """acc(θ_{t+1}) − acc(θ_t) on the episode's fixed subset: the return is the final improvement."""
    acc = jnp.where(o.diverged, 0.0, jnp.nan_to_num(o.val_accuracy))
    return acc - o.prev_val_accuracy


def telescoping_log_loss(o: Outcome) -> jax.Array:
    """log L(θ_t) − log L(θ_{t+1}) on the episode's fixed subset: the return is log(L_0 / L_T),
    a continuous signal (accuracy on n_val examples moves in steps of 1/n_val)."""
    new = jnp.where(o.diverged, jnp.log(MAX_LOSS), _log_loss(o.val_loss))
    return _log_loss(o.prev_val_loss) - new


def paired_telescoping_accuracy(o: Outcome) -> jax.Array:
    """The agents' telescoping accuracy minus the base branch's over the same step (both on the
    episode's fixed subset, from the same network, on the same minibatches): the return is
    acc(agents' final network) − acc(base's final network), the seed's luck that both share
    cancelled. An all-no-op policy on its base earns exactly 0."""
    base = jnp.nan_to_num(o.noop_val_accuracy) - o.prev_noop_val_accuracy
    return telescoping_accuracy(o) - base


def terminal_accuracy(o: Outcome) -> jax.Array:
    """The final network's accuracy on the episode's fixed subset at the last step (0 if it
    diverged), 0 at every other step."""
    last = (o.t >= o.episode_length) & ~o.diverged
    return jnp.where(last, jnp.nan_to_num(o.val_accuracy), 0.0)


REWARDS: dict[str, Callable[[Outcome], jax.Array]] = {
    "difference_accuracy": difference_accuracy,
    "difference_loss": difference_loss,
    "accuracy": accuracy,
    "neg_val_loss": neg_val_loss,
    "subramanian2023": subramanian2023,
    "telescoping_accuracy": telescoping_accuracy,
    "telescoping_log_loss": telescoping_log_loss,
    "terminal_accuracy": terminal_accuracy,
    "paired_telescoping_accuracy": paired_telescoping_accuracy,
}
NEEDS_NOOP_BRANCH = {"difference_accuracy", "difference_loss"}
NEEDS_BASE_BRANCH = {"paired_telescoping_accuracy"}
# Rewards scored on one validation subset per episode (drawn at reset) instead of a fresh one per step.
FIXED_VAL_SUBSET = {"telescoping_accuracy", "telescoping_log_loss", "terminal_accuracy",
                    "paired_telescoping_accuracy"}
# What evaluation (no second branch) measures for an agent trained with a reward needing one: the
# env as the agent saw it otherwise (the same subsets per episode), without the branch.
DEPLOYED_REWARD = {"paired_telescoping_accuracy": "telescoping_accuracy"}
