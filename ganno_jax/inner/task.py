"""The inner supervised task as pure functions: init, `n` AdamW steps in one scan, evaluate.

An `InnerTask` is static (model, layer table, optimiser, batch size) and closed over by jitted
code; everything that changes is in `InnerState`, `BatchStream` and `TaskData`, all pytrees.
Models take `(x, train)`; their non-parameter collections (e.g. `batch_stats`) are `model_state`
and are updated in training mode and read in evaluation mode.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from ganno_jax.data.datasets import Dataset
from ganno_jax.inner import bases, optim, shuffle
from ganno_jax.inner.layer_table import LayerTable, model_layer_table

Params = Any  # nested dict of arrays


@struct.dataclass
class TaskData:
    """A dataset's splits on the device. Passed as an argument, never baked into a program."""

    x_train: jax.Array  # (n_train, H, W, C) float32, standardised
    y_train: jax.Array  # (n_train,) int32
    x_val: jax.Array  # (n_val, H, W, C)
    y_val: jax.Array  # (n_val,)
    x_test: jax.Array  # (n_test, H, W, C)
    y_test: jax.Array  # (n_test,)

    @classmethod
    def from_dataset(cls, ds: Dataset) -> "TaskData":
        """Puts a host `Dataset` on the default device, once."""
        names = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
        return cls(**{k: jnp.asarray(getattr(ds, k)) for k in names})


@struct.dataclass
class InnerState:
    """The supervised network being trained and its optimiser."""

    params: Params
    model_state: Mapping[str, Any]  # non-parameter collections, e.g. {"batch_stats": ...}; {} if none
    opt_state: optax.OptState  # layerwise AdamW state; holds learning rates and weight decay


@struct.dataclass
class BatchStream:
    """Epoch-wise shuffled minibatch order, computed inside jit without materialising it.

    Epoch e visits the train split in the order `shuffle.permute(fold_in(key, e), ·, n_train)`;
    only the entries a call needs are computed (see `ganno_jax.inner.shuffle`).
    """

    key: jax.Array  # PRNG key of the stream; each epoch folds its number in
    epoch: jax.Array  # () int32 epochs completed
    pos: jax.Array  # () int32 minibatches already taken in the current epoch
    n_train: int = struct.field(pytree_node=False, default=0)  # size of the shuffled split


@struct.dataclass
class LayerStats:
    """Per-layer statistics at the last of a run of inner steps."""

    grad_norm: jax.Array  # (num_layers,) ‖g_l‖
    update_norm: jax.Array  # (num_layers,) ‖u_l‖, u = Adam direction incl. decay, before the LR
    param_norm: jax.Array  # (num_layers,) ‖θ_l‖
    param_mean: jax.Array  # (num_layers,)
    param_var: jax.Array  # (num_layers,)


@struct.dataclass
class TrainMetrics:
    """Means over the minibatches of a run of inner steps."""

    loss: jax.Array  # ()
    accuracy: jax.Array  # ()


class InnerTask:
    """A Flax model, its layer table and its layerwise AdamW, as pure functions.

    Args:
      model: a linen Module called as `model.apply(variables, x, train=...)`, or as
        `model.apply(variables, x)` when its `__call__` has no `train` argument.
      input_shape: one example's shape, e.g. (28, 28, 1).
      batch_size: minibatch size (SPEC: 128).
      b1, b2, eps: Adam constants.
      optimizer: "adamw" (layerwise AdamW, the paper's) or "sgd" (layerwise plain SGD).
      base: what each layer's rate follows between decisions (`ganno_jax.inner.bases.BASES`;
        "constant", the paper's, for any optimizer; the others with "adamw").
      total_steps: the run's length N in inner steps, over which a base's schedule runs.
    """

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], batch_size: int = 128,
                 b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, optimizer: str = "adamw",
                 base: str = "constant", total_steps: int = 1):
        self.model = model
        self.input_shape = tuple(input_shape)
        self.batch_size = batch_size
        self._takes_train = "train" in inspect.signature(model.__call__).parameters
        shapes = jax.eval_shape(
            lambda k: model.init(k, jnp.zeros((1, *self.input_shape)), **self._train_kw(False)),
            jax.random.PRNGKey(0),
        )
        self.table: LayerTable = model_layer_table(model, jnp.zeros((1, *self.input_shape)),
                                                   **self._train_kw(False))
        logits = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((1, *self.input_shape))), shapes)
        self.num_classes: int = logits.shape[-1]
        self._model_collections = tuple(k for k in shapes if k != "params")
        if optimizer not in optim.INNER_OPTIMIZERS:
            raise ValueError(f"unknown inner optimizer {optimizer!r}; known: {optim.INNER_OPTIMIZERS}")
        if base not in bases.BASES:
            raise ValueError(f"unknown base {base!r}; known: {', '.join(bases.BASES)}")
        if base != "constant" and optimizer != "adamw":
            raise ValueError(f"base {base!r} schedules AdamW; the {optimizer!r} optimiser has only 'constant'")
        self.base, self.total_steps = base, int(total_steps)
        lrs, layers = jnp.zeros(self.num_layers), self.table.leaf_layer
        self.optimizer = (bases.layerwise_optimizer(base, lrs, 0.0, layers, self.total_steps, b1=b1, b2=b2, eps=eps)
                          if optimizer == "adamw" else optim.layerwise_sgd(lrs, 0.0, layers))

    @property
    def num_layers(self) -> int:
        return self.table.num_layers

    def init(self, key: jax.Array, learning_rates: jax.Array, weight_decay: jax.Array) -> InnerState:
        """A freshly initialised network and optimiser with the given per-layer rates and decay."""
        variables = self.model.init(key, jnp.zeros((1, *self.input_shape)), **self._train_kw(False))
        params = variables["params"]
        model_state = {k: variables[k] for k in self._model_collections}
        opt_state = self.optimizer.init(params)
        opt_state = optim.set_learning_rates(opt_state, jnp.asarray(learning_rates, jnp.float32))
        hyper = dict(opt_state.hyperparams, weight_decay=jnp.asarray(weight_decay, jnp.float32))
        return InnerState(params=params, model_state=model_state, opt_state=opt_state._replace(hyperparams=hyper))

    def apply(self, params: Params, model_state, x: jax.Array, train: bool):
        """Logits and the new model state (unchanged in evaluation mode)."""
        variables = {"params": params, **model_state}
        if train and model_state:
            logits, new_state = self.model.apply(variables, x, **self._train_kw(True),
                                                 mutable=list(model_state))
            return logits, new_state
        return self.model.apply(variables, x, **self._train_kw(train)), model_state

    def _train_kw(self, train: bool) -> dict:
        """The `train` keyword for models that take one (those with batch statistics must)."""
        return {"train": train} if self._takes_train else {}

    def _loss(self, params, model_state, x, y):
        logits, new_state = self.apply(params, model_state, x, train=True)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, (new_state, jnp.mean(jnp.argmax(logits, -1) == y))

    def train_step(self, state: InnerState, x: jax.Array, y: jax.Array,
                   optimizer: optax.GradientTransformation | None = None):
        """One optimiser step on one minibatch; returns (state, loss, accuracy, ‖g_l‖ (num_layers,)).

        `optimizer` defaults to the layerwise AdamW; evaluation baselines pass their own optax
        optimiser (then `state.opt_state` must be that optimiser's state).
        """
        grad_fn = jax.value_and_grad(self._loss, has_aux=True)
        (loss, (model_state, acc)), grads = grad_fn(state.params, state.model_state, x, y)
        updates, opt_state = (optimizer or self.optimizer).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new = InnerState(params=params, model_state=model_state, opt_state=opt_state)
        return new, loss, acc, grad_norms(grads, self.table)

    def layer_stats(self, state: InnerState, grad_norm: jax.Array) -> LayerStats:
        """Per-layer statistics of `state` (see `layer_stats`)."""
        return layer_stats(state.params, state.opt_state, grad_norm, self.table)

    def train_steps(self, state: InnerState, data: TaskData, indices: jax.Array):
        """Runs one AdamW step per row of `indices` in a single `lax.scan`.

        Only ‖g‖ is carried through the scan; the parameter statistics are computed once, from
        the final state, rather than at every inner step.

        Args:
          state: the inner state.
          data: the dataset on the device.
          indices: (n, batch) int32 train-split indices, one minibatch per row.

        Returns:
          (new state, TrainMetrics averaged over the n minibatches, LayerStats after the last step).
        """

        def body(carry, idx):
            state, _ = carry
            state, loss, acc, grad_norm = self.train_step(state, data.x_train[idx], data.y_train[idx])
            return (state, grad_norm), (loss, acc)

        (state, grad_norm), (losses, accs) = jax.lax.scan(
            body, (state, jnp.zeros((self.num_layers,))), indices)
        return state, TrainMetrics(loss=losses.mean(), accuracy=accs.mean()), self.layer_stats(state, grad_norm)

    def scored_params(self, state: InnerState) -> Params:
        """The parameters the network is scored at: the base's (schedule-free's averaged point),
        otherwise the trained ones. `state.opt_state` must be this task's optimiser's state."""
        return bases.eval_params(self.base, state.opt_state, state.params)

    def rates_in_force(self, state: InnerState) -> jax.Array:
        """(num_layers,) the rates the next inner step applies (each peak times the base's unit rate)."""
        return bases.rates_in_force(self.base, self.total_steps, state.opt_state)

    def evaluate(self, state: InnerState, x: jax.Array, y: jax.Array, chunk: int = 256):
        """Mean cross-entropy and accuracy on (x, y) in evaluation mode, in chunks of `chunk`, at
        the parameters the base is scored at (`scored_params`).

        (256 is the fastest chunk measured for cnn2 on the development CPU: 20 ms for 512
        examples, against 63 ms in one chunk of 512.)

        Args:
          x: (n, *input_shape) examples; n need not be a multiple of `chunk`.
          y: (n,) labels.

        Returns:
          TrainMetrics(loss, accuracy) over all n examples.
        """
        n = x.shape[0]
        chunk = min(chunk, n)
        num_chunks = -(-n // chunk)
        pad = num_chunks * chunk - n
        xs = jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1)).reshape(num_chunks, chunk, *x.shape[1:])
        ys = jnp.pad(y, (0, pad)).reshape(num_chunks, chunk)
        weights = (jnp.arange(num_chunks * chunk) < n).reshape(num_chunks, chunk).astype(jnp.float32)

        params = self.scored_params(state)

        def body(totals, batch):
            xb, yb, wb = batch
            logits, _ = self.apply(params, state.model_state, xb, train=False)
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
            correct = (jnp.argmax(logits, -1) == yb).astype(jnp.float32)
            return totals + jnp.stack([jnp.sum(losses * wb), jnp.sum(correct * wb)]), None

        totals, _ = jax.lax.scan(body, jnp.zeros(2), (xs, ys, weights))
        return TrainMetrics(loss=totals[0] / n, accuracy=totals[1] / n)

    # --- minibatch order -------------------------------------------------------------------
    # No permutation of the train split is ever materialised: a sort of 50k keys costs 27 ms on
    # the development CPU, and under `vmap` a `lax.cond` that would skip it runs it anyway.
    def init_stream(self, key: jax.Array, n_train: int) -> BatchStream:
        """A stream at the start of its first epoch."""
        return BatchStream(key=key, epoch=jnp.int32(0), pos=jnp.int32(0), n_train=n_train)

    def next_indices(self, stream: BatchStream, n: int) -> tuple[jax.Array, BatchStream]:
        """The next `n` minibatches' indices, (n, batch), epoch-wise without replacement.

        The incomplete last minibatch of an epoch is dropped; `n` may cross at most one epoch
        boundary (n <= minibatches per epoch).
        """
        per_epoch = stream.n_train // self.batch_size
        if not 1 <= n <= per_epoch:
            raise ValueError(f"{n} minibatches per call, but an epoch has only {per_epoch} "
                             f"(train split {stream.n_train}, batch {self.batch_size})")
        pos = stream.pos + jnp.arange(n)
        in_next = pos >= per_epoch
        rows = jnp.where(in_next, pos - per_epoch, pos)
        flat = rows[:, None] * self.batch_size + jnp.arange(self.batch_size)[None, :]
        this_epoch = shuffle.permute(jax.random.fold_in(stream.key, stream.epoch), flat, stream.n_train)
        next_epoch = shuffle.permute(jax.random.fold_in(stream.key, stream.epoch + 1), flat,
                                     stream.n_train)
        indices = jnp.where(in_next[:, None], next_epoch, this_epoch)
        crossed = stream.pos + n >= per_epoch
        new = stream.replace(epoch=stream.epoch + crossed.astype(jnp.int32),
                             pos=jnp.where(crossed, stream.pos + n - per_epoch, stream.pos + n))
        return indices, new


def grad_norms(grads: Params, table: LayerTable) -> jax.Array:
    """(num_layers,) ‖g_l‖ of a gradient tree."""
    return jnp.sqrt(optim.per_layer_sums(jax.tree.leaves(grads), table.leaf_layer, table.num_layers,
                                         lambda g: jnp.sum(jnp.square(g))))


def layer_stats(params: Params, opt_state, grad_norm: jax.Array, table: LayerTable) -> LayerStats:
    """Per-layer statistics: ‖θ‖, mean and variance of θ, the layerwise optimiser's last ‖u‖.

    Args:
      params: the parameters after the step the statistics describe.
      opt_state: the layerwise optimiser's state after that step (it records ‖u_l‖).
      grad_norm: (num_layers,) ‖g_l‖ of that step's gradient.
      table: the network's layer table.
    """
    leaves, layers, n = jax.tree.leaves(params), table.leaf_layer, table.num_layers
    psq = optim.per_layer_sums(leaves, layers, n, lambda p: jnp.sum(jnp.square(p)))
    psum = optim.per_layer_sums(leaves, layers, n, jnp.sum)
    count = optim.per_layer_sums(leaves, layers, n, lambda p: jnp.float32(p.size))
    mean = psum / count
    return LayerStats(
        grad_norm=grad_norm,
        update_norm=optim.direction_norms(opt_state),
        param_norm=jnp.sqrt(psq),
        param_mean=mean,
        param_var=jnp.maximum(psq / count - jnp.square(mean), 0.0),
    )


def count_params(params: Params) -> int:
    """Number of scalar parameters in a tree."""
    return int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))


def tree_finite(tree) -> jax.Array:
    """() bool: every element of every leaf is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))
