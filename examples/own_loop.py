"""Your own Flax model and training loop, scheduled by the pretrained GANNO policy.

    .venv/bin/python examples/own_loop.py [--steps 1000] [--out own_loop_lrs.png]

Trains `MyNet` (defined here, unknown to ganno_jax) on MNIST three times from the same
initialisation and minibatch order: with `ganno_jax.scheduler(ganno_jax.pretrained(), ...)`, with
a constant learning rate, and with `optax.cosine_decay_schedule`, all AdamW with the same weight
decay. Prints the final test accuracy of each and saves the GANNO run's per-layer learning rates
as a PNG. The only ganno_jax calls are `pretrained`, `scheduler`, `scheduler_eval_params` (the
parameters to score: schedule-free's averaged point when the policy runs on that base),
`scheduler_learning_rates` and the dataset loader (any arrays would do).
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import ganno_jax
from ganno_jax.data.datasets import load_dataset


class MyNet(nn.Module):
    """A user's model: three Dense layers become three agents; no `train` argument needed."""

    @nn.compact
    def __call__(self, x):
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(128)(x))
        x = nn.relu(nn.Dense(64)(x))
        return nn.Dense(10)(x)


def loss_and_accuracy(params, x, y):
    logits = MyNet().apply({"params": params}, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == y)


def run(tx, params, data, order, val_every, is_ganno):
    """Trains with `tx`; returns (test accuracy, per-step LRs or None)."""
    x_tr, y_tr, x_val, y_val, x_te, y_te = data

    @jax.jit
    def step(params, state, idx, val_loss, val_acc):
        (loss, acc), grads = jax.value_and_grad(loss_and_accuracy, has_aux=True)(params, x_tr[idx], y_tr[idx])
        extra = dict(loss=loss, accuracy=acc, val_loss=val_loss, val_accuracy=val_acc) if is_ganno else {}
        updates, state = tx.update(grads, state, params, **extra)
        return optax.apply_updates(params, updates), state

    scored = (lambda state, params: ganno_jax.scheduler_eval_params(state, params)) if is_ganno else (
        lambda state, params: params)
    state, lrs = tx.init(params), []
    val = loss_and_accuracy(params, x_val, y_val)
    for i, idx in enumerate(order):
        if i % val_every == 0:  # the scheduler uses the latest validation metrics at each decision
            val = jax.jit(loss_and_accuracy)(scored(state, params), x_val, y_val)
        params, state = step(params, state, idx, *val)
        if is_ganno:
            lrs.append(np.asarray(ganno_jax.scheduler_learning_rates(state)))
    return float(loss_and_accuracy(scored(state, params), x_te, y_te)[1]), (np.stack(lrs) if lrs else None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--init-lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--n-val", type=int, default=1024, help="validation examples scored at each decision")
    ap.add_argument("--out", default="own_loop_lrs.png")
    args = ap.parse_args(argv)

    ds = load_dataset("mnist")
    data = tuple(jnp.asarray(a) for a in (ds.x_train, ds.y_train, ds.x_val[: args.n_val], ds.y_val[: args.n_val],
                                          ds.x_test, ds.y_test))
    batch = 128
    per_epoch = len(ds.x_train) // batch
    perms = [jax.random.permutation(jax.random.PRNGKey(e), len(ds.x_train)) for e in range(args.steps // per_epoch + 1)]
    order = jnp.concatenate(perms)[: args.steps * batch].reshape(args.steps, batch)
    params = MyNet().init(jax.random.PRNGKey(0), data[0][:1])["params"]

    policy = ganno_jax.pretrained()
    ganno = ganno_jax.scheduler(policy, MyNet(), data[0][:1], init_lr=args.init_lr,
                                weight_decay=args.weight_decay, total_steps=args.steps)
    constant = optax.adamw(args.init_lr, weight_decay=args.weight_decay)
    cosine = optax.adamw(optax.cosine_decay_schedule(args.init_lr, args.steps), weight_decay=args.weight_decay)

    acc_g, lrs = run(ganno, params, data, order, policy.tau, is_ganno=True)
    acc_c, _ = run(constant, params, data, order, policy.tau, is_ganno=False)
    acc_cos, _ = run(cosine, params, data, order, policy.tau, is_ganno=False)
    print(f"MNIST, MyNet, {args.steps} AdamW steps from LR {args.init_lr:g}: test accuracy "
          f"GANNO {100 * acc_g:.2f} %, constant {100 * acc_c:.2f} %, cosine {100 * acc_cos:.2f} %")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for layer in range(lrs.shape[1]):
        ax.plot(np.arange(args.steps), lrs[:, layer], label=f"layer {layer + 1}")
    ax.set(yscale="log", xlabel="step", ylabel="learning rate", title="GANNO (pretrained) on MyNet / MNIST")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"per-layer learning rates: {args.out}")
    return acc_g, acc_c, acc_cos


if __name__ == "__main__":
    main()
