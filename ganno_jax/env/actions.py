"""The nine learning-rate actions of the paper (Appendix A), applied per agent."""

from __future__ import annotations

import jax
import jax.numpy as jnp

# (name, multiplier, addend): new_lr = lr * multiplier + addend, then clipped to [0, lr_max].
ACTIONS: tuple[tuple[str, float, float], ...] = (
    ("+0 (no-op)", 1.0, 0.0),
    ("x1.01", 1.01, 0.0),
    ("x1.10", 1.10, 0.0),
    ("/1.01", 1 / 1.01, 0.0),
    ("/1.10", 1 / 1.10, 0.0),
    ("+5e-4", 1.0, 5e-4),
    ("-5e-4", 1.0, -5e-4),
    ("+1e-3", 1.0, 1e-3),
    ("-1e-3", 1.0, -1e-3),
)
NUM_ACTIONS = len(ACTIONS)
NOOP = 0


def apply_actions(lrs: jax.Array, actions: jax.Array, lr_max: float) -> jax.Array:
    """Applies each agent's action to its own layer's LR.

    Args:
      lrs: (num_agents,) current learning rates.
      actions: (num_agents,) int actions in [0, 9).
      lr_max: upper clip.

    Returns:
      (num_agents,) new learning rates in [0, lr_max]. The no-op leaves an LR bit-identical.
    """
    mult = jnp.asarray([a[1] for a in ACTIONS], lrs.dtype)[actions]
    add = jnp.asarray([a[2] for a in ACTIONS], lrs.dtype)[actions]
    new = jnp.clip(lrs * mult + add, 0.0, lr_max)
    return jnp.where(actions == NOOP, lrs, new)
