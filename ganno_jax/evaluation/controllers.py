"""Controllers: everything that sets learning rates during an inner training run.

One interface, two ways of acting (a `Controller` fills exactly one):
  - per env step, as agents: pure functions over an explicit carry (like an optax transform)
      init(num_agents) -> carry
      act(carry, obs (num_agents, obs_dim), key) -> (carry, actions (num_agents,) int32)
    A trained GANNO policy works for any number of agents: agents are rows of one batch.
  - per inner step, as an optax optimiser with its own schedule
      optimizer(alpha, weight_decay, total_steps) -> (GradientTransformation, schedule)
    optionally told each validation loss (`observe`, every tau steps: reduce-on-plateau) and
    scored at other parameters than it trains (`eval_params`: schedule-free's averaged point).
`METHODS` maps every evaluation method name to a factory of its controller; presets added later
register here (`register`) and the evaluator picks them up unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ganno_jax.deploy.policy import Policy, act, init_carry
from ganno_jax.env.actions import NOOP
from ganno_jax.errors import UserInputError
from ganno_jax.evaluation import baselines
from ganno_jax.trainer.config import AGENT_PRESETS


class Controller(NamedTuple):
    name: str
    init: Callable[[int], Any] | None = None
    act: Callable[[Any, jax.Array, jax.Array], tuple[Any, jax.Array]] | None = None
    optimizer: Callable[..., tuple[optax.GradientTransformation, Callable]] | None = None
    observe: Callable[[Any, jax.Array], Any] | None = None  # (opt_state, val_loss) -> opt_state
    eval_params: Callable[[Any, Any], Any] | None = None  # (opt_state, params) -> params to score
    lr_scale: Callable[[Any], jax.Array] | None = None  # opt_state -> multiplier of the schedule's LR

    @property
    def per_inner_step(self) -> bool:
        """True for optax-optimiser baselines (LR set every inner step), False for agents."""
        return self.optimizer is not None


def policy_controller(policy: Policy, greedy: bool = False, name: str = "ganno") -> Controller:
    """A trained recurrent policy (`ganno_jax.load_policy`); greedy takes the mode."""
    return Controller(name, init_carry, lambda carry, obs, key: act(policy, carry, obs, key, greedy))


def random_controller(num_actions: int) -> Controller:
    """Uniformly random actions for every agent (the paper's random agent)."""
    return Controller(
        "random", lambda n: jnp.int32(n),
        lambda carry, obs, key: (carry, jax.random.randint(key, (obs.shape[0],), 0, num_actions)))


def constant_controller() -> Controller:
    """Always the no-op: the initial learning rate stays constant."""
    return Controller("constant", lambda n: jnp.int32(n),
                      lambda carry, obs, key: (carry, jnp.full((obs.shape[0],), NOOP, jnp.int32)))


@dataclasses.dataclass
class MethodContext:
    """What a method factory may use: the env and, for checkpoint-based methods, the agent."""

    num_actions: int
    policy: Any = None  # the Policy loaded from --ckpt; None when none was given
    greedy: bool = False


def _trained(name: str) -> Callable[[MethodContext], Controller]:
    """The factory of a trained agent preset's policy (loaded from --ckpt)."""

    def factory(ctx: MethodContext) -> Controller:
        if ctx.policy is None:
            raise UserInputError(f"method {name!r} needs --ckpt RUN_OR_CHECKPOINT")
        return policy_controller(ctx.policy, ctx.greedy, name=name)

    return factory


# Method name -> factory(MethodContext) -> Controller, in the order tables list them.
METHODS: dict[str, Callable[[MethodContext], Controller]] = {
    **{name: _trained(name) for name in AGENT_PRESETS},
    "random": lambda ctx: random_controller(ctx.num_actions),
    "constant": lambda ctx: constant_controller(),
}
NEEDS_CHECKPOINT = set(AGENT_PRESETS)  # trained agents: every agent preset of the trainer


def register(name: str, factory: Callable[[MethodContext], Controller], needs_checkpoint=False):
    """Adds an evaluation method (e.g. an agent preset) under `name`."""
    METHODS[name] = factory
    if needs_checkpoint:
        NEEDS_CHECKPOINT.add(name)


_HOOKS = {"plateau": {"observe": baselines.plateau_observe, "lr_scale": baselines.plateau_scale},
          "schedule_free": {"eval_params": optax.contrib.schedule_free_eval_params},
          "dog": {"eval_params": baselines.averaged_params}}
for _name, _make in baselines.OPTIMIZER_BASELINES.items():
    register(_name, lambda ctx, n=_name, m=_make: Controller(n, optimizer=m, **_HOOKS.get(n, {})))
# Methods that ignore the initial LR: evaluation runs them once per (weight decay, seed).
LR_FREE_METHODS = frozenset(baselines.LR_FREE)
