"""Convolution and pooling written for speed on XLA:CPU, numerically the same as Flax's.

Measured on the 2-core development CPU (batch 128, one AdamW step inside `lax.scan`, ms) with an
exploratory script that is not kept; `benchmarks/inner_step.py` re-measures the chosen one:

                                          cnn2 FMNIST  cnn5 FMNIST  cnn5 CIFAR
  nn.Conv + nn.max_pool ....................... 161        (minutes to compile+run)
  conv_general_dilated_patches + matmul .......  26          213         289
  shifted slices, one matmul per tap ..........  14          128         341
  shifted slices concatenated, one matmul .....  19          110         142
  per tap if C_in == 1, else concatenated .....  14–18        76         136   <- used

(all but the first with reshape pooling; `nn.max_pool` instead costs +20 ms on cnn2).
XLA:CPU's convolution backward and `reduce_window` max-pool backward are slow; shifted slices turn
a convolution into plain matmuls whose backward is matmuls and pads. With one input channel a
per-tap product is a broadcast multiply, cheaper than building a 9-wide patch tensor. `tests/test_layers.py`
proves both formulations equal `nn.Conv` / `nn.max_pool` (values and gradients).

`Conv` has the same parameter names, shapes and initialisers as `flax.linen.Conv`, so parameter
trees, checkpoints and the layer table treat it as a convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(low, high) padding of XLA's SAME for one spatial dimension."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_shifted_matmul(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1), padding: str = "SAME"
) -> jax.Array:
    """2-D convolution (NHWC input, HWIO kernel) as matmuls over shifted slices of the input.

    Args:
      x: (batch, H, W, C_in).
      kernel: (kh, kw, C_in, C_out).
      strides: (sh, sw).
      padding: "SAME" or "VALID", as in `lax.conv_general_dilated`.

    Returns:
      (batch, H_out, W_out, C_out).
    """
    kh, kw, _, _ = kernel.shape
    sh, sw = strides
    _, h, w, _ = x.shape
    if padding == "SAME":
        ph, pw = _same_padding(h, kh, sh), _same_padding(w, kw, sw)
        x = jnp.pad(x, ((0, 0), ph, pw, (0, 0)))
    elif padding != "VALID":
        raise ValueError(f"padding must be SAME or VALID, got {padding!r}")
    hp, wp = x.shape[1:3]
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    taps = [
        x[:, i : i + (ho - 1) * sh + 1 : sh, j : j + (wo - 1) * sw + 1 : sw, :]
        for i in range(kh)
        for j in range(kw)
    ]
    if x.shape[-1] == 1:
        return sum(tap @ kernel[i // kw, i % kw] for i, tap in enumerate(taps))
    patches = jnp.concatenate(taps, axis=-1)  # (batch, ho, wo, kh*kw*C_in), tap-major like HWIO
    return patches @ kernel.reshape(-1, kernel.shape[-1])


def max_pool2(x: jax.Array) -> jax.Array:
    """2×2 max pooling, stride 2, VALID (odd trailing rows/columns dropped), NHWC.

    Same values as `nn.max_pool(x, (2, 2), (2, 2))`; a reshape and a max instead of
    `reduce_window`, whose backward is about 4× slower on XLA:CPU.
    """
    b, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2, :]
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class Conv(nn.Module):
    """Drop-in for `nn.Conv` (NHWC, SAME/VALID, strides) computed with `conv_shifted_matmul`."""

    features: int
    kernel_size: Sequence[int] = (3, 3)
    strides: Sequence[int] = (1, 1)
    padding: str = "SAME"
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features))
        y = conv_shifted_matmul(x, kernel, tuple(self.strides), self.padding)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,))
        return y
