"""Behaviour cloning of the shared recurrent policy on demonstrations (`pretrain=bc`).

The paper's remedy for missing foresight (§6): show the agents handcrafted schedules first. The
actor is trained by cross-entropy on the demonstrated actions, over whole demonstration episodes
as recurrent sequences (GRU reset at each episode's start), with the observation normaliser fitted
on the demonstrations' observations; PPO then continues from it (the critic starts fresh).
Steps after a demonstration diverged are masked out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganno_jax.agent import normalizer
from ganno_jax.agent.networks import GRU_SIZE, Actor


def sequences(demos: list[dict]) -> dict:
    """Demonstrations as time-major sequences: obs (T, S, D), actions (T, S), mask (T, S) with
    S = episodes × agents over all demos (each column one agent's episode)."""
    def cols(x):  # (E, T, A, ...) -> (T, E*A, ...)
        x = np.swapaxes(x, 0, 1)
        return x.reshape(x.shape[:1] + (-1,) + x.shape[3:])

    obs = np.concatenate([cols(d["obs"]) for d in demos], axis=1)
    actions = np.concatenate([cols(d["actions"]) for d in demos], axis=1)
    # A step counts if no earlier step of its episode ended it (a divergence ends it early).
    alive = [np.concatenate([np.ones_like(d["dones"][:, :1]), 1 - np.cumsum(d["dones"], 1)[:, :-1].clip(0, 1)], 1)
             for d in demos]
    mask = np.concatenate([cols(np.repeat(a[..., None], d["actions"].shape[2], 2)) for a, d in zip(alive, demos)], 1)
    return {"obs": obs.astype(np.float32), "actions": actions.astype(np.int32), "mask": mask.astype(np.float32)}


def bc_loss(actor: Actor, actor_params, obs_n: jax.Array, actions: jax.Array, mask: jax.Array):
    """Masked mean cross-entropy of the actor on whole episodes (reset at t = 0) and the accuracy
    of its most likely action. obs_n (T, S, D) normalised, actions and mask (T, S)."""
    resets = jnp.zeros(actions.shape, bool).at[0].set(True)
    _, dist = actor.apply(actor_params, jnp.zeros((actions.shape[1], GRU_SIZE)), obs_n, resets)
    total = jnp.maximum(mask.sum(), 1.0)
    ce = -(dist.log_prob(actions) * mask).sum() / total
    acc = ((dist.mode() == actions) * mask).sum() / total
    return ce, acc


def behaviour_clone(agent, demos: list[dict], num_actions: int, key: jax.Array, epochs: int,
                    lr: float, num_minibatches: int = 4):
    """Returns (agent with the cloned actor and the demos' observation statistics, history).

    Args:
      agent: a fresh trainer AgentState (its critic and optimiser state are kept as they are).
      demos: dicts from `demos.generate`/`demos.load`.
      num_actions: the action set's size.
      key: shuffles the sequences each epoch.
      epochs: passes over the demonstrations.
      lr: Adam learning rate of the cloning.
      num_minibatches: sequences per epoch are split into this many Adam steps.

    Returns:
      (AgentState, {"loss": (epochs,), "accuracy": (epochs,)}) per-epoch means.
    """
    seq = sequences(demos)
    obs_stats = normalizer.update_stats(agent.obs_stats, jnp.asarray(seq["obs"]).reshape(-1, seq["obs"].shape[-1]))
    obs_n = normalizer.normalize(obs_stats, jnp.asarray(seq["obs"]))
    actions, mask = jnp.asarray(seq["actions"]), jnp.asarray(seq["mask"])
    actor = Actor(num_actions)
    tx = optax.adam(lr)
    n = actions.shape[1]
    per = max(1, n // num_minibatches)
    grad_fn = jax.value_and_grad(lambda p, o, a, m: bc_loss(actor, p, o, a, m), has_aux=True)

    def epoch(carry, k):
        params, opt_state = carry
        perm = jax.random.permutation(k, n)[: per * num_minibatches].reshape(num_minibatches, per)

        def step(carry, idx):
            params, opt_state = carry
            (loss, acc), g = grad_fn(params, obs_n[:, idx], actions[:, idx], mask[:, idx])
            updates, opt_state = tx.update(g, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), (loss, acc)

        carry, (loss, acc) = jax.lax.scan(step, (params, opt_state), perm)
        return carry, (loss.mean(), acc.mean())

    run = jax.jit(lambda p, keys: jax.lax.scan(epoch, (p, tx.init(p)), keys))
    (params, _), (losses, accs) = run(agent.actor_params, jax.random.split(key, epochs))
    return agent.replace(actor_params=params, obs_stats=obs_stats), {"loss": np.asarray(losses),
                                                                   "accuracy": np.asarray(accs)}
