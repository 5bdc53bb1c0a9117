"""Agent presets (SPEC §6): the ablations and the single agent are configuration of one framework."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ganno_jax
from ganno_jax.env.observations import GLOBAL_FEATURES
from ganno_jax.errors import UserInputError
from ganno_jax.inner import optim
from ganno_jax.inner.models import CNN5
from ganno_jax.inner.task import TaskData
from ganno_jax.trainer.config import make_config


def _data(n=640, shape=(12, 12, 1)):
    x = jax.random.normal(jax.random.PRNGKey(0), (n, *shape))
    y = (jnp.arange(n) % 10).astype(jnp.int32)
    return TaskData(x, y, x[:200], y[:200], x[:100], y[:100])


def _env(**overrides):
    env, params = ganno_jax.make_env(CNN5(), _data(), tau=2, episode_length=4, n_val=64, batch_size=32,
                                     **overrides)
    return env, params.replace(init_lr_low=jnp.float32(1e-3), init_lr_high=jnp.float32(1e-3))


def test_presets_set_their_config_fields():
    assert make_config("smoke", "cnn2_fmnist", agent="ganno-lr-only").obs_set == "lr_only"
    assert make_config("smoke", "cnn2_fmnist", agent="ganno-timestep-only").obs_set == "progress_only"
    single = make_config("smoke", "cnn2_fmnist", agent="ganno-single-agent")
    assert single.obs_set == "global_only" and single.global_lr is True
    assert make_config("smoke", "cnn2_fmnist", {"global_lr": "false"}, agent="ganno-single-agent").global_lr is False
    with pytest.raises(UserInputError, match="not a valid bool"):
        make_config("smoke", "cnn2_fmnist", {"global_lr": "maybe"})
    with pytest.raises(UserInputError, match="unknown agent"):
        make_config("smoke", "cnn2_fmnist", agent="velo")


def test_single_agent_sets_one_global_lr_for_every_layer():
    env, params = _env(obs_set="global_only", global_lr=True)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert env.num_agents() == 1 and obs.shape == (1, len(GLOBAL_FEATURES))
    obs, state, _, _, info = env.step(jax.random.PRNGKey(1), state, jnp.array([2]), params)  # ×1.10
    np.testing.assert_allclose(optim.get_learning_rates(state.inner.opt_state), [1.1e-3] * 5, rtol=1e-6)
    np.testing.assert_allclose(info["lrs"], [1.1e-3] * 5, rtol=1e-6)
    _, state, _, _, _ = env.step(jax.random.PRNGKey(2), state, jnp.array([7]), params)  # +1e-3
    np.testing.assert_allclose(optim.get_learning_rates(state.inner.opt_state), [2.1e-3] * 5, rtol=1e-6)
    assert state.prev_action.shape == (1,) and int(state.prev_action[0]) == 7


def test_lr_only_and_timestep_only_observations_by_hand():
    env, params = _env(obs_set="lr_only")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    np.testing.assert_allclose(obs, np.full((5, 1), np.log10(1e-3)), rtol=1e-6)
    obs, state, _, _, _ = env.step(jax.random.PRNGKey(1), state, jnp.array([2, 0, 4, 5, 8]), params)
    expected = np.log10([1.1e-3, 1e-3, 1e-3 / 1.1, 1.5e-3, 0.0 + 1e-10])  # −1e-3 clips to 0 → floor
    np.testing.assert_allclose(obs[:, 0], expected, rtol=1e-5)
    env, params = _env(obs_set="progress_only")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    np.testing.assert_array_equal(obs, np.zeros((5, 1)))
    for t in (1, 2, 3):
        obs, state, _, _, _ = env.step(jax.random.PRNGKey(t), state, jnp.zeros(5, jnp.int32), params)
        np.testing.assert_allclose(obs, np.full((5, 1), t / 4))
