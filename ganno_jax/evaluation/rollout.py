"""One inner training run under a controller, for evaluation (deployment: no no-op branch)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from ganno_jax.evaluation.controllers import Controller


@struct.dataclass
class EpisodeResult:
    lrs: jax.Array  # (T, num_agents) learning rates in force during each env step
    val_accuracy: jax.Array  # (T,) on the step's validation subset
    train_loss: jax.Array  # (T,)
    final_val_accuracy: jax.Array  # () on the whole validation split
    test_accuracy: jax.Array  # () on the official test split
    test_loss: jax.Array  # ()
    diverged: jax.Array  # () bool: the run became non-finite at some step


def make_rollout(env, controller: Controller):
    """`rollout(key, params) -> EpisodeResult` over one episode of `env.config.episode_length` steps.

    Uses `env.step_env` (no auto-reset) so the network at the end of the run is the one tested.
    A run that diverges reports chance accuracy from then on (its network is non-finite).
    """
    num_steps = env.config.episode_length
    chance = 1.0 / env.task.num_classes

    def rollout(key: jax.Array, params) -> EpisodeResult:
        reset_key, run_key = jax.random.split(key)
        obs, state = env.reset(reset_key, params)
        carry = controller.init(env.num_agents(params))

        def body(c, step_key):
            obs, state, carry, diverged = c
            act_key, env_key = jax.random.split(step_key)
            carry, actions = controller.act(carry, obs, act_key)
            obs, state, _, _, info = env.step_env(env_key, state, actions, params)
            diverged = diverged | info["diverged"]
            out = (info["lrs"], jnp.where(diverged, chance, info["val_accuracy"]), info["train_loss"])
            return (obs, state, carry, diverged), out

        (_, state, _, diverged), (lrs, val_acc, train_loss) = jax.lax.scan(
            body, (obs, state, carry, jnp.zeros((), bool)), jax.random.split(run_key, num_steps))
        data = params.data
        val = env.task.evaluate(state.inner, data.x_val, data.y_val)
        test = env.task.evaluate(state.inner, data.x_test, data.y_test)
        return EpisodeResult(
            lrs, val_acc, train_loss,
            jnp.where(diverged, chance, val.accuracy),
            jnp.where(diverged, chance, test.accuracy),
            jnp.where(diverged, jnp.inf, test.loss),
            diverged)

    return rollout
