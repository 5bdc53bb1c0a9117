"""Layer tables derived from parameter trees: ours and a user's own models."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganno_jax.inner.layer_table import build_layer_table
from ganno_jax.inner.models import CNN2, CNN5, MLP


def _table(model, shape):
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, *shape)))["params"]
    return build_layer_table(params), params


def test_cnn2_cnn5_mlp_tables():
    t, _ = _table(CNN2(), (28, 28, 1))
    assert [(l.kind, l.depth) for l in t.layers] == [("conv", "first"), ("linear", "final")]
    t, _ = _table(CNN5(), (32, 32, 3))
    assert [l.kind for l in t.layers] == ["conv"] * 3 + ["linear"] * 2
    assert [l.depth for l in t.layers] == ["first"] + ["intermediate"] * 3 + ["final"]
    assert t.layers[0].leaves == ("Conv_0/kernel", "Conv_0/bias")
    t, _ = _table(MLP(), (28, 28, 1))
    assert t.num_layers == 3 and t.type_ids() == (0, 0, 0) and t.depth_ids() == (0, 1, 2)


class _UserNet(nn.Module):
    """Twelve convs (so alphabetical order would put Conv_10 before Conv_2), a norm, attention."""

    @nn.compact
    def __call__(self, x):
        x = nn.LayerNorm()(x)  # before any layer: belongs to the first layer
        for _ in range(12):
            x = nn.Conv(4, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=True)(x)  # belongs to Conv_11
        x = x.reshape(x.shape[0], -1, 4)
        x = nn.MultiHeadDotProductAttention(num_heads=2, qkv_features=8)(x)
        return nn.Dense(3)(x.mean(1))


def test_user_model_with_norms_attention_and_many_layers():
    model = _UserNet()
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 2)))
    t = build_layer_table(variables["params"])
    names = [l.name for l in t.layers]
    assert names == [f"Conv_{i}" for i in range(12)] + ["MultiHeadDotProductAttention_0", "Dense_0"]
    assert [l.kind for l in t.layers] == ["conv"] * 12 + ["attention", "linear"]
    assert "LayerNorm_0/scale" in t.layers[0].leaves
    assert set(t.layers[11].leaves) == {"Conv_11/kernel", "Conv_11/bias", "BatchNorm_0/scale",
                                        "BatchNorm_0/bias"}
    assert len(t.layers[12].leaves) == 8  # query/key/value/out kernels and biases
    # Every leaf has exactly one owner, in flattening order.
    flat = jax.tree_util.tree_flatten_with_path(variables["params"])[0]
    assert len(t.leaf_layer) == len(flat)
    for (path, _), layer in zip(flat, t.leaf_layer):
        key = "/".join(p.key for p in path)
        assert key in t.layers[layer].leaves
