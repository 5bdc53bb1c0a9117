"""The inner networks (SPEC §2). Agents are their Conv/Dense layers, in order of depth.

Every model takes `(x, train: bool = False)` so that models with batch statistics (ResNets)
share one calling convention with those without.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from ganno_jax.inner.layers import Conv, max_pool2


class CNN2(nn.Module):
    """Conv 32 3×3 SAME, ReLU, MaxPool 2 → Dense 10. Two agents (conv, linear)."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = max_pool2(nn.relu(Conv(32, (3, 3))(x)))
        return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


class CNN5(nn.Module):
    """3 × [Conv 32/64/128 3×3 SAME, ReLU, MaxPool 2] → Dense 256, ReLU → Dense 10. Five agents."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for features in (32, 64, 128):
            x = max_pool2(nn.relu(Conv(features, (3, 3))(x)))
        x = nn.relu(nn.Dense(256)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(x)


class MLP(nn.Module):
    """Dense 256, ReLU → Dense 256, ReLU → Dense 10. Three agents."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for _ in range(2):
            x = nn.relu(nn.Dense(256)(x))
        return nn.Dense(self.num_classes)(x)


MODELS: dict[str, type[nn.Module]] = {"cnn2": CNN2, "cnn5": CNN5, "mlp": MLP}
