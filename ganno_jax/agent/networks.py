"""Shared recurrent actor and feed-forward critic (SPEC §4).

Actor: obs → Dense 128 → Dense 128 → GRU 64 → Dense 64 → 9 logits (`distrax.Categorical`).
Critic: obs → Dense 64 → Dense 64 → 1, on the agent's own observation (`critic="independent"`,
IPPO) or, with `critic="central"` (MAPPO-style), on the agent's observation followed by the mean and
the max over all agents of the env: a summary of fixed size for any number of agents, so the
critic generalises across depth as the policy does. The policy is unchanged either way.
There is no agent-id input, so a policy trained with 2 agents runs on any number: agents are
simply more rows of the batch. Shapes: time-major, (T, B, ...), B = envs × agents.
"""

from __future__ import annotations

import functools

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

GRU_SIZE = 64


class ScannedGRU(nn.Module):
    """A GRU scanned over time whose carry is reset to zeros where an episode starts."""

    hidden_size: int = GRU_SIZE

    @functools.partial(
        nn.scan, variable_broadcast="params", in_axes=0, out_axes=0, split_rngs={"params": False}
    )
    @nn.compact
    def __call__(self, carry: jax.Array, xs: tuple[jax.Array, jax.Array]):
        """carry (B, H); xs = (inputs (T, B, D), resets (T, B) bool) → (carry, outputs (T, B, H))."""
        inputs, reset = xs
        carry = jnp.where(reset[:, None], jnp.zeros_like(carry), carry)
        return nn.GRUCell(self.hidden_size)(carry, inputs)


class Actor(nn.Module):
    """Recurrent policy shared by all agents."""

    num_actions: int = 9

    @nn.compact
    def __call__(self, hidden: jax.Array, obs: jax.Array, resets: jax.Array):
        """hidden (B, 64); obs (T, B, D); resets (T, B) → (hidden, Categorical over (T, B))."""
        x = nn.relu(nn.Dense(128)(obs))
        x = nn.relu(nn.Dense(128)(x))
        hidden, x = ScannedGRU()(hidden, (x, resets))
        x = nn.relu(nn.Dense(64)(x))
        logits = nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(0.01))(x)
        return hidden, distrax.Categorical(logits=logits)


class Critic(nn.Module):
    """Value of one agent's observation (normalised value-target scale)."""

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = nn.relu(nn.Dense(64)(obs))
        x = nn.relu(nn.Dense(64)(x))
        return nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))(x)[..., 0]


CRITICS = ("independent", "central")


def critic_features(obs: jax.Array, critic: str) -> jax.Array:
    """The critic's input for each agent.

    Args:
      obs: (..., num_agents, obs_dim) normalised observations of one env (leading axes: envs, time).
      critic: "independent" (own observation) or "central" (own, mean over agents, max over agents).

    Returns:
      (..., num_agents, obs_dim) or (..., num_agents, 3 · obs_dim).
    """
    if critic == "independent":
        return obs
    if critic == "central":
        summary = jnp.concatenate([obs.mean(-2, keepdims=True), obs.max(-2, keepdims=True)], -1)
        return jnp.concatenate([obs, jnp.broadcast_to(summary, obs.shape[:-1] + summary.shape[-1:])], -1)
    raise ValueError(f"unknown critic {critic!r}; known: {', '.join(CRITICS)}")


def critic_input_dim(obs_dim: int, critic: str) -> int:
    return obs_dim if critic == "independent" else 3 * obs_dim
