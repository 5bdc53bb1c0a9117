"""Containers of the GANNO environment: static config, dynamic params, state."""

from __future__ import annotations

import dataclasses

import jax
from flax import struct

from ganno_jax.inner.task import BatchStream, InnerState, LayerStats, TaskData


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Static settings: they fix shapes or program structure, so changing one recompiles."""

    tau: int = 100  # inner steps per env step (paper: 100)
    episode_length: int = 50  # T env steps per episode (an inner run of T·tau steps)
    batch_size: int = 128  # inner minibatch size
    n_val: int = 2048  # validation examples scored per env step (same subset for both branches)
    # Defaults are for deployment (no counterfactual); the trainer sets both from its config.
    noop_branch: bool = False  # train the all-no-op counterfactual too (training only)
    # Run the base alone beside the agents for the whole episode (training only): same network
    # initialisation, minibatches and validation subset, so a reward paired against it
    # ("paired_telescoping_accuracy") cancels the seed's luck that both share.
    base_branch: bool = False
    reward: str = "accuracy"  # see rewards.REWARDS; "difference_accuracy" (paper) needs noop_branch
    base: str = "constant"  # what each layer's rate follows between decisions (inner/bases.py)
    obs_set: str = "full"  # see observations.OBS_SETS
    lr_max: float = 0.1  # actions are clipped to [lr_min, lr_max]
    lr_min: float = 0.0  # > 0 keeps an action from switching a layer off (0 absorbs ×/÷ actions)
    global_lr: bool = False  # one agent sets one LR for every layer (single-agent presets)
    action_set: str = "ganno"  # see actions.ACTION_SETS
    inner_optimizer: str = "adamw"  # layerwise "adamw" (paper) or "sgd" (subramanian2023)
    n_probe: int = 256  # fixed validation examples for the prediction-variance features (xu2019)


@struct.dataclass
class EnvParams:
    """Dynamic settings: arguments of the compiled program, so sweeping them costs no compile."""

    data: TaskData
    init_lr_low: jax.Array  # () initial LR ~ LogUniform[low, high]; low == high fixes it (0 allowed)
    init_lr_high: jax.Array  # ()
    wd_low: jax.Array  # () weight decay ~ LogUniform[low, high]; low == high fixes it
    wd_high: jax.Array  # ()


@struct.dataclass
class Dynamics:
    """What the agents observe of the last env step (or the fresh network after a reset)."""

    train_loss: jax.Array  # () mean over the tau minibatches
    train_accuracy: jax.Array  # ()
    val_loss: jax.Array  # () on the step's validation subset
    val_accuracy: jax.Array  # ()
    diverged: jax.Array  # () bool: a loss or parameter became non-finite
    stats: LayerStats  # per-layer statistics, fields (num_layers,)
    pred_var: jax.Array  # () running average of the variance of the predicted probabilities
    pred_change_var: jax.Array  # () running average of the variance of their change per env step


@struct.dataclass
class EnvState:
    """One environment copy: the inner training run and the episode's bookkeeping."""

    inner: InnerState  # network, optimiser state (holds the per-layer LRs and weight decay)
    stream: BatchStream  # minibatch order
    t: jax.Array  # () int32 env steps taken in this episode
    prev_action: jax.Array  # (num_agents,) int32, 0 (no-op) after a reset; (1,) with global_lr
    init_lr: jax.Array  # () this episode's initial LR
    weight_decay: jax.Array  # ()
    last: Dynamics  # what the next observation is built from
    best_val_loss: jax.Array  # () lowest validation loss of the episode so far (subramanian2023)
    probe_probs: jax.Array  # (n_probe, classes) predictions on the probe set after the last step
    val_key: jax.Array  # PRNG key of the episode's validation subset (rewards.FIXED_VAL_SUBSET)
    # The base branch (`EnvConfig.base_branch`), else None: the network the base alone trains
    # from the same start, and its accuracy on the episode's validation subset after the last step.
    base_inner: InnerState | None = None
    base_val_accuracy: jax.Array | None = None  # ()
