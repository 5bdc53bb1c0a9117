"""The handcrafted baselines of SPEC §5 as optax schedules and optimisers.

Every schedule is an optax schedule with peak (or initial) value α over N inner steps. α is a
traced array when a grid of initial LRs is vmapped, and some optax constructors branch on their
values in Python; all of these schedules are linear in α, so each is built once with α = 1 and
scaled: `lr(step) = α · unit(step)` (the tests check this equals the optax function built with α).

Choices where the spec names a schedule but not its constants (*our choice*):
  linear: α → 0; quadratic: polynomial power 2, α → 0; cosine: α → 0; exponential: α → α/100
  (smooth, rate 0.01 over N); piecewise: ×0.1 at 50 % and again at 75 % of N; SGDR: three
  cosine cycles of N/7, 2N/7, 4N/7 (the last takes the remainder) each restarting at α;
  warmup_cosine: linear warm-up 0 → α over 5 % of N, cosine to 0; onecycle: optax's
  `cosine_onecycle_schedule` with its defaults (30 % up from α/25, down to α/25e4).
Optimisers: AdamW (b1 0.9, b2 0.999, eps 1e-8, decoupled weight decay, as the env's) for the
schedules; LAMB (optax defaults, eps 1e-6) with the cosine schedule; Lion (optax defaults,
b1 0.9, b2 0.99) at constant α. Weight decay is the grid's for all of them.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import optax

Schedule = Callable[[jax.Array], jax.Array]


def _sgdr(n: int) -> Schedule:
    first, second = n // 7, 2 * n // 7
    cycles = [first, second, n - first - second]
    return optax.sgdr_schedule([dict(init_value=1.0, peak_value=1.0, warmup_steps=0, decay_steps=c)
                                for c in cycles])


# name -> (total inner steps N -> schedule with peak 1). Each must be linear in its peak.
UNIT_SCHEDULES: dict[str, Callable[[int], Schedule]] = {
    "linear": lambda n: optax.linear_schedule(1.0, 0.0, n),
    "quadratic": lambda n: optax.polynomial_schedule(1.0, 0.0, power=2, transition_steps=n),
    "cosine": lambda n: optax.cosine_decay_schedule(1.0, n),
    "exponential": lambda n: optax.exponential_decay(1.0, transition_steps=n, decay_rate=0.01),
    "piecewise": lambda n: optax.piecewise_constant_schedule(1.0, {n // 2: 0.1, (3 * n) // 4: 0.1}),
    "sgdr": _sgdr,
    "warmup_cosine": lambda n: optax.warmup_cosine_decay_schedule(0.0, 1.0, max(1, n // 20), n),
    "onecycle": lambda n: optax.cosine_onecycle_schedule(n, 1.0),
}


def schedule(name: str, alpha: jax.Array, total_steps: int) -> Schedule:
    """The named schedule with peak `alpha` over `total_steps` inner steps."""
    unit = UNIT_SCHEDULES[name](total_steps)
    return lambda count: alpha * unit(count)


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


# name -> make(alpha, wd, total_steps) -> (GradientTransformation, schedule)
OPTIMIZER_BASELINES: dict[str, Callable] = {
    **{name: adamw_with_schedule(name) for name in UNIT_SCHEDULES},
    "lamb_cosine": lamb_cosine,
    "lion": lion,
}
