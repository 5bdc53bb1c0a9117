"""The machine's own limit, measured in the same run: the FLOP/s of a large f32 matmul and of a
large convolution (XLA on this device), against which every model's achieved FLOP/s is read as a
fraction (`fraction_of_peak` in the throughput JSON). Both are what XLA reaches on friendly
shapes, not a data-sheet figure: an AVX2 core does at most 32 f32 FLOP per cycle."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks.common import time_fn


def matmul_flops_per_s(n: int, repeats: int) -> float:
    """FLOP/s of an (n, n) @ (n, n) f32 matmul: 2 n^3 FLOP per call."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n))
    t = time_fn(jax.jit(jnp.matmul), a, b, repeats=repeats)
    return 2 * n**3 / t["median_s"]


def conv_flops_per_s(batch: int, size: int, channels: int, repeats: int) -> float:
    """FLOP/s of a 3×3 SAME f32 convolution, NHWC (batch, size, size, channels) → channels."""
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, size, size, channels))
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, channels, channels))
    conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                             dimension_numbers=("NHWC", "HWIO", "NHWC")))
    t = time_fn(conv, x, w, repeats=repeats)
    return 2 * batch * size * size * channels * channels * 9 / t["median_s"]


def roofline(p: dict) -> dict:
    """`{"matmul_flops_per_s", "conv_flops_per_s", ...}` at the preset's sizes."""
    n, (b, s, c) = p["roofline_matmul"], p["roofline_conv"]
    return {"matmul_flops_per_s": matmul_flops_per_s(n, p["repeats"]), "matmul_n": n,
            "conv_flops_per_s": conv_flops_per_s(b, s, c, p["repeats"]), "conv_shape_nhwc": [b, s, s, c]}
