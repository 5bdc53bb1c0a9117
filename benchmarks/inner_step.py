"""ms per inner AdamW step (batch 128, inside `lax.scan`) of cnn2 and cnn5, as JSON.

Usage: python -m benchmarks.inner_step [--steps 50] [--out FILE]
Compares the project's layerwise inner step with a plain `optax.adamw` loop on the same model and
with Flax's own `nn.Conv` + `nn.max_pool` formulation of the same network.
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from benchmarks.common import device_info, emit_json, time_fn
from ganno_jax.inner.models import CNN2, CNN5
from ganno_jax.inner.task import InnerTask


class FlaxCNN2(nn.Module):
    """cnn2 with nn.Conv and nn.max_pool: the formulation the fast layers replace."""

    @nn.compact
    def __call__(self, x, train=False):
        x = nn.max_pool(nn.relu(nn.Conv(32, (3, 3))(x)), (2, 2), (2, 2))
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


def plain_loop(model, x, y):
    """A jitted `optax.adamw` scan over minibatches: the reference every ratio uses."""
    opt = optax.adamw(1e-3, weight_decay=0.1)

    def loss_fn(p, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, xb), yb).mean()

    @jax.jit
    def run(params):
        def body(carry, batch):
            p, s = carry
            g = jax.grad(loss_fn)(p, *batch)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None
        return jax.lax.scan(body, (params, opt.init(params)), (x, y))[0][0]

    return run


def measure(name, model, shape, steps, batch=128):
    task = InnerTask(model, shape, batch_size=batch)
    key = jax.random.PRNGKey(0)
    n = steps * batch
    x = jax.random.normal(key, (n, *shape))
    y = jax.random.randint(key, (n,), 0, 10)
    from ganno_jax.inner.task import TaskData
    data = TaskData(x, y, x[:10], y[:10], x[:10], y[:10])
    state = task.init(key, jnp.full(task.num_layers, 1e-3), 0.1)
    idx = jnp.arange(n).reshape(steps, batch)
    ours = time_fn(jax.jit(task.train_steps), state, data, idx)
    plain = time_fn(plain_loop(model, x.reshape(steps, batch, *shape), y.reshape(steps, batch)), state.params)
    out = {"model": name, "input_shape": list(shape), "batch": batch, "steps": steps,
           "ms_per_inner_step": 1000 * ours["median_s"] / steps,
           "plain_optax_ms_per_inner_step": 1000 * plain["median_s"] / steps,
           "compile_s": ours["compile_s"]}
    if name == "cnn2":
        ref = time_fn(plain_loop(FlaxCNN2(), x.reshape(steps, batch, *shape), y.reshape(steps, batch)),
                      state.params)
        out["flax_conv_maxpool_ms_per_inner_step"] = 1000 * ref["median_s"] / steps
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    results = {"device": device_info(), "unit": "inner steps (one AdamW update, batch 128)",
               "models": [measure("cnn2", CNN2(), (28, 28, 1), args.steps),
                          measure("cnn5", CNN5(), (28, 28, 1), args.steps),
                          measure("cnn5_cifar", CNN5(), (32, 32, 3), args.steps)]}
    emit_json(results, args.out)


if __name__ == "__main__":
    main()
