"""A trained GANNO policy as an optax transform for anyone's training loop.

    tx = ganno_jax.scheduler(ganno_jax.pretrained(), model, x[:1], init_lr=1e-3,
                             weight_decay=1e-4, total_steps=1000)
    opt_state = tx.init(params)
    updates, opt_state = tx.update(grads, opt_state, params, loss=loss, accuracy=acc)
    params = optax.apply_updates(params, updates)
    ganno_jax.scheduler_learning_rates(opt_state)  # (num_layers,)

The transform is layerwise AdamW (the env's optimiser) whose per-layer rates the policy sets every
`policy.tau` steps, from the same observation the env builds (`observations.feature_matrix`):
train loss and accuracy averaged over the last `tau` steps (passed to `update` as `loss` and
`accuracy`), the last validation metrics the caller passed (`val_loss`, `val_accuracy`; the
untrained network's chance values until the first ones arrive), per-layer statistics, the rates,
the previous actions and progress `t / T` with `T = total_steps // tau`. Decisions happen at
steps 0, tau, 2·tau, …, before that step's update. Sampling keys follow `evaluate`'s rollout for
the same `seed`, so a plain loop on the env's data order and validation subsets reproduces the
env rollout's LR trajectory (tested in `tests/test_scheduler.py`).
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import numpy as np

from ganno_jax.deploy.policy import Policy, act, init_carry
from ganno_jax.env import observations
from ganno_jax.env.actions import apply_action_set
from ganno_jax.env.types import Dynamics
from ganno_jax.errors import UserInputError
from ganno_jax.inner import optim
from ganno_jax.inner.layer_table import abstract_variables, model_layer_table
from ganno_jax.inner.task import grad_norms, layer_stats


class SchedulerState(NamedTuple):
    """State of `scheduler`: the layerwise AdamW state plus what the next decision observes."""

    inner: optax.OptState  # layerwise AdamW; its hyperparameters hold the rates and the decay
    count: jax.Array  # () int32 inner steps taken
    hidden: jax.Array  # (num_agents, 64) the policy's GRU state
    first: jax.Array  # () bool: no decision taken yet
    prev_action: jax.Array  # (num_agents,) int32
    loss_sum: jax.Array  # () train losses of the current block of tau steps, summed
    accuracy_sum: jax.Array  # ()
    block_loss: jax.Array  # () mean train loss of the last complete block
    block_accuracy: jax.Array  # ()
    grad_norm: jax.Array  # (num_layers,) ‖g_l‖ of the last step
    val_loss: jax.Array  # () the last validation loss passed in (chance before any)
    val_accuracy: jax.Array  # ()
    nonfinite: jax.Array  # () bool: a non-finite loss was seen in the last block


def model_call_kwargs(model: nn.Module) -> dict:
    """`{"train": False}` for models whose `__call__` takes `train`, else `{}`."""
    return {"train": False} if "train" in inspect.signature(model.__call__).parameters else {}


def _real(name: str, value, low: float = -math.inf, high: float = math.inf) -> float:
    """`value` as a finite float in [low, high], else UserInputError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or not low <= value <= high:
        raise UserInputError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")
    return float(value)


def _whole(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise UserInputError(f"{name} must be a whole number >= {low}, got {value!r}")
    return int(value)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{e.__class__.__name__}: {text.splitlines()[0][:200] if text else ''}"


def _scalar(name: str, value) -> jax.Array:
    """A per-step scalar metric as float32; ValueError for an array of another shape."""
    value = jnp.asarray(value, jnp.float32)
    if value.shape != ():
        raise ValueError(f"tx.update: {name} must be a scalar (the step's mean), got shape {value.shape}")
    return value


def scheduler(policy: Policy, model: nn.Module, sample_input: jax.Array, *, init_lr: float,
              weight_decay: float, total_steps: int, seed: int = 0,
              greedy: bool = False) -> optax.GradientTransformationExtraArgs:
    """Layerwise AdamW whose per-layer learning rates `policy` sets every `policy.tau` steps.

    What it needs from the caller: the model and one input batch (to find its layers and its
    number of classes; the model is traced with `train=False` when its `__call__` takes `train`,
    with every collection `model.init` creates, e.g. BatchNorm's `batch_stats`, and a "dropout"
    rng, so any linen model works); `tx.init` gets the model's `params` collection only (other
    collections stay in the caller's loop, which updates them as usual); every `tx.update` gets
    the params and the step's scalar train `loss` and `accuracy`; `val_loss`/`val_accuracy`
    (scalars) whenever the caller has fresh validation metrics. Bad arguments raise
    UserInputError (or ValueError inside traced code) naming the argument.

    Args:
      policy: a trained policy (`load_policy`, `pretrained`).
      model: the user's linen Module; its Dense/Conv/attention layers become agents (any number).
      sample_input: a batch of one or more inputs, to trace the model's layer table.
      init_lr: the rate every layer starts with (the policy's training range: 1e-5 to 1e-2).
      weight_decay: decoupled weight decay (>= 0), as in `optax.adamw`.
      total_steps: the planned number of `update` calls (the policy observes progress t / T).
      seed: seeds the sampled actions (the same schedule as `evaluate`'s seed).
      greedy: take the most likely action instead of sampling.

    Returns:
      An `optax.GradientTransformationExtraArgs` whose `update(grads, state, params, *, loss,
      accuracy, val_loss=None, val_accuracy=None)` needs the step's train loss and accuracy.
    """
    if not isinstance(policy, Policy):
        raise UserInputError(f"policy must be a ganno_jax Policy (ganno_jax.pretrained() or "
                             f"load_policy(...)), got {type(policy).__name__}")
    if not isinstance(model, nn.Module):
        raise UserInputError(f"model must be a flax.linen Module, got {type(model).__name__}")
    cfg = policy.config
    if cfg.global_lr:
        raise UserInputError("scheduler drives layerwise policies; this one sets a single global LR")
    init_lr = _real("init_lr", init_lr, 0.0, cfg.lr_max)
    weight_decay = _real("weight_decay", weight_decay, 0.0)
    tau = policy.tau
    total_steps = _whole("total_steps", total_steps, 1)
    seed = _whole("seed", seed, 0)
    if total_steps < tau:
        raise UserInputError(f"total_steps ({total_steps}) must cover at least one decision (tau={tau})")
    num_decisions = total_steps // tau
    if np.ndim(sample_input) < 1:
        raise UserInputError(f"sample_input must be a batch of inputs (an array with a batch axis), "
                             f"got {type(sample_input).__name__}")
    kwargs = model_call_kwargs(model)
    try:
        table = model_layer_table(model, sample_input, **kwargs)
        variables = abstract_variables(model, sample_input, **kwargs)
        # mutable=True: a model whose BatchNorm always uses batch statistics returns new ones too.
        logits, _ = jax.eval_shape(lambda v: model.apply(v, sample_input, rngs={"dropout": jax.random.PRNGKey(0)},
                                                          mutable=True, **kwargs), variables)
    except Exception as e:  # noqa: BLE001 - the user's model may raise anything when traced
        raise UserInputError(f"model could not be traced on sample_input of shape {np.shape(sample_input)} "
                             f"({_first_line(e)})") from None
    num_classes = logits.shape[-1]
    params_shapes = variables["params"]
    n = table.num_layers
    names = tuple(policy.obs_names)

    inner_tx = optim.layerwise_adamw(jnp.full((n,), init_lr), weight_decay, table.leaf_layer)
    run_key = jax.random.split(jax.random.PRNGKey(seed))[1]  # as evaluation's rollout splits its key

    def check_params(params, where: str) -> None:
        """Structure and shapes must be the model's (checked at trace time: both are static)."""
        same = jax.tree.structure(params) == jax.tree.structure(params_shapes) and all(
            np.shape(a) == b.shape for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params_shapes)))
        if not same:
            raise UserInputError(f"{where}: params are not the params of the model given to scheduler "
                                 f"(pass model.init(...)['params'] of that model)")

    def init_fn(params) -> SchedulerState:
        check_params(params, "tx.init")
        chance_loss, chance_acc = jnp.log(jnp.float32(num_classes)), jnp.float32(1.0 / num_classes)
        zero = jnp.zeros((), jnp.float32)
        return SchedulerState(inner_tx.init(params), jnp.zeros((), jnp.int32), *init_carry(n),
                              jnp.zeros((n,), jnp.int32), zero, zero, chance_loss, chance_acc,
                              jnp.zeros((n,), jnp.float32), chance_loss, chance_acc, jnp.zeros((), bool))

    def decide(state: SchedulerState, params) -> SchedulerState:
        t = state.count // tau
        lrs = optim.get_learning_rates(state.inner)
        stats = layer_stats(params, state.inner, state.grad_norm, table)
        dyn = Dynamics(state.block_loss, state.block_accuracy, state.val_loss, state.val_accuracy,
                       state.nonfinite, stats, jnp.float32(0), jnp.float32(0))
        feats = observations.feature_matrix(dyn, lrs, state.prev_action, t / num_decisions,
                                            jnp.float32(init_lr), jnp.float32(weight_decay), table)
        key = jax.random.split(jax.random.split(run_key, num_decisions)[jnp.minimum(t, num_decisions - 1)])[0]
        (hidden, first), actions = act(policy, (state.hidden, state.first),
                                       observations.select(feats, names), key, greedy)
        new_lrs = apply_action_set(lrs, actions, cfg.lr_max, cfg.action_set, cfg.lr_min)
        return state._replace(inner=optim.set_learning_rates(state.inner, new_lrs), hidden=hidden,
                              first=first, prev_action=actions)

    def update_fn(grads, state: SchedulerState, params=None, *, loss, accuracy, val_loss=None,
                  val_accuracy=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("ganno_jax.scheduler needs params (its agents observe the weights)")
        check_params(params, "tx.update")
        loss, accuracy = _scalar("loss", loss), _scalar("accuracy", accuracy)
        if val_loss is not None:
            state = state._replace(val_loss=_scalar("val_loss", val_loss))
        if val_accuracy is not None:
            state = state._replace(val_accuracy=_scalar("val_accuracy", val_accuracy))
        state = jax.lax.cond(state.count % tau == 0, decide, lambda s, p: s, state, params)
        updates, inner = inner_tx.update(grads, state.inner, params)
        loss_sum, acc_sum = state.loss_sum + loss, state.accuracy_sum + accuracy
        count = state.count + 1
        end = count % tau == 0  # a block is complete: its means are what the next decision sees
        nonfinite = jnp.where((count - 1) % tau == 0, False, state.nonfinite) | ~jnp.isfinite(loss)
        state = state._replace(
            # Only the block's last gradient is observed: skip the norms on the other tau-1 steps.
            inner=inner, count=count,
            grad_norm=jax.lax.cond(end, lambda g: grad_norms(g, table), lambda g: state.grad_norm, grads),
            block_loss=jnp.where(end, loss_sum / tau, state.block_loss),
            block_accuracy=jnp.where(end, acc_sum / tau, state.block_accuracy),
            loss_sum=jnp.where(end, 0.0, loss_sum), accuracy_sum=jnp.where(end, 0.0, acc_sum),
            nonfinite=nonfinite)
        return updates, state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def scheduler_learning_rates(state: SchedulerState) -> jax.Array:
    """(num_layers,) the learning rates in force (set by the last decision)."""
    return optim.get_learning_rates(state.inner)
