"""The inner networks (SPEC §2). Agents are their Conv/Dense layers, in order of depth.

Every model takes `(x, train: bool = False)` so that models with batch statistics (ResNets)
share one calling convention with those without.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganno_jax.inner.layers import Conv, max_pool2


def _channels(n: int, width: float) -> int:
    return max(1, int(n * width))


class CNN2(nn.Module):
    """Conv 32 3×3 SAME, ReLU, MaxPool 2 → Dense 10. Two agents (conv, linear).
    `width` scales the channel count (0.25: 8 channels, the CPU benchmark's net)."""

    num_classes: int = 10
    width: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = max_pool2(nn.relu(Conv(_channels(32, self.width), (3, 3))(x)))
        return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


class CNN5(nn.Module):
    """3 × [Conv 32/64/128 3×3 SAME, ReLU, MaxPool 2] → Dense 256, ReLU → Dense 10. Five agents.
    `width` scales every channel and hidden-unit count."""

    num_classes: int = 10
    width: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for features in (32, 64, 128):
            x = max_pool2(nn.relu(Conv(_channels(features, self.width), (3, 3))(x)))
        x = nn.relu(nn.Dense(_channels(256, self.width))(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(x)


class MLP(nn.Module):
    """Dense 256, ReLU → Dense 256, ReLU → Dense 10. Three agents. `width` scales the 256.

    The CPU benchmark's network: an inner step costs 1.2 ms on the 2-core development CPU, a
    cnn2 step 8–14 ms (see `ganno_jax/evaluation/benchmark.py`)."""

    num_classes: int = 10
    width: float = 1.0
    hidden_layers: int = 2

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for _ in range(self.hidden_layers):
            x = nn.relu(nn.Dense(_channels(256, self.width))(x))
        return nn.Dense(self.num_classes)(x)


class MLP5(MLP):
    """The deeper net of the MLP family: 4 × [Dense 256, ReLU] → Dense 10. Five agents."""

    hidden_layers: int = 4


def _bn(train: bool) -> nn.BatchNorm:
    """BatchNorm whose batch statistics are the inner state's `model_state` (momentum 0.9)."""
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)


class ConvBN(nn.Module):
    """Conv (no bias) → BatchNorm → ReLU: one agent (the BatchNorm belongs to its conv)."""

    features: int
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = Conv(self.features, (3, 3), strides=self.strides, use_bias=False)(x)
        return nn.relu(_bn(train)(x))


class ResNet9(nn.Module):
    """The common CIFAR ResNet-9 (Page, DAWNBench): 8 convs + 1 dense = 9 agents.

    prep ConvBN 64 → ConvBN 128, pool, residual(2 × ConvBN 128) → ConvBN 256, pool →
    ConvBN 512, pool, residual(2 × ConvBN 512) → global max pool → Dense 10.
    `width` scales every channel count (1.0 = the standard net; smaller for CPU experiments).
    """

    num_classes: int = 10
    width: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c = lambda n: _channels(n, self.width)  # noqa: E731
        x = ConvBN(c(64))(x, train)
        x = max_pool2(ConvBN(c(128))(x, train))
        x = x + ConvBN(c(128))(ConvBN(c(128))(x, train), train)  # the inner ConvBN runs first
        x = max_pool2(ConvBN(c(256))(x, train))
        x = max_pool2(ConvBN(c(512))(x, train))
        x = x + ConvBN(c(512))(ConvBN(c(512))(x, train), train)
        x = jnp.max(x, axis=(1, 2))
        return nn.Dense(self.num_classes)(x)


class BasicBlock(nn.Module):
    """Two 3×3 ConvBNs with an identity or 1×1-conv + BatchNorm projection shortcut.

    The shortcut is created after the main path, so in the parameter tree's creation order its
    BatchNorm follows it: the projection is an agent of type conv that owns its BatchNorm.
    """

    features: int
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        y = ConvBN(self.features, self.strides)(x, train)
        y = Conv(self.features, (3, 3), use_bias=False)(y)
        y = _bn(train)(y)
        if self.strides != (1, 1) or x.shape[-1] != self.features:
            x = Conv(self.features, (1, 1), strides=self.strides, use_bias=False)(x)
            x = _bn(train)(x)
        return nn.relu(x + y)


class ResNet18(nn.Module):
    """The standard CIFAR ResNet-18 (3×3 stem, no stem pooling; 4 stages × 2 BasicBlocks of
    64/128/256/512 channels, stride 2 from stage 2; global average pool; Dense 10).
    21 agents: the stem, 16 block convs, 3 projection shortcuts, the dense layer."""

    num_classes: int = 10
    width: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = ConvBN(_channels(64, self.width))(x, train)
        for stage, features in enumerate((64, 128, 256, 512)):
            for block in range(2):
                strides = (2, 2) if stage > 0 and block == 0 else (1, 1)
                x = BasicBlock(_channels(features, self.width), strides)(x, train)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes)(x)


MODELS: dict[str, type[nn.Module]] = {"cnn2": CNN2, "cnn5": CNN5, "mlp": MLP, "mlp5": MLP5,
                                      "resnet9": ResNet9, "resnet18": ResNet18}
