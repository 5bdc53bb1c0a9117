"""The fast conv/pool formulations compute the same function as nn.Conv / nn.max_pool."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganno_jax.inner.layers import Conv, max_pool2


@pytest.mark.parametrize(
    "shape,features,kernel,strides",
    [((2, 28, 28, 1), 32, (3, 3), (1, 1)), ((2, 9, 9, 5), 7, (3, 3), (1, 1)),
     ((2, 8, 8, 4), 6, (3, 3), (2, 2)), ((2, 7, 7, 3), 4, (1, 1), (2, 2)),
     ((2, 6, 6, 2), 3, (5, 5), (1, 1))],
)
def test_conv_matches_flax_conv_values_and_grads(shape, features, kernel, strides):
    x = jax.random.normal(jax.random.PRNGKey(0), shape)
    ref = nn.Conv(features, kernel, strides, padding="SAME")
    ours = Conv(features, kernel, strides, padding="SAME")
    params = ref.init(jax.random.PRNGKey(1), x)
    ours_params = ours.init(jax.random.PRNGKey(1), x)
    # Same names, shapes and initialiser: the two parameter trees are identical.
    jax.tree.map(np.testing.assert_array_equal, params, ours_params)
    np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), rtol=1e-5, atol=1e-5)
    loss = lambda m: lambda p: jnp.sum(jnp.sin(m.apply(p, x)))
    g_ref, g_ours = jax.grad(loss(ref))(params), jax.grad(loss(ours))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), g_ours, g_ref)


@pytest.mark.parametrize("shape", [(3, 28, 28, 32), (2, 7, 7, 4), (2, 5, 6, 3)])
def test_max_pool2_matches_flax_max_pool(shape):
    x = jax.random.normal(jax.random.PRNGKey(0), shape)
    ref = lambda x: nn.max_pool(x, (2, 2), (2, 2))
    np.testing.assert_array_equal(max_pool2(x), ref(x))
    f = lambda pool: lambda x: jnp.sum(jnp.cos(pool(x)))
    np.testing.assert_allclose(jax.grad(f(max_pool2))(x), jax.grad(f(ref))(x), rtol=1e-6)
