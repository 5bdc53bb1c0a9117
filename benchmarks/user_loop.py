"""What `ganno_jax.scheduler` costs a user: the shipped policy against `optax.adamw` in the same
jitted `lax.scan` of a user's own Flax model (an MLP and a CNN written with flax's own layers).

Both loops compute the same loss and accuracy per step (the scheduler observes them; the AdamW
loop computes the accuracy too, so only the optimiser differs); no validation metrics are passed.
`ratio_user_loop` = AdamW time / scheduler time per step (1.0: free). Medians over repeats after a
timed-apart compile; inner steps of batch 128 on synthetic Fashion-MNIST-shaped data.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from benchmarks.common import time_fn

BATCH = 128


class UserMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(256)(x))
        x = nn.relu(nn.Dense(256)(x))
        return nn.Dense(10)(x)


class UserCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(32, (3, 3))(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        return nn.Dense(10)(x.reshape((x.shape[0], -1)))


USER_MODELS = {"mlp": UserMLP, "cnn": UserCNN}


def user_loop(model, tx, x, y):
    """`run(params)`: a jitted scan of `len(x)` steps of `tx` on (x[i], y[i]) minibatches."""
    def body(carry, batch):
        p, s = carry
        xb, yb = batch

        def loss_fn(p):
            logits = model.apply({"params": p}, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), logits
        (loss, logits), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
        acc = jnp.mean(jnp.argmax(logits, -1) == yb)
        u, s = tx.update(g, s, p, loss=loss, accuracy=acc)
        return (optax.apply_updates(p, u), s), loss

    @jax.jit
    def run(params):
        return jax.lax.scan(body, (params, tx.init(params)), (x, y))[0][0]

    return run


def measure_user_loop(name: str, steps: int, repeats: int) -> dict:
    import ganno_jax

    model = USER_MODELS[name]()
    kx, ky = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (steps, BATCH, 28, 28, 1))
    y = jax.random.randint(ky, (steps, BATCH), 0, 10)
    params = model.init(jax.random.PRNGKey(1), x[0, :1])["params"]
    adamw = optax.with_extra_args_support(optax.adamw(1e-3, weight_decay=0.1))
    sched = ganno_jax.scheduler(ganno_jax.pretrained(), model, x[0, :1], init_lr=1e-3, weight_decay=0.1,
                                total_steps=steps)
    # The parts of the scheduler's cost: the layerwise AdamW alone (no policy, no statistics), and
    # the scheduler whose policy decides once per run (tau = steps) instead of every 25 steps.
    from ganno_jax.inner import optim
    from ganno_jax.inner.layer_table import model_layer_table

    table = model_layer_table(model, x[0, :1])
    layerwise = optax.with_extra_args_support(
        optim.layerwise_adamw(jnp.full((table.num_layers,), 1e-3), 0.1, table.leaf_layer))
    policy = ganno_jax.pretrained()
    once = policy.replace(config=dataclasses.replace(policy.config, tau=steps))
    one_decision = ganno_jax.scheduler(once, model, x[0, :1], init_lr=1e-3, weight_decay=0.1, total_steps=steps)
    out = {"model": f"user_{name}", "steps": steps, "batch": BATCH}
    for label, tx in (("adamw", adamw), ("scheduler", sched), ("layerwise_adamw", layerwise),
                      ("scheduler_one_decision", one_decision)):
        t = time_fn(user_loop(model, tx, x, y), params, repeats=repeats)
        out[f"{label}_ms_per_step"] = 1e3 * t["median_s"] / steps
        out[f"{label}_compile_s"] = t["compile_s"]
    out["ratio_user_loop"] = out["adamw_ms_per_step"] / out["scheduler_ms_per_step"]
    out["parts_ms_per_step"] = {
        "fused_optax_adamw": out["adamw_ms_per_step"],
        "layerwise_adamw_over_fused": out["layerwise_adamw_ms_per_step"] - out["adamw_ms_per_step"],
        "statistics_and_bookkeeping": out["scheduler_one_decision_ms_per_step"] - out["layerwise_adamw_ms_per_step"],
        "decisions_every_tau": out["scheduler_ms_per_step"] - out["scheduler_one_decision_ms_per_step"],
    }
    return out
