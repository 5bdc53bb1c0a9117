"""`make(env_id, **overrides)` for the named tasks and `make_env(...)` for a user's own."""

from __future__ import annotations

import dataclasses
import functools
import os

import flax.linen as nn
import jax.numpy as jnp

from ganno_jax.data.datasets import DATA_ENV_VAR, SKIP_CHECKSUMS_ENV_VAR, Dataset, load_dataset
from ganno_jax.env.ganno_env import GannoEnv
from ganno_jax.env.types import EnvConfig, EnvParams
from ganno_jax.errors import UserInputError
from ganno_jax.inner import optim
from ganno_jax.inner.bases import BASES
from ganno_jax.inner.models import MODELS
from ganno_jax.inner.task import InnerTask, TaskData

DATASET_ALIASES = {"fmnist": "fashion_mnist", "mnist": "mnist", "cifar10": "cifar10"}
ENV_IDS = ("cnn2_fmnist", "cnn2_mnist", "cnn5_fmnist", "cnn5_cifar10", "mlp_fmnist", "mlp_mnist",
           "mlp5_fmnist", "mlp5_mnist",
           "resnet9_fmnist", "resnet9_cifar10", "resnet18_cifar10")

# Initial-condition ranges of the paper (Appendix A): LogUniform[1e-5, 1e-2] LR, [1e-5, 1e-1] decay.
DEFAULT_INIT = {"init_lr_low": 1e-5, "init_lr_high": 1e-2, "wd_low": 1e-5, "wd_high": 1e-1}


def _task_data(dataset: str) -> tuple[TaskData, Dataset]:
    """The dataset on the device, loaded once per process for each data folder and checksum mode."""
    return _cached_task_data(dataset, os.environ.get(DATA_ENV_VAR), os.environ.get(SKIP_CHECKSUMS_ENV_VAR))


@functools.lru_cache(maxsize=4)
def _cached_task_data(dataset: str, data_dir, skip_checksums) -> tuple[TaskData, Dataset]:
    ds = load_dataset(dataset)
    return TaskData.from_dataset(ds), ds


def parse_env_id(env_id: str) -> tuple[str, str]:
    """'cnn2_fmnist' -> ('cnn2', 'fashion_mnist'); raises UserInputError for unknown ids."""
    model, _, data = env_id.partition("_")
    if model not in MODELS or data not in DATASET_ALIASES:
        raise UserInputError(
            f"unknown env {env_id!r}; known: {', '.join(ENV_IDS)} "
            f"(any <model>_<dataset> with model in {sorted(MODELS)}, dataset in {sorted(DATASET_ALIASES)})")
    return model, DATASET_ALIASES[data]


def make(env_id: str, model_width: float = 1.0, **overrides) -> tuple[GannoEnv, EnvParams]:
    """Builds a named environment and its default params.

    Args:
      env_id: "<model>_<dataset>", e.g. "cnn2_fmnist", "cnn5_cifar10".
      model_width: channel (hidden-unit) multiplier (1.0: the standard nets; e.g. 0.25 for the
        CPU benchmark's cnn2, 0.125 for CPU-scale ResNets).
      **overrides: EnvConfig fields (tau, episode_length, n_val, noop_branch, reward, obs_set, ...)
        and EnvParams initial-condition fields (init_lr_low, init_lr_high, wd_low, wd_high).

    Returns:
      (env, env_params); the dataset is loaded once per process and put on the device once.
    """
    model_name, dataset = parse_env_id(env_id)
    model_cls = MODELS[model_name]
    if model_width != 1.0:
        if "width" not in model_cls.__dataclass_fields__:
            raise UserInputError(f"model_width does not apply to {model_name!r}")
        if not 0 < model_width <= 4:
            raise UserInputError(f"model_width must be in (0, 4], got {model_width}")
    kwargs = {"width": model_width} if model_width != 1.0 else {}
    data, ds = _task_data(dataset)
    return make_env(model_cls(num_classes=10, **kwargs), data, input_shape=ds.x_train.shape[1:],
                    **overrides)


def make_env(model: nn.Module, dataset: TaskData | Dataset, input_shape=None,
             **overrides) -> tuple[GannoEnv, EnvParams]:
    """An environment for a user's own linen model and arrays.

    Args:
      model: any linen Module called as `model.apply(variables, x, train=...)`; its layers (Dense,
        Conv, attention) become agents through the layer table.
      dataset: a `Dataset` (host arrays, e.g. from `load_dataset`) or a `TaskData` on the device.
      input_shape: one example's shape; inferred from the dataset if omitted.
      **overrides: as for `make`.
    """
    if isinstance(dataset, Dataset):
        dataset = TaskData.from_dataset(dataset)
    config_fields = {f.name for f in dataclasses.fields(EnvConfig)}
    unknown = set(overrides) - config_fields - set(DEFAULT_INIT)
    if unknown:
        raise UserInputError(
            f"unknown env option(s) {sorted(unknown)}; known: {sorted(config_fields | set(DEFAULT_INIT))}")
    config = EnvConfig(**{k: v for k, v in overrides.items() if k in config_fields})
    init = {k: float(overrides.get(k, v)) for k, v in DEFAULT_INIT.items()}
    for lo, hi in (("init_lr_low", "init_lr_high"), ("wd_low", "wd_high")):
        if not 0 <= init[lo] <= init[hi] < float("inf"):
            raise UserInputError(f"need 0 <= {lo} <= {hi} (finite), got {init[lo]}, {init[hi]}")
        if init[lo] == 0 < init[hi]:
            raise UserInputError(f"{lo}=0 only as a fixed value ({hi}=0 too): a log-uniform needs > 0")
    if init["init_lr_high"] > config.lr_max:
        raise UserInputError(f"initial LRs up to {init['init_lr_high']:g} exceed lr_max={config.lr_max:g}; "
                             f"raise lr_max to use them (agents and baselines must see the same LRs)")
    shape = tuple(input_shape) if input_shape is not None else tuple(dataset.x_train.shape[1:])
    per_epoch = dataset.x_train.shape[0] // config.batch_size
    if per_epoch < config.tau:
        raise UserInputError(
            f"tau={config.tau} inner steps per env step need at least that many minibatches per "
            f"epoch; the train split ({dataset.x_train.shape[0]}) gives {per_epoch} of batch "
            f"{config.batch_size}")
    if config.n_val > dataset.x_val.shape[0]:  # a small validation split is scored whole
        config = dataclasses.replace(config, n_val=dataset.x_val.shape[0])
    if config.inner_optimizer not in optim.INNER_OPTIMIZERS:
        raise UserInputError(f"unknown inner_optimizer {config.inner_optimizer!r}; "
                             f"known: {', '.join(optim.INNER_OPTIMIZERS)}")
    if config.base not in BASES:
        raise UserInputError(f"unknown base {config.base!r}; known: {', '.join(BASES)}")
    if config.base != "constant" and config.inner_optimizer != "adamw":
        raise UserInputError(f"base {config.base!r} schedules AdamW; inner_optimizer "
                             f"{config.inner_optimizer!r} runs only on the 'constant' base")
    env = GannoEnv(InnerTask(model, shape, batch_size=config.batch_size, optimizer=config.inner_optimizer,
                             base=config.base, total_steps=config.tau * config.episode_length), config)
    params = EnvParams(dataset, **{k: jnp.float32(v) for k, v in init.items()})
    return env, params
