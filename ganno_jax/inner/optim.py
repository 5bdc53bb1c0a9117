"""Layerwise AdamW from Optax parts: `scale_by_adam` → `add_decayed_weights(wd)` → `-lr[layer]`.

The learning-rate vector and the weight decay are injected hyperparameters
(`optax.inject_hyperparams`), so they live in the optimiser state and can change at every step
inside `jit` without retracing. The last transform also records, per layer, the norm of the
direction it scaled (the Adam update including decay, `u_l`), which the agents observe.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class LayerwiseScaleState(NamedTuple):
    """State of `scale_by_layerwise_lr`."""

    direction_norms: jax.Array  # (num_layers,) ‖u_l‖ of the last update, before the LR


def per_layer_sums(leaves, leaf_layer: tuple[int, ...], num_layers: int, fn) -> jax.Array:
    """(num_layers,) sums of `fn(leaf)` (a scalar per leaf) over each layer's leaves."""
    sums = [jnp.zeros((), jnp.float32) for _ in range(num_layers)]
    for leaf, layer in zip(leaves, leaf_layer):
        sums[layer] = sums[layer] + fn(leaf.astype(jnp.float32))
    return jnp.stack(sums)


def scale_by_layerwise_lr(
    learning_rates: jax.Array, leaf_layer: tuple[int, ...]
) -> optax.GradientTransformation:
    """Scales each leaf by `-learning_rates[layer]`, where `leaf_layer` maps leaves to layers.

    Args:
      learning_rates: (num_layers,) non-negative rates.
      leaf_layer: layer index of each leaf in `jax.tree.leaves` order (see LayerTable).
    """
    num_layers = max(leaf_layer) + 1

    def init_fn(params):
        del params
        return LayerwiseScaleState(direction_norms=jnp.zeros((num_layers,), jnp.float32))

    def update_fn(updates, state, params=None):
        del params, state
        leaves, treedef = jax.tree.flatten(updates)
        sq = per_layer_sums(leaves, leaf_layer, num_layers, lambda x: jnp.sum(jnp.square(x)))
        scaled = [-learning_rates[layer] * leaf for leaf, layer in zip(leaves, leaf_layer)]
        return treedef.unflatten(scaled), LayerwiseScaleState(direction_norms=jnp.sqrt(sq))

    return optax.GradientTransformation(init_fn, update_fn)


def _layerwise_adamw(
    learning_rates: jax.Array,
    weight_decay: jax.Array,
    leaf_layer: tuple[int, ...],
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformation:
    return optax.chain(
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        optax.add_decayed_weights(weight_decay),
        scale_by_layerwise_lr(learning_rates, leaf_layer),
    )


def layerwise_adamw(
    learning_rates: jax.Array,
    weight_decay: float | jax.Array,
    leaf_layer: tuple[int, ...],
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformation:
    """AdamW with one learning rate per layer; equals `optax.adamw` when all rates are equal.

    Args:
      learning_rates: (num_layers,) initial per-layer rates (change them with `set_learning_rates`).
      weight_decay: decoupled weight decay, as in `optax.adamw` (multiplied by the layer's rate).
      leaf_layer: layer index of each parameter leaf, from `LayerTable.leaf_layer`.
      b1, b2, eps: Adam constants.

    Returns:
      An Optax GradientTransformation whose state holds the rates and the weight decay.
    """
    return optax.inject_hyperparams(
        _layerwise_adamw, static_args=("leaf_layer", "b1", "b2", "eps")
    )(
        learning_rates=jnp.asarray(learning_rates, jnp.float32),
        weight_decay=jnp.asarray(weight_decay, jnp.float32),
        leaf_layer=tuple(leaf_layer),
        b1=b1,
        b2=b2,
        eps=eps,
    )


def _layerwise_sgd(learning_rates, weight_decay, leaf_layer) -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(weight_decay),
                       scale_by_layerwise_lr(learning_rates, leaf_layer))


def layerwise_sgd(learning_rates, weight_decay, leaf_layer: tuple[int, ...]) -> optax.GradientTransformation:
    """Plain SGD (no momentum) with weight decay and one rate per layer, as `layerwise_adamw`
    without the Adam direction; equals `optax.chain(add_decayed_weights(wd), sgd(lr))` at equal
    rates. Used by the `subramanian2023` preset (SGD is the optimiser that paper schedules)."""
    return optax.inject_hyperparams(_layerwise_sgd, static_args=("leaf_layer",))(
        learning_rates=jnp.asarray(learning_rates, jnp.float32),
        weight_decay=jnp.asarray(weight_decay, jnp.float32),
        leaf_layer=tuple(leaf_layer),
    )


INNER_OPTIMIZERS = ("adamw", "sgd")


def get_learning_rates(opt_state) -> jax.Array:
    """(num_layers,) rates in force in a `layerwise_adamw` state."""
    return opt_state.hyperparams["learning_rates"]


def set_learning_rates(opt_state, learning_rates: jax.Array):
    """Returns the state with new per-layer rates (pure; nothing is mutated)."""
    hyperparams = dict(opt_state.hyperparams, learning_rates=learning_rates)
    return opt_state._replace(hyperparams=hyperparams)


def direction_norms(opt_state) -> jax.Array:
    """(num_layers,) ‖u_l‖ of the last update (Adam direction plus decay, before the rate), of a
    layerwise optimiser: a chain whose last state records them, or one state that does
    (`bases.LayerwiseScheduleFreeState`)."""
    inner = opt_state.inner_state
    return inner.direction_norms if hasattr(inner, "direction_norms") else inner[-1].direction_norms
