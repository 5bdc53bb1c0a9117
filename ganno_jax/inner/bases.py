"""Bases: what every layer's learning rate follows when the agents do nothing.

A base gives each layer a schedule or an optimiser of its own; the agents' state is a per-layer
peak rate `peak_l = init_lr × m_l` with the multiplier `m_l` starting at 1, and the rate in force
at inner step k is `peak_l × unit(k)`. A no-op keeps `peak_l` bit-identical, so an all-no-op
policy on base X *is* the benchmark's method X (tested run for run):

  constant        AdamW at `peak_l` (the paper's environment; `unit ≡ 1`).
  <schedule>      AdamW whose rate follows a schedule of `ganno_jax.inner.schedules` (linear, wsd,
                  cosine, ...) over the episode's N inner steps, scaled per layer: the `linear`,
                  `wsd`, ... rivals of the benchmark (`optax.adamw` with the same schedule).
  schedule_free   schedule-free AdamW (Defazio et al. 2024) with one averaging state per layer
                  (its own weight sum and running maximum rate), warm-up over 5 % of N as the
                  `schedule_free` rival: with equal multipliers it equals
                  `optax.contrib.schedule_free_adamw`, and it is scored at its averaged point x
                  (`eval_params`), as that rival is.
Every base is an optax transform with `learning_rates` (the peaks, (num_layers,)) and
`weight_decay` injected as hyperparameters (`optim.get_learning_rates`/`set_learning_rates` work
on all of them), and whose state records the per-layer direction norms ‖u_l‖
(`optim.direction_norms`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ganno_jax.inner import optim
from ganno_jax.inner.schedules import UNIT_SCHEDULES

BASES = ("constant", "schedule_free", *UNIT_SCHEDULES)
SCHEDULE_FREE_B1 = 0.9  # optax's default β1 of the interpolation (schedule_free_adamw)


def schedule_free_warmup(total_steps: int) -> int:
    """Warm-up length of schedule-free AdamW: 5 % of the run, as its authors use a usual warm-up."""
    return max(1, total_steps // 20)


class LayerwiseScheduleState(NamedTuple):
    """State of `scale_by_layerwise_schedule`."""

    count: jax.Array  # () int32 updates taken
    direction_norms: jax.Array  # (num_layers,) ‖u_l‖ of the last update, before the rate


def scale_by_layerwise_schedule(learning_rates: jax.Array, leaf_layer: tuple[int, ...], schedule_fn
                                ) -> optax.GradientTransformation:
    """Scales each leaf by `-schedule_fn(learning_rates)(count)[layer]`: each layer's peak through
    the same schedule. `schedule_fn(alpha)` must accept a vector of peaks (every schedule of
    `ganno_jax.inner.schedules` is `alpha · unit(count)`), so equal peaks give exactly the
    scalar schedule's rate."""
    num_layers = max(leaf_layer) + 1

    def init_fn(params):
        del params
        return LayerwiseScheduleState(count=jnp.zeros((), jnp.int32),
                                      direction_norms=jnp.zeros((num_layers,), jnp.float32))

    def update_fn(updates, state, params=None):
        del params
        leaves, treedef = jax.tree.flatten(updates)
        sq = optim.per_layer_sums(leaves, leaf_layer, num_layers, lambda x: jnp.sum(jnp.square(x)))
        lrs = schedule_fn(learning_rates)(state.count)
        scaled = [-lrs[layer] * leaf for leaf, layer in zip(leaves, leaf_layer)]
        return treedef.unflatten(scaled), LayerwiseScheduleState(count=optax.safe_int32_increment(state.count),
                                                                 direction_norms=jnp.sqrt(sq))

    return optax.GradientTransformation(init_fn, update_fn)


def _scheduled_adamw(learning_rates, weight_decay, leaf_layer, schedule_fn, b1, b2, eps):
    return optax.chain(optax.scale_by_adam(b1=b1, b2=b2, eps=eps), optax.add_decayed_weights(weight_decay),
                       scale_by_layerwise_schedule(learning_rates, leaf_layer, schedule_fn))


class LayerwiseScheduleFreeState(NamedTuple):
    """State of `layerwise_schedule_free_adamw`: optax's ScheduleFreeState with one averaging
    weight sum and one running maximum rate per layer."""

    count: jax.Array  # () int32 updates taken (optax's step_count is count + 1)
    weight_sum: jax.Array  # (num_layers,) Σ max_lr^power, the averaging weights so far
    max_lr: jax.Array  # (num_layers,) the largest rate each layer has had
    rms: Any  # scale_by_rms state (Adam's second moment, bias-corrected)
    z: Any  # the base sequence z, a params-shaped tree
    direction_norms: jax.Array  # (num_layers,) ‖u_l‖ of the last update, before the rate


def _schedule_free_adamw(learning_rates, weight_decay, leaf_layer, total_steps, b1, b2, eps,
                         weight_lr_power=2.0):
    """Schedule-free AdamW with per-layer peaks, written after `optax.contrib.schedule_free_adamw`
    operation for operation (so that equal peaks give its updates to the last bit)."""
    num_layers = max(leaf_layer) + 1
    warmup = schedule_free_warmup(total_steps)
    rate = optax.warmup_constant_schedule(init_value=0, peak_value=learning_rates, warmup_steps=warmup)
    rms = optax.scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True)

    def init_fn(params):
        return LayerwiseScheduleFreeState(
            count=jnp.zeros((), jnp.int32), weight_sum=jnp.zeros((num_layers,), jnp.float32),
            max_lr=jnp.zeros((num_layers,), jnp.float32), rms=rms.init(params),
            z=jax.tree.map(lambda t: t.copy(), params), direction_norms=jnp.zeros((num_layers,), jnp.float32))

    def update_fn(grads, state, params=None):
        per_leaf = lambda v: [v[layer] for layer in leaf_layer]  # noqa: E731 - (num_layers,) -> leaves
        lr = jnp.asarray(rate(state.count + 1), jnp.float32)  # optax's step_count starts at 1
        max_lr = jnp.maximum(state.max_lr, lr)
        weight = max_lr ** weight_lr_power
        next_total = state.weight_sum + weight
        ck = jnp.where(jnp.isnan(weight) | jnp.isnan(next_total), jnp.full(weight.shape, jnp.nan),
                       jnp.nan_to_num(weight / next_total, nan=0.0, posinf=jnp.inf))
        direction, rms_state = rms.update(grads, state.rms, params)
        direction = jax.tree.map(lambda d, p: d + weight_decay * p, direction, params)  # add_decayed_weights
        leaves, treedef = jax.tree.flatten(direction)
        sq = optim.per_layer_sums(leaves, leaf_layer, num_layers, lambda x: jnp.sum(jnp.square(x)))
        step_lr = rate(state.count)  # the base optimiser's own count starts at 0
        base_updates = treedef.unflatten([-step_lr[layer] * leaf for leaf, layer in zip(leaves, leaf_layer)])
        z_leaves = [jnp.asarray(p + u).astype(jnp.asarray(p).dtype) for p, u in
                    zip(jax.tree.leaves(state.z), jax.tree.leaves(base_updates))]
        y_leaves, old_z = jax.tree.leaves(params), jax.tree.leaves(state.z)
        prev_x = [(y - (1.0 - b1) * z) / b1 for y, z in zip(y_leaves, old_z)]
        cks = per_leaf(ck)
        x = [(1.0 - c) * xi + c * zi for xi, zi, c in zip(prev_x, z_leaves, cks)]
        new_y = [b1 * xi + (1.0 - b1) * zi for xi, zi in zip(x, z_leaves)]
        updates = treedef.unflatten([n - y for n, y in zip(new_y, y_leaves)])
        return updates, LayerwiseScheduleFreeState(
            count=optax.safe_int32_increment(state.count), weight_sum=next_total, max_lr=max_lr,
            rms=rms_state, z=treedef.unflatten(z_leaves), direction_norms=jnp.sqrt(sq))

    return optax.GradientTransformation(init_fn, update_fn)


def layerwise_optimizer(base: str, learning_rates: jax.Array, weight_decay, leaf_layer: tuple[int, ...],
                        total_steps: int, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
                        ) -> optax.GradientTransformation:
    """The layerwise optimiser of `base` (see the module docstring), peaks and decay injected.

    Args:
      base: a name in BASES.
      learning_rates: (num_layers,) initial peaks (`init_lr` for every layer: `m = 1`).
      weight_decay: decoupled weight decay (multiplied by the rate in force, as `optax.adamw`).
      leaf_layer: layer index of each parameter leaf (`LayerTable.leaf_layer`).
      total_steps: the run's length N, over which schedules run.
      b1, b2, eps: Adam's constants (schedule-free uses b1 for its interpolation, as optax does).
    """
    if base == "constant":
        return optim.layerwise_adamw(learning_rates, weight_decay, leaf_layer, b1=b1, b2=b2, eps=eps)
    if base == "schedule_free":
        fn = lambda learning_rates, weight_decay: _schedule_free_adamw(  # noqa: E731
            learning_rates, weight_decay, tuple(leaf_layer), total_steps, b1, b2, eps)
    elif base in UNIT_SCHEDULES:
        unit = UNIT_SCHEDULES[base](total_steps)
        schedule_fn = lambda alpha: (lambda count: alpha * unit(count))  # noqa: E731 - as schedules.schedule
        fn = lambda learning_rates, weight_decay: _scheduled_adamw(  # noqa: E731
            learning_rates, weight_decay, tuple(leaf_layer), schedule_fn, b1, b2, eps)
    else:
        raise ValueError(f"unknown base {base!r}; known: {', '.join(BASES)}")
    return optax.inject_hyperparams(fn)(learning_rates=jnp.asarray(learning_rates, jnp.float32),
                                        weight_decay=jnp.asarray(weight_decay, jnp.float32))


def unit_rate(base: str, total_steps: int, count: jax.Array) -> jax.Array:
    """() the fraction of its peak a layer's rate is at inner step `count` (1 for `constant`)."""
    if base == "constant":
        return jnp.ones((), jnp.float32)
    if base == "schedule_free":
        return optax.warmup_constant_schedule(0.0, 1.0, schedule_free_warmup(total_steps))(count)
    return UNIT_SCHEDULES[base](total_steps)(count)


def step_count(base: str, opt_state) -> jax.Array:
    """() inner steps taken by a base's optimiser (0 for `constant`, which does not count)."""
    if base == "constant":
        return jnp.zeros((), jnp.int32)
    inner = opt_state.inner_state
    return inner.count if base == "schedule_free" else inner[-1].count


def rates_in_force(base: str, total_steps: int, opt_state) -> jax.Array:
    """(num_layers,) the rates the next update applies: each peak times the base's unit rate.
    (Schedule-free's first update applies 0, the start of its warm-up.)"""
    peaks = optim.get_learning_rates(opt_state)
    if base == "constant":
        return peaks
    if base == "schedule_free":
        warmup = schedule_free_warmup(total_steps)
        return optax.warmup_constant_schedule(0, peaks, warmup)(step_count(base, opt_state))
    unit = UNIT_SCHEDULES[base](total_steps)
    return peaks * unit(step_count(base, opt_state))


def eval_params(base: str, opt_state, params):
    """The parameters a base is scored at: schedule-free's averaged point x, else `params`."""
    if base != "schedule_free":
        return params
    b1 = jnp.float32(SCHEDULE_FREE_B1)  # as optax's state.b1: 1 - b1 in float32, not in float64
    return jax.tree.map(lambda y, z: (y - (1.0 - b1) * z) / b1, params, opt_state.inner_state.z)
