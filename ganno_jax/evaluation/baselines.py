"""The handcrafted baselines of SPEC §5 as optax optimisers, and the rivals users pick instead.

The schedules themselves live in `ganno_jax.inner.schedules` (the trainer's demonstrations use
them too); each is linear in its peak α. Choices where the spec names a schedule but not its constants (*our choice*):
  linear: α → 0; quadratic: polynomial power 2, α → 0; cosine: α → 0; exponential: α → α/100
  (smooth, rate 0.01 over N); piecewise: ×0.1 at 50 % and again at 75 % of N; SGDR: three
  cosine cycles of N/7, 2N/7, 4N/7 (the last takes the remainder) each restarting at α;
  warmup_cosine: linear warm-up 0 → α over 5 % of N, cosine to 0; onecycle: optax's
  `cosine_onecycle_schedule` with its defaults (30 % up from α/25, down to α/25e4).
  wsd (warm-up, stable, decay): linear warm-up 0 → α over 5 % of N, constant α, then a cooldown
  to 0 over the last 20 % in the "1 − sqrt" shape, which Hägele et al. (2024, "Scaling laws and
  compute-optimal training beyond fixed training durations") measured to beat a linear cooldown.
Optimisers: AdamW (b1 0.9, b2 0.999, eps 1e-8, decoupled weight decay, as the env's) for the
schedules; LAMB (optax defaults, eps 1e-6) with the cosine schedule; Lion (optax defaults,
b1 0.9, b2 0.99) at constant α. Weight decay is the grid's for all of them.

What users pick instead of tuning a schedule, from `optax.contrib`:
  plateau: AdamW at α with `reduce_on_plateau` (optax defaults: ×0.1 after 10 validations
    without a 1e-4 relative improvement) fed the validation loss the env measures every tau steps;
  schedule_free: `schedule_free_adamw` at α and the grid's weight decay, warm-up over 5 % of N
    (its authors recommend the warm-up of a usual schedule), scored at its averaged point
    (`schedule_free_eval_params`);
  LR-free, at their published defaults (learning_rate 1.0), the initial LR ignored:
    prodigy and dadapt_adamw with the grid's decay (both AdamW-style: decoupled, times their
    adapted step); mechanic (`mechanize` around AdamW at base rate 1.0 with the grid's decoupled
    decay, Mechanic's own defaults otherwise); cocob without decay (its `weight_decay` is an L2
    term on the gradient; its authors use none); dog without decay (its `weight_decay` is an L2
    term added to the gradient, so the grid's AdamW value 0.1 means a far stronger penalty there:
    measured, it kept DoG near chance, 19.5 %) and scored at its polynomial-decay average
    (γ = 8), as its authors recommend ("DoG is SGD's best friend", Ivgi et al. 2023; optax's
    docstring: "The authors recommend using model averaging with this optimizer").

Weight decay semantics per rival, as each user would meet them: decoupled (AdamW: the decay is
multiplied by the rate in force) for every schedule, plateau, schedule_free (optax multiplies it by
the rate), lamb_cosine, lion, prodigy, dadapt_adamw and mechanic; none for dog and cocob.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax import contrib

from ganno_jax.inner.schedules import UNIT_SCHEDULES, schedule

def adamw_with_schedule(name: str) -> Callable:
    """`make(alpha, wd, total_steps) -> (optax transform, lr schedule)` for AdamW + the schedule."""

    def make(alpha, wd, total_steps):
        lr = schedule(name, alpha, total_steps)
        return optax.adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=wd), lr

    return make


def lamb_cosine(alpha, wd, total_steps):
    """LAMB (layerwise trust ratios on Adam) with a cosine decay from α."""
    lr = schedule("cosine", alpha, total_steps)
    return optax.lamb(lr, weight_decay=wd), lr


def lion(alpha, wd, total_steps):
    """Lion at a constant α."""
    lr = lambda count: alpha + 0.0 * count  # noqa: E731 (a schedule, for the recorded LR curve)
    return optax.lion(lr, weight_decay=wd), lr


def _constant(alpha):
    return lambda count: alpha + 0.0 * count


def _no_lr(count):
    """The recorded LR of an LR-free method: it has none to record (NaN, left out of the plots)."""
    return jnp.nan + 0.0 * count


def plateau_scale(state) -> jax.Array:
    """The multiplier `reduce_on_plateau` is applying (1, then 0.1, 0.01, ...)."""
    return state[1].scale


def plateau(alpha, wd, total_steps):
    """AdamW at α, its step multiplied by `reduce_on_plateau`'s scale; the scale moves only on the
    validation losses `plateau_observe` passes (every tau steps), not on the train steps."""
    reduce = contrib.reduce_on_plateau()

    def init(params):
        return reduce.init(params)

    def update(updates, state, params=None, **extra):
        return jax.tree.map(lambda u: state.scale * u, updates), state

    scaled = optax.GradientTransformation(init, update)
    return optax.chain(optax.adamw(alpha, b1=0.9, b2=0.999, eps=1e-8, weight_decay=wd), scaled), _constant(alpha)


def plateau_observe(opt_state, val_loss):
    """Advances the plateau state of `plateau`'s optimiser state by one validation loss."""
    reduce = contrib.reduce_on_plateau()
    _, new = reduce.update(jnp.zeros(()), opt_state[1], value=val_loss)
    return (opt_state[0], new)


def schedule_free(alpha, wd, total_steps):
    """optax's schedule-free AdamW; the recorded rate is its warm-up to α, then α."""
    warmup = max(1, total_steps // 20)
    tx = contrib.schedule_free_adamw(alpha, warmup_steps=warmup, weight_decay=wd)
    return tx, optax.warmup_constant_schedule(0.0, alpha, warmup)


def _lr_free(make):
    return lambda alpha, wd, total_steps: (make(wd), _no_lr)


class AveragedState(NamedTuple):
    """State of `polynomial_decay_average`."""

    inner: optax.OptState  # the wrapped optimiser's state
    count: jax.Array  # () int32 updates taken
    average: optax.Params  # x̄_t, the averaged parameters


def polynomial_decay_average(tx: optax.GradientTransformation, gamma: float = 8.0) -> optax.GradientTransformation:
    """`tx` that also keeps the polynomial-decay average of its iterates (Ivgi et al. 2023,
    after Shamir & Zhang 2013): x̄_t = (1 − w_t) x̄_{t−1} + w_t x_t, w_t = (1 + γ) / (t + γ), so
    x̄_1 = x_1. The updates are `tx`'s own; `averaged_params(state)` is what is scored."""

    def init(params):
        return AveragedState(inner=tx.init(params), count=jnp.zeros((), jnp.int32),
                             average=jax.tree.map(jnp.copy, params))

    def update(updates, state, params=None):
        updates, inner = tx.update(updates, state.inner, params)
        count = state.count + 1
        w = (1.0 + gamma) / (count.astype(jnp.float32) + gamma)
        average = jax.tree.map(lambda a, p, u: (1.0 - w) * a + w * (p + u), state.average, params, updates)
        return updates, AveragedState(inner=inner, count=count, average=average)

    return optax.GradientTransformation(init, update)


def averaged_params(state: AveragedState, params):
    """The parameters `polynomial_decay_average` scores: its average."""
    del params
    return state.average


# LR-free optimisers: make(wd) -> GradientTransformation; the grid's initial LR is not used.
LR_FREE = {
    "prodigy": lambda wd: contrib.prodigy(weight_decay=wd),
    "dadapt_adamw": lambda wd: contrib.dadapt_adamw(weight_decay=wd),
    "dog": lambda wd: polynomial_decay_average(contrib.dog()),
    "cocob": lambda wd: contrib.cocob(),
    "mechanic": lambda wd: contrib.mechanize(optax.adamw(1.0, weight_decay=wd)),
}

# A rival's version: bumped whenever its definition changes, so that evaluation reuses an earlier
# evaluation's rows of a rival only if they were made by the same definition (`--baselines-from`).
RIVAL_VERSIONS = {"dog": 2}  # 2: no L2 decay, scored at its average (1: wd = the grid's, last iterate)

# name -> make(alpha, wd, total_steps) -> (GradientTransformation, schedule)
OPTIMIZER_BASELINES: dict[str, Callable] = {
    **{name: adamw_with_schedule(name) for name in UNIT_SCHEDULES},
    "lamb_cosine": lamb_cosine,
    "lion": lion,
    "plateau": plateau,
    "schedule_free": schedule_free,
    **{name: _lr_free(make) for name, make in LR_FREE.items()},
}
