"""Learning-rate schedules with peak (or initial) value α over N inner steps, as optax schedules.

α is a traced array when a grid of initial LRs is vmapped, and some optax constructors branch on
their values in Python; all of these schedules are linear in α, so each is built once with α = 1
and scaled: `lr(step) = α · unit(step)` (the tests check this equals the optax function built with
α). Used by the evaluation baselines (`ganno_jax.evaluation.baselines`, which documents each
schedule's constants) and by the trainer's demonstrations (`ganno_jax.trainer.demos`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

Schedule = Callable[[jax.Array], jax.Array]


def _sgdr(n: int) -> Schedule:
    first, second = n // 7, 2 * n // 7
    cycles = [first, second, n - first - second]
    return optax.sgdr_schedule([dict(init_value=1.0, peak_value=1.0, warmup_steps=0, decay_steps=c)
                                for c in cycles])


def _wsd(n: int) -> Schedule:
    warm, cool = max(1, n // 20), max(1, n // 5)
    stable = n - warm - cool
    cooldown = lambda count: 1.0 - jnp.sqrt(jnp.clip(count / cool, 0.0, 1.0))  # noqa: E731
    return optax.join_schedules([optax.linear_schedule(0.0, 1.0, warm), optax.constant_schedule(1.0), cooldown],
                                [warm, warm + stable])


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
    "wsd": _wsd,
}


def schedule(name: str, alpha: jax.Array, total_steps: int) -> Schedule:
    """The named schedule with peak `alpha` over `total_steps` inner steps."""
    unit = UNIT_SCHEDULES[name](total_steps)
    return lambda count: alpha * unit(count)
