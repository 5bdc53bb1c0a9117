"""Layerwise AdamW against optax.adamw."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganno_jax.inner import optim
from ganno_jax.inner.layer_table import build_layer_table
from ganno_jax.inner.models import CNN5

jax.config.update("jax_enable_x64", False)


def _setup():
    params = CNN5().init(jax.random.PRNGKey(0), jnp.zeros((1, 12, 12, 1)))["params"]
    table = build_layer_table(params)
    grads = [jax.tree.map(lambda p, k=k: jax.random.normal(jax.random.PRNGKey(k), p.shape), params)
             for k in range(30)]
    return params, table, grads


def _run(opt, params, grads):
    state = opt.init(params)
    update = jax.jit(opt.update)
    for g in grads:
        updates, state = update(g, state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def test_equal_rates_match_optax_adamw():
    params, table, grads = _setup()
    ours, _ = _run(optim.layerwise_adamw(jnp.full(5, 3e-3), 0.1, table.leaf_layer), params, grads)
    ref, _ = _run(optax.adamw(3e-3, weight_decay=0.1), params, grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), ours, ref)


def test_different_rates_match_a_per_layer_adamw():
    params, table, grads = _setup()
    lrs = jnp.array([1e-3, 0.0, 3e-2, 5e-4, 1e-2])
    ours, _ = _run(optim.layerwise_adamw(lrs, 0.01, table.leaf_layer), params, grads)
    for i, layer in enumerate(table.layers):
        ref, _ = _run(optax.adamw(float(lrs[i]), weight_decay=0.01), params, grads)
        flat_ours = {"/".join(p.key for p in path): v
                     for path, v in jax.tree_util.tree_flatten_with_path(ours)[0]}
        flat_ref = {"/".join(p.key for p in path): v
                    for path, v in jax.tree_util.tree_flatten_with_path(ref)[0]}
        for leaf in layer.leaves:
            np.testing.assert_allclose(flat_ours[leaf], flat_ref[leaf], rtol=1e-6, atol=1e-7)


def test_rates_change_inside_jit_without_retracing_and_norms_are_recorded():
    params, table, grads = _setup()
    opt = optim.layerwise_adamw(jnp.zeros(5), 0.1, table.leaf_layer)
    traces = []

    @jax.jit
    def step(params, state, g, lrs):
        traces.append(1)
        state = optim.set_learning_rates(state, lrs)
        updates, state = opt.update(g, state, params)
        return optax.apply_updates(params, updates), state

    state = opt.init(params)
    p1, s1 = step(params, state, grads[0], jnp.full(5, 1e-3))
    p2, s2 = step(params, state, grads[0], jnp.full(5, 2e-3))
    assert len(traces) == 1
    np.testing.assert_allclose(optim.get_learning_rates(s2), 2e-3)
    # Same direction, twice the rate: the displacement doubles; the recorded ‖u‖ is the same.
    d1 = jax.tree.map(lambda a, b: a - b, p1, params)
    d2 = jax.tree.map(lambda a, b: a - b, p2, params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(2 * a, b, rtol=1e-5, atol=2e-7), d1, d2)
    np.testing.assert_allclose(optim.direction_norms(s1), optim.direction_norms(s2))
    # ‖u_l‖ is the norm of the pre-rate direction: displacement / rate, per layer.
    flat = jax.tree.leaves(d1)
    for l in range(5):
        sq = sum(float(jnp.sum(jnp.square(x))) for x, k in zip(flat, table.leaf_layer) if k == l)
        np.testing.assert_allclose(np.sqrt(sq) / 1e-3, optim.direction_norms(s1)[l], rtol=1e-4)
