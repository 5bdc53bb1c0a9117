"""Agent presets (SPEC §6): the ablations and the single agent are configuration of one framework."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ganno_jax
from ganno_jax.env.observations import GLOBAL_FEATURES
from ganno_jax.errors import UserInputError
from ganno_jax.inner import optim
from ganno_jax.inner.models import MLP
from ganno_jax.inner.task import TaskData
from ganno_jax.trainer.config import make_config


def _data(n=640, shape=(12, 12, 1)):
    x = jax.random.normal(jax.random.PRNGKey(0), (n, *shape))
    y = (jnp.arange(n) % 10).astype(jnp.int32)
    return TaskData(x, y, x[:200], y[:200], x[:100], y[:100])


class _Jitted:
    """The env with jitted reset/step (one compile each instead of op-by-op dispatch)."""

    def __init__(self, env):
        self.env, self.reset, self.step = env, jax.jit(env.reset), jax.jit(env.step)

    def __getattr__(self, name):
        return getattr(self.env, name)


def _env(**overrides):
    """A 3-layer MLP (the cheapest model to compile) at init LR 1e-3."""
    env, params = ganno_jax.make_env(MLP(), _data(), tau=2, episode_length=4, n_val=64, batch_size=32,
                                     **overrides)
    return _Jitted(env), params.replace(init_lr_low=jnp.float32(1e-3), init_lr_high=jnp.float32(1e-3))


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
    np.testing.assert_allclose(optim.get_learning_rates(state.inner.opt_state), [1.1e-3] * 3, rtol=1e-6)
    np.testing.assert_allclose(info["lrs"], [1.1e-3] * 3, rtol=1e-6)
    _, state, _, _, _ = env.step(jax.random.PRNGKey(2), state, jnp.array([7]), params)  # +1e-3
    np.testing.assert_allclose(optim.get_learning_rates(state.inner.opt_state), [2.1e-3] * 3, rtol=1e-6)
    assert state.prev_action.shape == (1,) and int(state.prev_action[0]) == 7


def test_lr_only_and_timestep_only_observations_by_hand():
    env, params = _env(obs_set="lr_only")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    np.testing.assert_allclose(obs, np.full((3, 1), np.log10(1e-3)), rtol=1e-6)
    obs, state, _, _, _ = env.step(jax.random.PRNGKey(1), state, jnp.array([2, 4, 8]), params)
    expected = np.log10([1.1e-3, 1e-3 / 1.1, 0.0 + 1e-10])  # −1e-3 clips to 0 → the log floor
    np.testing.assert_allclose(obs[:, 0], expected, rtol=1e-5)
    env, params = _env(obs_set="progress_only")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    np.testing.assert_array_equal(obs, np.zeros((3, 1)))
    for t in (1, 2, 3):
        obs, state, _, _, _ = env.step(jax.random.PRNGKey(t), state, jnp.zeros(3, jnp.int32), params)
        np.testing.assert_allclose(obs, np.full((3, 1), t / 4))


def test_seed_presets_set_their_config_fields():
    xu = make_config("smoke", "cnn2_fmnist", agent="xu2019")
    assert (xu.obs_set, xu.action_set, xu.reward, xu.global_lr) == ("xu2019", "scale", "neg_val_loss", True)
    sub = make_config("smoke", "cnn2_fmnist", agent="subramanian2023")
    assert (sub.inner_optimizer, sub.action_set, sub.reward, sub.lr_max) == ("sgd", "absolute", "subramanian2023", 1.0)
    assert not sub.env_overrides()["noop_branch"] and not xu.env_overrides()["noop_branch"]


def test_subramanian_reward_and_divergence_penalty_by_hand():
    from ganno_jax.env.rewards import Outcome, subramanian2023

    def outcome(val_loss, diverged, u=0.25):
        return Outcome(val_accuracy=jnp.float32(0.5), val_loss=jnp.float32(val_loss),
                       noop_val_accuracy=jnp.float32(0.5), noop_val_loss=jnp.float32(val_loss),
                       diverged=jnp.bool_(diverged), best_val_loss=jnp.float32(0.5), t=jnp.int32(3),
                       episode_length=jnp.float32(10), u=jnp.float32(u))

    assert float(subramanian2023(outcome(0.4, False))) == pytest.approx(10 * 0.1 + 7)  # γ(best−loss) + λ(T−t)
    assert float(subramanian2023(outcome(0.7, False))) == pytest.approx(10 * -0.2 + 7)
    assert float(subramanian2023(outcome(np.nan, True))) == pytest.approx(-1250.0)  # −(1000 + 0.25·1000)


def test_scale_and_absolute_action_sets():
    from ganno_jax.env.actions import ABSOLUTE_LRS, apply_action_set

    new = apply_action_set(jnp.array([1e-3, 0.0, 0.0, 0.09]), jnp.array([4, 1, 0, 4]), 0.1, "scale")
    np.testing.assert_allclose(new, [2e-3, 5e-7, 0.0, 0.1], rtol=1e-6)  # ×2, 0 → 1e-6 ×0.5, no-op, clip
    assert len(ABSOLUTE_LRS) == 13 and ABSOLUTE_LRS[0] == 1e-6 and ABSOLUTE_LRS[-1] == 1.0
    np.testing.assert_allclose(apply_action_set(jnp.zeros(3), jnp.array([0, 6, 12]), 1.0, "absolute"),
                               [1e-6, 1e-3, 1.0], rtol=1e-6)


def test_layerwise_sgd_equals_optax_sgd_with_decay_at_equal_rates():
    import optax

    params = {"a": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}
    grads = jax.tree.map(lambda p: 0.1 * p + 1.0, params)
    ours = optim.layerwise_sgd(jnp.full(2, 0.05), 0.01, (0, 1))
    ref = optax.chain(optax.add_decayed_weights(0.01), optax.sgd(0.05))
    u1, _ = ours.update(grads, ours.init(params), params)
    u2, _ = ref.update(grads, ref.init(params), params)
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_subramanian_env_sets_sgd_lr_and_rewards_by_the_formula():
    env, params = _env(obs_set="subramanian2023", action_set="absolute", reward="subramanian2023",
                       global_lr=True, inner_optimizer="sgd", lr_max=1.0, noop_branch=False)
    assert env.num_actions == 13 and env.num_agents() == 1
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (1, 5) and float(obs[0, 1]) == 1.0  # epochs remaining at t = 0
    _, state, reward, _, info = env.step(jax.random.PRNGKey(1), state, jnp.array([6]), params)
    np.testing.assert_allclose(optim.get_learning_rates(state.inner.opt_state), [1e-3] * 3, rtol=1e-6)
    expected = 10 * (np.log(10.0) - float(info["val_loss"])) + (4 - 1)  # best so far: chance, ln 10
    assert float(reward) == pytest.approx(expected, rel=1e-5)
    assert float(state.best_val_loss) == pytest.approx(min(np.log(10.0), float(info["val_loss"])))


def test_xu2019_prediction_variance_features_by_hand():
    env, params = _env(obs_set="xu2019", action_set="scale", reward="neg_val_loss", global_lr=True,
                       noop_branch=False, n_probe=32)
    zero = params.replace(init_lr_low=jnp.float32(0.0), init_lr_high=jnp.float32(0.0))
    _, state = env.reset(jax.random.PRNGKey(0), zero)
    obs, state, _, _, _ = env.step(jax.random.PRNGKey(1), state, jnp.array([0]), zero)  # LR 0: no change
    logits, _ = env.task.apply(state.inner.params, state.inner.model_state, params.data.x_val[:32], False)
    var = float(jnp.mean(jnp.var(jax.nn.softmax(logits), axis=0)))
    assert float(state.last.pred_var) == pytest.approx(0.1 * var, rel=1e-5)  # running average from 0
    assert float(state.last.pred_change_var) == 0.0  # predictions did not move
    names = env.obs_names
    assert obs[0, names.index("log10_pred_change_var")] == -10.0  # the log floor
    assert obs[0, names.index("log10_pred_var")] == pytest.approx(np.log10(0.1 * var), rel=1e-4)


def test_cpu_preset_fine_tunes_the_shipped_policy_off_the_mlp_and_paper_trains_from_scratch(tiny_data):
    """`make train ENV=cnn2_fmnist` starts from the shipped policy, which must fit the network's
    env (observation layout, action set); the MLP default and the `paper` preset start from nothing."""
    from ganno_jax.train import _start_policy

    assert make_config("cpu", "mlp_fmnist").init_from == "none"
    paper = make_config("paper", "cnn2_fmnist")
    assert paper.init_from == "none" and paper.base == "constant"
    for env_id in ("cnn2_fmnist", "mlp5_fmnist", "cnn5_cifar10"):
        config = make_config("cpu", env_id)
        assert config.init_from == "pretrained" and config.base == "schedule_free"
        # tau 2: the tiny train split holds too few minibatches for 25 (the layout is the same).
        env, env_params = ganno_jax.make(config.env_id, **{**config.env_overrides(), "tau": 2})
        policy = _start_policy(config, env, env_params)
        assert policy.obs_names == tuple(env.obs_layout["names"]) and policy.num_actions == env.num_actions
    assert make_config("cpu", "cnn2_fmnist").total_env_steps == 1_280  # 4 updates: 10.4 min here


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
@pytest.mark.parametrize("env_id", ["mlp_fmnist", "cnn2_fmnist", "cnn5_cifar10", "resnet18_cifar10"])
def test_every_preset_builds_a_valid_config_for_every_network(preset, env_id):
    config = make_config(preset, env_id)
    assert config.num_updates * config.env_steps_per_update == config.total_env_steps
