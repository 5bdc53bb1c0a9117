"""Learning-rate action sets, applied per agent: the paper's nine (Appendix A) and the seed systems'.

  ganno     the nine below: ×/÷ 1.01 and 1.10, ± 5e-4 and 1e-3, no-op (index 0).
  scale     xu2019: a scaling factor of the previous LR, (1, 0.5, 0.8, 1.25, 2) (*our choice*; the
            review names the action, not its values); an LR of 0 is first raised to 1e-6.
  absolute  subramanian2023: the LR itself, 13 log-spaced values 1e-6, 3.16e-6, …, 1 (*our
            choice* of grid); there is no no-op.
  log       the default preset's (*our choice*): nine multiplicative steps, no-op, ×/÷ 1.05, 1.2,
            1.5 and 2. Scale-free: the same action means the same relative change at 1e-4 and at
            1e-2, and no single action can snap a rate to 0, which the paper's additive −1e-3 does
            from any LR ≤ 1e-3 (measured: that is how trained agents switch layers off). An LR below
            max(lr_min, 1e-6) is first raised to it, so a run can start from 0.
All are clipped to [0, lr_max] (the presets using `absolute` set lr_max 1).
"""

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


SCALE_FACTORS = (1.0, 0.5, 0.8, 1.25, 2.0)
LOG_FACTORS = (1.0, 1.05, 1 / 1.05, 1.2, 1 / 1.2, 1.5, 1 / 1.5, 2.0, 0.5)
ABSOLUTE_LRS = tuple(10.0 ** (-6 + k / 2) for k in range(13))
ACTION_SETS = {"ganno": NUM_ACTIONS, "scale": len(SCALE_FACTORS), "absolute": len(ABSOLUTE_LRS),
               "log": len(LOG_FACTORS)}


def apply_action_set(lrs: jax.Array, actions: jax.Array, lr_max: float, action_set: str,
                     lr_min: float = 0.0) -> jax.Array:
    """`apply_actions` for the named action set (see the module docstring), clipped to
    [lr_min, lr_max]; a no-op keeps an LR bit-identical (an initial LR of 0 stays 0)."""
    if action_set == "ganno":
        return jnp.where(actions == NOOP, lrs, jnp.maximum(apply_actions(lrs, actions, lr_max), lr_min))
    if action_set == "scale":
        factor = jnp.asarray(SCALE_FACTORS, lrs.dtype)[actions]
        new = jnp.clip(jnp.maximum(lrs, 1e-6) * factor, lr_min, lr_max)
        return jnp.where(actions == NOOP, lrs, new)
    if action_set == "log":
        factor = jnp.asarray(LOG_FACTORS, lrs.dtype)[actions]
        new = jnp.clip(jnp.maximum(lrs, max(lr_min, 1e-6)) * factor, lr_min, lr_max)
        return jnp.where(actions == NOOP, lrs, new)
    if action_set == "absolute":
        return jnp.clip(jnp.asarray(ABSOLUTE_LRS, lrs.dtype)[actions], lr_min, lr_max)
    raise ValueError(f"unknown action set {action_set!r}; known: {', '.join(ACTION_SETS)}")
