"""A toy multi-agent env following the GANNO env protocol, for testing the learner alone.

Each agent sees a one-hot context and is rewarded (team mean) for choosing the action equal to it,
so the best action depends on the observation; the optimal return per step is 1.0, a uniformly
random policy gets 1/num_actions.
"""

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ToyState:
    context: jax.Array  # (num_agents,) int32
    t: jax.Array  # ()


class MatchEnv:
    num_actions = 4

    def __init__(self, num_agents=2, episode_length=8):
        self._n = num_agents
        self.episode_length = episode_length
        self.obs_names = tuple(f"context_{i}" for i in range(self.num_actions))

    def num_agents(self, params=None):
        return self._n

    @property
    def obs_dim(self):
        return self.num_actions

    @property
    def obs_layout(self):
        return {"version": 0, "names": list(self.obs_names)}

    def _obs(self, s):
        return jax.nn.one_hot(s.context, self.num_actions)

    def reset(self, key, params):
        s = ToyState(jax.random.randint(key, (self._n,), 0, self.num_actions), jnp.zeros((), jnp.int32))
        return self._obs(s), s

    def step(self, key, state, actions, params):
        reward = jnp.mean((actions == state.context).astype(jnp.float32))
        t = state.t + 1
        done = t >= self.episode_length
        nxt = ToyState(jax.random.randint(key, (self._n,), 0, self.num_actions), jnp.where(done, 0, t))
        info = {"lrs": jnp.zeros(self._n), "val_accuracy": reward, "diverged": jnp.zeros((), bool), "t": t}
        return self._obs(nxt), nxt, reward, done, info


@struct.dataclass
class CueState:
    cue: jax.Array  # (num_agents,) int32, shown at t = 0 only
    t: jax.Array  # ()


class CueEnv:
    """A memory task: each agent sees a cue only at an episode's first step and is rewarded (team
    mean) at the last step for recalling it. A policy without memory gets 1/num_actions per
    episode; one that carries the cue in its GRU state gets 1. Episodes of `episode_length` steps
    end inside recurrent chunks unless the chunk length divides it."""

    num_actions = 4

    def __init__(self, num_agents=2, episode_length=3):
        self._n = num_agents
        self.episode_length = episode_length
        self.obs_names = tuple(f"cue_{i}" for i in range(self.num_actions)) + ("first", "last")

    def num_agents(self, params=None):
        return self._n

    @property
    def obs_dim(self):
        return len(self.obs_names)

    @property
    def obs_layout(self):
        return {"version": 0, "names": list(self.obs_names)}

    def _obs(self, s):
        first = s.t == 0
        cue = jax.nn.one_hot(s.cue, self.num_actions) * first
        flags = jnp.stack([first, s.t == self.episode_length - 1]).astype(jnp.float32)
        return jnp.concatenate([cue, jnp.broadcast_to(flags, (self._n, 2))], axis=1)

    def reset(self, key, params):
        s = CueState(jax.random.randint(key, (self._n,), 0, self.num_actions), jnp.zeros((), jnp.int32))
        return self._obs(s), s

    def step(self, key, state, actions, params):
        t = state.t + 1
        done = t >= self.episode_length
        reward = jnp.where(done, jnp.mean((actions == state.cue).astype(jnp.float32)), 0.0)
        new_obs, new = self.reset(key, params)
        nxt = jax.tree.map(lambda a, b: jnp.where(done, a, b), new, CueState(state.cue, t))
        return jnp.where(done, new_obs, self._obs(nxt)), nxt, reward, done, {}


class RecallEnv(CueEnv):
    """A memory task: the cue is shown at t = 0 only and every later step rewards
    (team mean) recalling it, so a solved policy earns 1.0 per step and its advantages carry only
    the critic's error (a feed-forward critic cannot tell the middle steps apart)."""

    def step(self, key, state, actions, params):
        t = state.t + 1
        done = t >= self.episode_length
        reward = jnp.mean((actions == state.cue).astype(jnp.float32))
        new_obs, new = self.reset(key, params)
        nxt = jax.tree.map(lambda a, b: jnp.where(done, a, b), new, CueState(state.cue, t))
        return jnp.where(done, new_obs, self._obs(nxt)), nxt, reward, done, {}
