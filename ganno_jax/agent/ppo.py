"""PPO maths for one trajectory or one minibatch (rlax style: callers vmap).

An episode's end (its T-th step, or a divergence) is terminal: the observation carries the
progress t/T, so the fixed horizon is part of the problem rather than a truncation.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from flax import struct


def gae(r_t: jax.Array, v_t: jax.Array, done_t: jax.Array, v_last: jax.Array,
        gamma: float, lam: float) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimates of one trajectory.

    Args:
      r_t: (T,) reward received after the action at step t.
      v_t: (T,) value of the observation at step t.
      done_t: (T,) whether step t ended the episode (no bootstrap across it).
      v_last: () value of the observation after the last step.
      gamma: discount.
      lam: GAE λ.

    Returns:
      (advantages (T,), value targets (T,) = advantages + v_t).
    """
    chex.assert_rank([r_t, v_t, done_t, v_last], [1, 1, 1, 0])
    not_done = 1.0 - done_t.astype(jnp.float32)
    v_tp1 = jnp.concatenate([v_t[1:], v_last[None]])
    delta = r_t + gamma * v_tp1 * not_done - v_t

    def backward(next_adv, x):
        delta, nd = x
        adv = delta + gamma * lam * nd * next_adv
        return adv, adv

    _, adv = jax.lax.scan(backward, jnp.zeros(()), (delta, not_done), reverse=True)
    return adv, adv + v_t


@struct.dataclass
class LossAux:
    policy_loss: jax.Array
    value_loss: jax.Array
    entropy: jax.Array
    approx_kl: jax.Array
    clip_fraction: jax.Array


def ppo_loss(log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array,
             value: jax.Array, old_value: jax.Array, targets: jax.Array, entropy: jax.Array,
             clip_eps: float, value_clip_eps: float, vf_coef: float, ent_coef: float,
             normalize_advantages: bool = True) -> tuple[jax.Array, LossAux]:
    """Clipped-surrogate PPO loss with a clipped value loss and an entropy bonus.

    All arrays have the same shape (any); advantages are normalised over the whole minibatch.

    Returns:
      (total loss, LossAux).
    """
    if normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    surrogate = jnp.minimum(ratio * advantages,
                            jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantages)
    policy_loss = -surrogate.mean()
    value_clipped = old_value + jnp.clip(value - old_value, -value_clip_eps, value_clip_eps)
    value_loss = 0.5 * jnp.maximum(jnp.square(value - targets),
                                   jnp.square(value_clipped - targets)).mean()
    ent = entropy.mean()
    total = policy_loss + vf_coef * value_loss - ent_coef * ent
    aux = LossAux(policy_loss, value_loss, ent, ((ratio - 1) - log_ratio).mean(),
                  (jnp.abs(ratio - 1) > clip_eps).mean())
    return total, aux
