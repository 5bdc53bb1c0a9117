"""Controllers: anything that picks the agents' LR actions during an inner training run.

A controller is a pair of pure functions over an explicit carry (like an optax transform):
  init(num_agents) -> carry
  act(carry, obs (num_agents, obs_dim), key) -> (carry, actions (num_agents,) int32)
A trained GANNO policy works for any number of agents: agents are rows of one batch.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from ganno_jax.agent import normalizer
from ganno_jax.agent.networks import GRU_SIZE, Actor
from ganno_jax.env.actions import NOOP


class Controller(NamedTuple):
    name: str
    init: Callable[[int], Any]
    act: Callable[[Any, jax.Array, jax.Array], tuple[Any, jax.Array]]


def policy_controller(agent, num_actions: int, greedy: bool = False, name: str = "ganno") -> Controller:
    """A trained recurrent policy (AgentState from a checkpoint); greedy takes the mode."""
    actor = Actor(num_actions)

    def init(num_agents: int):
        return jnp.zeros((num_agents, GRU_SIZE)), jnp.ones((), bool)

    def act(carry, obs, key):
        hidden, first = carry
        obs_n = normalizer.normalize(agent.obs_stats, obs)
        resets = jnp.broadcast_to(first, (1, obs.shape[0]))
        hidden, dist = actor.apply(agent.actor_params, hidden, obs_n[None], resets)
        action = dist.mode()[0] if greedy else dist.sample(seed=key)[0]
        return (hidden, jnp.zeros((), bool)), action.astype(jnp.int32)

    return Controller(name, init, act)


def random_controller(num_actions: int) -> Controller:
    """Uniformly random actions for every agent (the paper's random agent)."""
    return Controller(
        "random", lambda n: jnp.int32(n),
        lambda carry, obs, key: (carry, jax.random.randint(key, (obs.shape[0],), 0, num_actions)))


def constant_controller() -> Controller:
    """Always the no-op: the initial learning rate stays constant."""
    return Controller("constant", lambda n: jnp.int32(n),
                      lambda carry, obs, key: (carry, jnp.full((obs.shape[0],), NOOP, jnp.int32)))
