"""ResNet-9 / ResNet-18 with BatchNorm: sizes, layer tables, batch statistics, zero-shot depth."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ganno_jax
from ganno_jax.deploy.policy import from_agent
from ganno_jax.evaluation import controllers
from ganno_jax.evaluation.rollout import make_rollout
from ganno_jax.inner.layer_table import model_layer_table
from ganno_jax.inner.models import CNN2, ResNet9, ResNet18
from ganno_jax.inner.task import InnerTask, TaskData, count_params
from ganno_jax.trainer.anakin import init_agent
from ganno_jax.trainer.config import TrainConfig


def _shapes(model, shape):
    return jax.eval_shape(lambda k: model.init(k, jnp.zeros((1, *shape))), jax.random.PRNGKey(0))


def test_parameter_counts_are_the_standard_ones():
    # The published sizes of the CIFAR ResNet-9 (Page) and ResNet-18 (He et al., CIFAR variant).
    assert count_params(_shapes(ResNet9(), (32, 32, 3))["params"]) == 6_573_130
    assert count_params(_shapes(ResNet18(), (32, 32, 3))["params"]) == 11_173_962
    assert "batch_stats" in _shapes(ResNet18(), (32, 32, 3))


def test_resnet9_layer_table():
    t = model_layer_table(ResNet9(), jnp.zeros((1, 32, 32, 3)), train=False)
    assert t.num_layers == 9
    assert [l.kind for l in t.layers] == ["conv"] * 8 + ["linear"]
    assert [l.depth for l in t.layers] == ["first"] + ["intermediate"] * 7 + ["final"]
    # Data-flow order: in a residual branch the inner ConvBN (created second) runs first.
    assert [l.name.split("/")[0] for l in t.layers[:4]] == ["ConvBN_0", "ConvBN_1", "ConvBN_3", "ConvBN_2"]
    for layer in t.layers[:8]:  # every conv owns the BatchNorm that follows it
        block = layer.name.split("/")[0]
        assert set(layer.leaves) == {f"{block}/Conv_0/kernel", f"{block}/BatchNorm_0/scale",
                                     f"{block}/BatchNorm_0/bias"}


def test_resnet18_layer_table_projection_shortcuts_are_conv_agents():
    t = model_layer_table(ResNet18(), jnp.zeros((1, 32, 32, 3)), train=False)
    assert t.num_layers == 21
    assert t.layers[0].name == "ConvBN_0/Conv_0" and t.layers[0].depth == "first"
    assert t.layers[-1].kind == "linear" and t.layers[-1].depth == "final"
    shortcuts = [l for l in t.layers if l.name.endswith("/Conv_1")]
    assert [l.name for l in shortcuts] == [f"BasicBlock_{i}/Conv_1" for i in (2, 4, 6)]
    for l in shortcuts:
        block = l.name.split("/")[0]
        assert l.kind == "conv"
        assert set(l.leaves) == {f"{block}/Conv_1/kernel", f"{block}/BatchNorm_1/scale", f"{block}/BatchNorm_1/bias"}
    # Each block's shortcut comes after its two main-path convs in the agents' order.
    names = [l.name for l in t.layers]
    assert names.index("BasicBlock_2/Conv_1") == names.index("BasicBlock_2/Conv_0") + 1
    assert sum(len(l.leaves) for l in t.layers) == len(jax.tree.leaves(_shapes(ResNet18(), (32, 32, 3))["params"]))


@pytest.fixture(scope="module")
def small_resnet_task():
    return InnerTask(ResNet9(width=0.125), (16, 16, 3), batch_size=8)


@pytest.mark.slow  # ~30 s: compiling a ResNet-9 step on the 2-core CPU
def test_batch_statistics_change_in_training_not_in_evaluation(small_resnet_task):
    task = small_resnet_task
    state = task.init(jax.random.PRNGKey(0), jnp.full(task.num_layers, 1e-3), 0.1)
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 16, 16, 3)) * 3 + 1
    y = jnp.arange(8) % 10
    new, *_ = jax.jit(task.train_step)(state, x, y)
    before, after = jax.tree.leaves(state.model_state), jax.tree.leaves(new.model_state)
    assert all(not np.allclose(a, b) for a, b in zip(before, after))
    _, eval_state = task.apply(new.params, new.model_state, x, train=False)
    for a, b in zip(jax.tree.leaves(eval_state), after):
        np.testing.assert_array_equal(a, b)
    # Evaluation uses the running averages: an example's logits do not depend on its batch.
    alone, _ = task.apply(new.params, new.model_state, x[:1], train=False)
    batched, _ = task.apply(new.params, new.model_state, x, train=False)
    np.testing.assert_allclose(alone[0], batched[0], rtol=1e-4, atol=1e-5)


def _data(n=256, shape=(16, 16, 3)):
    x = jax.random.normal(jax.random.PRNGKey(0), (n, *shape))
    y = (jnp.arange(n) % 10).astype(jnp.int32)
    return TaskData(x, y, x[:64], y[:64], x[:64], y[:64])


@pytest.mark.slow  # ~60 s: compiling a ResNet-18 rollout on the 2-core CPU
def test_policies_from_cnn2_and_resnet9_run_zero_shot_on_resnet18():
    """A policy's parameters depend only on the observation layout, so an agent from a 2- or
    9-layer network drives all 21 layers of ResNet-18 (BatchNorm state carried in the rollout).
    The agent is an argument of one compiled rollout: both policies run the same program."""
    data = _data()
    target, params = ganno_jax.make_env(ResNet18(width=0.125), data, tau=2, episode_length=2, n_val=32,
                                        batch_size=8, noop_branch=False, reward="accuracy")
    fixed = params.replace(init_lr_low=jnp.float32(1e-3), init_lr_high=jnp.float32(1e-3))

    @jax.jit
    def rollout(policy, key):
        return make_rollout(target, controllers.policy_controller(policy))(key, fixed)

    for trained_on in (CNN2(), ResNet9(width=0.125)):
        source, _ = ganno_jax.make_env(trained_on, data, tau=2, episode_length=2, n_val=32, batch_size=8)
        assert target.obs_layout == source.obs_layout and target.num_agents() == 21
        agent = init_agent(jax.random.PRNGKey(source.num_agents()), TrainConfig(), source.obs_dim,
                           source.num_actions)
        res = rollout(from_agent(agent, TrainConfig(), source.obs_layout, source.num_actions), jax.random.PRNGKey(1))
        assert res.lrs.shape == (2, 21) and not bool(res.diverged)
        assert np.isfinite(float(res.test_loss))
