"""Per-agent observations (paper Appendix A): global features shared by all agents + local ones.

Quantities spanning orders of magnitude (LRs, norms, ratios, variances) enter as log10 with a floor
of 1e-10; losses are clipped to [0, 100]; NaN/Inf become finite values and the flag says so, so
nothing non-finite ever reaches an agent. The layout is versioned: `OBS_LAYOUT_VERSION` and the
names of the selected features are saved with every checkpoint and checked on load.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ganno_jax.env.actions import NUM_ACTIONS
from ganno_jax.env.types import Dynamics
from ganno_jax.inner.layer_table import DEPTH_POSITIONS, LAYER_TYPES, LayerTable

OBS_LAYOUT_VERSION = 1

GLOBAL_FEATURES = (
    "train_accuracy",
    "train_loss",
    "val_accuracy",
    "val_loss",
    "nonfinite_flag",
    "progress",  # t / T
    "log10_train_val_loss_ratio",
    "log10_init_lr",
    "log10_init_weight_decay",
)
LOCAL_FEATURES = (
    ("log10_lr",)
    + tuple(f"prev_action_{i}" for i in range(NUM_ACTIONS))
    + tuple(f"layer_type_{k}" for k in LAYER_TYPES)
    + tuple(f"depth_{k}" for k in DEPTH_POSITIONS)
    + (
        "log10_trust_ratio",
        "log10_grad_norm",
        "log10_update_norm",
        "param_mean",
        "log10_param_var",
        "log10_param_norm",
    )
)
# Global features the seed systems observe (not part of GANNO's observation).
SEED_FEATURES = (
    "epochs_remaining",  # 1 − t / T
    "log10_grad_norm_mean",  # over layers of log10 ‖g_l‖: a fixed-size summary of the layerwise
    "log10_grad_norm_min",  # gradient norms, so one policy fits any depth (*our choice*)
    "log10_grad_norm_max",
    "log10_pred_var",  # running averages (0.9) of the variance of the predicted probabilities on
    "log10_pred_change_var",  # a fixed probe set, and of their change since the last env step
    "last_layer_param_mean",
    "log10_last_layer_param_var",
)
# What an agent on a base (`EnvConfig.base`) needs beyond the rate in force (`log10_lr`, which on
# a base is the peak times the base's unit rate): its own correction and where the base stands.
BASE_FEATURES = (
    "log2_multiplier",  # local: log2(peak / initial LR), the agent's correction m (0 at the start)
    "base_unit",  # global: the base's rate as a fraction of its peak now (1 on `constant`)
)
ALL_FEATURES = GLOBAL_FEATURES + LOCAL_FEATURES + SEED_FEATURES + BASE_FEATURES

# Observation sets: the paper's full observation, its ablations (Table 2) and the seed systems'.
OBS_SETS: dict[str, tuple[str, ...]] = {
    "full": GLOBAL_FEATURES + LOCAL_FEATURES,
    "full_base": GLOBAL_FEATURES + LOCAL_FEATURES + BASE_FEATURES,  # for agents correcting a base
    "lr_only": ("log10_lr",),
    "progress_only": ("progress",),
    "global_only": GLOBAL_FEATURES,
    "xu2019": ("train_loss", "val_loss", "log10_pred_var", "log10_pred_change_var",
               "last_layer_param_mean", "log10_last_layer_param_var", "log10_lr"),
    "subramanian2023": ("val_loss", "epochs_remaining", "log10_grad_norm_mean",
                        "log10_grad_norm_min", "log10_grad_norm_max"),
}
NEEDS_PROBE = {"xu2019"}  # observation sets that need the probe-set predictions

_FLOOR, _CEIL = 1e-10, 1e10


def safe_log10(x: jax.Array) -> jax.Array:
    """log10 of |x| clipped to [1e-10, 1e10]; NaN maps to the ceiling (it signals blow-up)."""
    x = jnp.nan_to_num(jnp.abs(x), nan=_CEIL, posinf=_CEIL)
    return jnp.log10(jnp.clip(x, _FLOOR, _CEIL))


def _finite(x: jax.Array, bound: float) -> jax.Array:
    return jnp.clip(jnp.nan_to_num(x, nan=bound, posinf=bound, neginf=-bound), -bound, bound)


def feature_matrix(
    dyn: Dynamics,
    lrs: jax.Array,
    prev_action: jax.Array,
    progress: jax.Array,
    init_lr: jax.Array,
    weight_decay: jax.Array,
    table: LayerTable,
    peaks: jax.Array | None = None,
    base_unit: jax.Array | float = 1.0,
) -> jax.Array:
    """All features, (num_layers, len(ALL_FEATURES)), every entry finite.

    Args:
      dyn: the last step's dynamics (per-layer stats have shape (num_agents,)).
      lrs: (num_agents,) learning rates in force (a base's peak times its unit rate).
      peaks: (num_agents,) the agents' peaks, `init_lr × m` (default: `lrs`, as on `constant`).
      base_unit: () the base's unit rate now.
      prev_action: (num_agents,) int previous actions.
      progress: () t / T.
      init_lr, weight_decay: () this episode's initial conditions.
      table: the network's layer table (types and depth positions).
    """
    n = lrs.shape[0]
    train_loss = _finite(dyn.train_loss, 100.0)
    val_loss = _finite(dyn.val_loss, 100.0)
    flag = (dyn.diverged | ~jnp.isfinite(dyn.train_loss) | ~jnp.isfinite(dyn.val_loss)).astype(jnp.float32)
    global_feats = jnp.stack(
        [
            _finite(dyn.train_accuracy, 1.0),
            jnp.clip(train_loss, 0.0, 100.0),
            _finite(dyn.val_accuracy, 1.0),
            jnp.clip(val_loss, 0.0, 100.0),
            flag,
            progress.astype(jnp.float32),
            safe_log10(train_loss / jnp.maximum(val_loss, _FLOOR)),
            safe_log10(init_lr),
            safe_log10(weight_decay),
        ]
    )
    s = dyn.stats
    local = jnp.concatenate(
        [
            safe_log10(lrs)[:, None],
            jax.nn.one_hot(prev_action, NUM_ACTIONS),
            jax.nn.one_hot(jnp.asarray(table.type_ids()), len(LAYER_TYPES)),
            jax.nn.one_hot(jnp.asarray(table.depth_ids()), len(DEPTH_POSITIONS)),
            jnp.stack(
                [
                    safe_log10(s.param_norm / jnp.maximum(s.update_norm, _FLOOR)),
                    safe_log10(s.grad_norm),
                    safe_log10(s.update_norm),
                    _finite(s.param_mean, 1e3),
                    safe_log10(s.param_var),
                    safe_log10(s.param_norm),
                ],
                axis=1,
            ),
        ],
        axis=1,
    )
    log_g = safe_log10(s.grad_norm)
    seed_feats = jnp.stack(
        [
            1.0 - progress.astype(jnp.float32),
            log_g.mean(),
            log_g.min(),
            log_g.max(),
            safe_log10(dyn.pred_var),
            safe_log10(dyn.pred_change_var),
            _finite(s.param_mean[-1], 1e3),
            safe_log10(s.param_var[-1]),
        ]
    )
    peaks = lrs if peaks is None else peaks
    ratio = jnp.maximum(peaks, _FLOOR) / jnp.maximum(init_lr, _FLOOR)
    base_feats = jnp.stack([jnp.clip(jnp.nan_to_num(jnp.log2(ratio)), -30.0, 30.0),
                            jnp.broadcast_to(jnp.asarray(base_unit, jnp.float32), (n,))], axis=1)
    return jnp.concatenate([jnp.broadcast_to(global_feats, (n, len(GLOBAL_FEATURES))), local,
                            jnp.broadcast_to(seed_feats, (n, len(SEED_FEATURES))), base_feats], axis=1)


def select(features: jax.Array, names: tuple[str, ...]) -> jax.Array:
    """Columns of `feature_matrix` output for the given feature names, (num_agents, len(names))."""
    idx = jnp.asarray([ALL_FEATURES.index(n) for n in names])
    return features[:, idx]
