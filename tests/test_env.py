"""The GANNO environment: API, actions, observations, difference reward, divergence, tracing."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ganno_jax
from ganno_jax.env import observations
from ganno_jax.env.actions import ACTIONS, NUM_ACTIONS, apply_actions
from ganno_jax.errors import UserInputError
from ganno_jax.inner.models import CNN5
from ganno_jax.inner.task import TaskData


def _data(n=640, shape=(12, 12, 1)):
    x = jax.random.normal(jax.random.PRNGKey(0), (n, *shape))
    y = (jnp.arange(n) % 10).astype(jnp.int32)
    x = x.at[:, 0, 0, 0].add(y.astype(jnp.float32))  # a learnable signal
    return TaskData(x, y, x[:200], y[:200], x[:100], y[:100])


@pytest.fixture(scope="module")
def cnn2_env():
    from ganno_jax.inner.models import CNN2
    return ganno_jax.make_env(CNN2(), _data(), tau=3, episode_length=4, n_val=64, batch_size=32,
                              reward="difference_accuracy", noop_branch=True)


def test_each_action_changes_its_own_layer_as_the_table_says():
    lrs = jnp.full((NUM_ACTIONS,), 0.01)
    new = apply_actions(lrs, jnp.arange(NUM_ACTIONS), lr_max=0.1)
    expected = [0.01 * m + a for _, m, a in ACTIONS]
    np.testing.assert_allclose(new, expected, rtol=1e-6)
    # Clipping to [0, lr_max], and the no-op keeps its value bit for bit.
    np.testing.assert_allclose(apply_actions(jnp.array([3e-4, 0.0999]), jnp.array([8, 2]), 0.1),
                               [0.0, 0.1])
    assert apply_actions(jnp.array([0.0123]), jnp.array([0]), 0.1)[0] == jnp.float32(0.0123)


def test_api_shapes_and_info(cnn2_env):
    env, params = cnn2_env
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert env.num_agents(params) == 2 and env.num_actions == 9
    assert obs.shape == (2, env.obs_dim) and len(env.obs_names) == env.obs_dim
    obs2, state2, reward, done, info = env.step(jax.random.PRNGKey(1), state, jnp.array([1, 4]), params)
    assert obs2.shape == obs.shape and reward.shape == () and done.shape == ()
    for k in ("lrs", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "diverged"):
        assert k in info
    lr0 = float(state.init_lr)
    np.testing.assert_allclose(info["lrs"], [lr0 * 1.01, lr0 / 1.10], rtol=1e-6)
    assert 1e-5 <= lr0 <= 1e-2 and 1e-5 <= float(state.weight_decay) <= 1e-1


def test_observation_one_hots_for_cnn2_and_cnn5():
    for model, n, types, depths in [
        (None, 2, ["conv", "linear"], ["first", "final"]),
        (CNN5(), 5, ["conv"] * 3 + ["linear"] * 2, ["first"] + ["intermediate"] * 3 + ["final"]),
    ]:
        from ganno_jax.inner.models import CNN2
        env, params = ganno_jax.make_env(model or CNN2(), _data(), tau=2, episode_length=2, n_val=32,
                                         batch_size=32)
        obs, _ = env.reset(jax.random.PRNGKey(0), params)
        assert obs.shape == (n, len(observations.OBS_SETS["full"])) == (n, env.obs_dim) == (n, 31)
        col = lambda name: np.asarray(obs[:, env.obs_names.index(name)])  # noqa: E731
        for i in range(n):
            assert col(f"layer_type_{types[i]}")[i] == 1 and col(f"depth_{depths[i]}")[i] == 1
        assert sum(col(f"layer_type_{k}").sum() for k in ("linear", "conv", "attention")) == n
        np.testing.assert_array_equal(col("prev_action_0"), 1)  # no-op after a reset
        # Global features are the same for every agent.
        np.testing.assert_array_equal(col("log10_init_lr"), col("log10_init_lr")[0])


def test_joint_noop_gives_exactly_zero_reward(cnn2_env):
    env, params = cnn2_env
    _, state = env.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(env.step)
    for i in range(3):
        _, state, reward, _, info = step(jax.random.PRNGKey(i), state, jnp.zeros(2, jnp.int32), params)
        assert float(reward) == 0.0
        assert float(info["val_accuracy"]) == float(info["noop_val_accuracy"])


def test_forced_divergence_is_flagged_finite_and_resets():
    from ganno_jax.inner.models import CNN2
    env, params = ganno_jax.make_env(CNN2(), _data(), tau=3, episode_length=10, n_val=64, batch_size=32,
                                     reward="difference_accuracy", noop_branch=True, lr_max=1e30, init_lr_low=1e30, init_lr_high=1e30)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    big = jnp.full(2, 2, jnp.int32)
    for i in range(4):
        obs, state, reward, done, info = env.step(jax.random.PRNGKey(i), state, big, params)
        assert np.all(np.isfinite(obs)) and np.isfinite(float(reward))
        if bool(info["diverged"]):
            break
    assert bool(info["diverged"]) and bool(done)
    # Divergence reward: minus the no-op branch's accuracy.
    np.testing.assert_allclose(float(reward), -float(info["noop_val_accuracy"]))
    # Auto-reset: a fresh episode with finite parameters and the step counter at 0.
    assert int(state.t) == 0
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.inner.params))
    np.testing.assert_array_equal(obs[:, env.obs_names.index("nonfinite_flag")], 0)


def test_episode_ends_after_T_steps_and_resets(cnn2_env):
    env, params = cnn2_env
    _, state = env.reset(jax.random.PRNGKey(0), params)
    dones = []
    for i in range(5):
        _, state, _, done, info = env.step(jax.random.PRNGKey(i), state, jnp.zeros(2, jnp.int32), params)
        dones.append(bool(done))
    assert dones == [False, False, False, True, False] and int(state.t) == 1


def test_vmap_jit_single_trace_and_determinism(cnn2_env):
    env, params = cnn2_env
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    obs, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    assert obs.shape == (4, 2, env.obs_dim)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(keys, states, actions):
        return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, states, actions, params)

    actions = jax.random.randint(jax.random.PRNGKey(1), (4, 2), 0, 9)
    a = step(keys, states, actions)
    b = step(keys, states, actions)  # same key, same result, no retrace
    step(keys, a[1], actions)
    chex.assert_trees_all_equal(a, b)
    assert a[2].shape == (4,) and a[3].shape == (4,)
    # Initial conditions differ between copies (sampled per reset).
    assert len(set(np.asarray(states.init_lr).tolist())) == 4


def test_deployment_defaults_need_no_counterfactual():
    """make_env's defaults are a deployment env: no no-op branch, plain accuracy reward."""
    from ganno_jax.inner.models import CNN2
    env, params = ganno_jax.make_env(CNN2(), _data(), tau=2, episode_length=3, n_val=64, batch_size=32)
    assert not env.config.noop_branch and env.config.reward == "accuracy"
    _, state = env.reset(jax.random.PRNGKey(0), params)
    _, _, reward, _, info = env.step(jax.random.PRNGKey(1), state, jnp.array([1, 2]), params)
    assert float(reward) == float(info["val_accuracy"]) > 0


def test_fixed_initial_conditions_including_zero():
    from ganno_jax.inner.models import CNN2
    env, params = ganno_jax.make_env(CNN2(), _data(), tau=2, episode_length=3, n_val=64, batch_size=32,
                                     init_lr_low=0.0, init_lr_high=0.0, wd_low=0.1, wd_high=0.1)
    _, state = env.reset(jax.random.PRNGKey(3), params)
    assert float(state.init_lr) == 0.0 and float(state.weight_decay) == pytest.approx(0.1)


@pytest.mark.parametrize("kwargs", [{"tau": 0}, {"reward": "nope"}, {"obs_set": "x"}, {"bogus": 1},
                                    {"init_lr_low": 1e-2, "init_lr_high": 1e-3},
                                    {"batch_size": 600}, {"tau": 100}, {"reward": "difference_accuracy"},
                                    {"lr_min": 0.2}, {"action_set": "nope"}])
def test_bad_options_are_user_errors(kwargs):
    from ganno_jax.inner.models import CNN2
    with pytest.raises(UserInputError):
        ganno_jax.make_env(CNN2(), _data(), **kwargs)


def test_unknown_env_id():
    with pytest.raises(UserInputError, match="unknown env"):
        ganno_jax.make("cnn9_imagenet")


def test_obs_sets_select_named_columns():
    from ganno_jax.inner.models import CNN2
    env, params = ganno_jax.make_env(CNN2(), _data(), tau=2, episode_length=3, n_val=64, batch_size=32,
                                     obs_set="lr_only")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert env.obs_names == ("log10_lr",) and obs.shape == (2, 1)
    np.testing.assert_allclose(obs[:, 0], np.log10(float(state.init_lr)), rtol=1e-5)


@pytest.mark.slow  # the real-data path; ~20 s
def test_real_cnn2_fmnist_env(real_data):
    # The paper's difference reward: a joint no-op ties its own no-op branch exactly on real data.
    env, params = ganno_jax.make("cnn2_fmnist", tau=2, episode_length=2, n_val=128,
                                 reward="difference_accuracy", noop_branch=True)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (2, 31) and params.data.x_train.shape == (50_000, 28, 28, 1)
    obs, state, r, d, info = jax.jit(env.step)(jax.random.PRNGKey(1), state, jnp.zeros(2, jnp.int32), params)
    assert float(r) == 0.0 and np.all(np.isfinite(obs))
