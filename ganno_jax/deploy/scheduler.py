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
from ganno_jax.inner import bases, optim
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


def _warn_past_end(total_steps) -> None:
    import warnings

    warnings.warn(f"ganno_jax.scheduler: more updates than total_steps={int(total_steps)}; the learning "
                  f"rates stay as the policy's last decision set them", stacklevel=1)


def _num_classes(logits, batch: int) -> int:
    """The number of classes of a model's output: it must be one array of logits (batch, classes)."""
    shape = getattr(logits, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != batch or shape[1] < 2:
        what = (f"an array of shape {tuple(shape)}" if shape is not None else
                f"a {type(logits).__name__}")
        raise UserInputError(f"model must return one array of logits of shape (batch, classes) = ({batch}, "
                             f"C >= 2) for sample_input; it returned {what}")
    return int(shape[1])


def _scalar(name: str, value) -> jax.Array:
    """A per-step scalar metric as float32; ValueError for an array of another shape."""
    value = jnp.asarray(value, jnp.float32)
    if value.shape != ():
        raise ValueError(f"tx.update: {name} must be a scalar (the step's mean), got shape {value.shape}")
    return value


def scheduler(policy: Policy, model: nn.Module, sample_input: jax.Array, *, init_lr: float,
              weight_decay: float, total_steps: int, seed: int = 0, greedy: bool = False,
              base: str | None = None) -> optax.GradientTransformationExtraArgs:
    """Layerwise AdamW (on a base) whose per-layer learning rates `policy` sets every `policy.tau` steps.

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
      base: what every layer's rate follows between decisions (`ganno_jax.inner.bases.BASES`):
        the policy corrects it with a per-layer multiplier starting at 1. Default: the base the
        policy was trained on (`policy.config.base`). On "schedule_free" score and deploy the
        network at `scheduler_eval_params(state, params)`, as with optax's schedule-free AdamW.

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
    base = cfg.base if base is None else base
    if base not in bases.BASES:
        raise UserInputError(f"base must be one of {', '.join(bases.BASES)}, got {base!r}")
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
    num_classes = _num_classes(logits, np.shape(sample_input)[0])
    params_shapes = variables["params"]
    n = table.num_layers
    names = tuple(policy.obs_names)

    inner_tx = bases.layerwise_optimizer(base, jnp.full((n,), init_lr), weight_decay, table.leaf_layer,
                                         total_steps)
    run_key = jax.random.split(jax.random.PRNGKey(seed))[1]  # as evaluation's rollout splits its key

    def check_params(params, where: str) -> None:
        """Structure and shapes must be the model's (checked at trace time: both are static)."""
        same = jax.tree.structure(params) == jax.tree.structure(params_shapes) and all(
            np.shape(a) == b.shape for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params_shapes)))
        if not same:
            raise UserInputError(f"{where}: params are not the params of the model given to scheduler "
                                 f"(pass model.init(...)['params'] of that model)")
        ints = [jnp.result_type(a) for a in jax.tree.leaves(params)
                if not jnp.issubdtype(jnp.result_type(a), jnp.floating)]
        if ints:  # an update of an integer array rounds to nothing: the model would never train
            raise UserInputError(f"{where}: params must be floating point, got {ints[0]} arrays")

    def init_fn(params) -> SchedulerState:
        check_params(params, "tx.init")
        chance_loss, chance_acc = jnp.log(jnp.float32(num_classes)), jnp.float32(1.0 / num_classes)
        zero = jnp.zeros((), jnp.float32)
        hidden, first = init_carry(n)
        return SchedulerState(inner=inner_tx.init(params), count=jnp.zeros((), jnp.int32), hidden=hidden,
                              first=first, prev_action=jnp.zeros((n,), jnp.int32), loss_sum=zero,
                              accuracy_sum=zero, block_loss=chance_loss, block_accuracy=chance_acc,
                              grad_norm=jnp.zeros((n,), jnp.float32), val_loss=chance_loss,
                              val_accuracy=chance_acc, nonfinite=jnp.zeros((), bool))

    def decide(state: SchedulerState, params):
        """(GRU state, first flag, actions, new peaks): only what a decision changes, so that the
        `lax.cond` around it returns a few small arrays, never a copy of the optimiser state."""
        t = state.count // tau
        lrs = optim.get_learning_rates(state.inner)  # the peaks the actions scale
        stats = layer_stats(params, state.inner, state.grad_norm, table)
        dyn = Dynamics(train_loss=state.block_loss, train_accuracy=state.block_accuracy,
                       val_loss=state.val_loss, val_accuracy=state.val_accuracy, diverged=state.nonfinite,
                       stats=stats, pred_var=jnp.float32(0), pred_change_var=jnp.float32(0))
        feats = observations.feature_matrix(
            dyn, bases.rates_in_force(base, total_steps, state.inner), state.prev_action, t / num_decisions,
            jnp.float32(init_lr), jnp.float32(weight_decay), table, peaks=lrs,
            base_unit=bases.unit_rate(base, total_steps, bases.step_count(base, state.inner)))
        key = jax.random.split(jax.random.split(run_key, num_decisions)[jnp.minimum(t, num_decisions - 1)])[0]
        (hidden, first), actions = act(policy, (state.hidden, state.first),
                                       observations.select(feats, names), key, greedy)
        return hidden, first, actions, apply_action_set(lrs, actions, cfg.lr_max, cfg.action_set, cfg.lr_min)

    def keep(state: SchedulerState, params):
        del params
        return state.hidden, state.first, state.prev_action, optim.get_learning_rates(state.inner)

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
        # Past the planned length the policy has nothing to observe (its progress feature ends at
        # 1): the rates stay where its last decision put them, and the caller is told once.
        deciding = (state.count % tau == 0) & (state.count < num_decisions * tau)
        hidden, first, actions, lrs = jax.lax.cond(deciding, decide, keep, state, params)
        state = state._replace(inner=optim.set_learning_rates(state.inner, lrs), hidden=hidden, first=first,
                               prev_action=actions)
        jax.lax.cond(state.count == total_steps, lambda: jax.debug.callback(_warn_past_end, total_steps),
                     lambda: None)
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
    """(num_layers,) each layer's peak rate as the last decision set it: `init_lr × m` (on a
    scheduled base the next step applies this times the base's unit rate; on `constant` this is
    the rate in force)."""
    return optim.get_learning_rates(state.inner)


def scheduler_eval_params(state: SchedulerState, params):
    """The parameters to score and deploy: schedule-free's averaged point on the `schedule_free`
    base (as `optax.contrib.schedule_free_eval_params`), `params` itself on every other base."""
    if isinstance(state.inner.inner_state, bases.LayerwiseScheduleFreeState):
        return bases.eval_params("schedule_free", state.inner, params)
    return params
