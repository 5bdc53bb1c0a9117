"""Bases: layerwise optimisers that equal their optax rivals, an all-no-op policy on base X that
reproduces the benchmark's method X run for run, multipliers on top, and the paired reward."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ganno_jax
from ganno_jax.env.actions import LOG_FACTORS
from ganno_jax.evaluation import controllers
from ganno_jax.evaluation.rollout import make_rollout
from ganno_jax.inner import bases, optim
from ganno_jax.inner.layer_table import model_layer_table
from ganno_jax.inner.models import CNN2, MLP
from ganno_jax.inner.schedules import schedule
from ganno_jax.inner.task import TaskData

N, ALPHA, WD = 60, 3e-3, 0.1


def _mlp_problem():
    model = MLP(width=0.1)
    x = jax.random.normal(jax.random.PRNGKey(0), (32, 6, 6, 1))
    y = jnp.arange(32) % 10
    params = model.init(jax.random.PRNGKey(1), x)["params"]
    table = model_layer_table(model, x)

    def grad(p):
        return jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(
            model.apply({"params": p}, x), y).mean())(p), None

    return params, table, grad


REFERENCE = {
    "schedule_free": lambda: optax.contrib.schedule_free_adamw(
        ALPHA, warmup_steps=bases.schedule_free_warmup(N), weight_decay=WD),
    "linear": lambda: optax.adamw(optax.linear_schedule(ALPHA, 0.0, N), weight_decay=WD),
    "wsd": lambda: optax.adamw(schedule("wsd", ALPHA, N), weight_decay=WD),
    "constant": lambda: optax.adamw(ALPHA, weight_decay=WD),
}


@pytest.mark.parametrize("base", sorted(REFERENCE))
def test_layerwise_base_at_equal_peaks_equals_its_optax_rival_op_for_op(base):
    """Bit for bit, op by op (eagerly; compiled, XLA may contract a multiply-add into one
    FMA in one program and not in the other, a last-bit difference; the rollout test below
    bounds it)."""
    params, table, grad = _mlp_problem()
    ours = bases.layerwise_optimizer(base, jnp.full((table.num_layers,), ALPHA), WD, table.leaf_layer, N)
    ref = REFERENCE[base]()
    p_ours = p_ref = params
    s_ours, s_ref = ours.init(params), ref.init(params)
    for _ in range(N):  # eagerly: one primitive at a time
        u, s_ours = ours.update(grad(p_ours)[0], s_ours, p_ours)
        p_ours = optax.apply_updates(p_ours, u)
        u, s_ref = ref.update(grad(p_ref)[0], s_ref, p_ref)
        p_ref = optax.apply_updates(p_ref, u)
    jax.tree.map(np.testing.assert_array_equal, p_ours, p_ref)
    if base == "schedule_free":
        jax.tree.map(np.testing.assert_array_equal, bases.eval_params(base, s_ours, p_ours),
                     optax.contrib.schedule_free_eval_params(s_ref, p_ref))
    assert np.all(optim.direction_norms(s_ours) > 0)


def test_multipliers_scale_each_layers_rate_through_the_base():
    params, table, _ = _mlp_problem()
    peaks = jnp.asarray([1e-3, 2e-3, 4e-3])
    tx = bases.layerwise_optimizer("linear", peaks, 0.0, table.leaf_layer, N)
    state = tx.init(params)
    np.testing.assert_allclose(bases.rates_in_force("linear", N, state), peaks)
    for _ in range(N // 2):
        _, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    np.testing.assert_allclose(bases.rates_in_force("linear", N, state), peaks / 2, rtol=1e-6)
    state = optim.set_learning_rates(state, 2 * peaks)  # an agent doubles every multiplier
    np.testing.assert_allclose(bases.rates_in_force("linear", N, state), peaks, rtol=1e-6)


def _data(n=640, shape=(12, 12, 1)):
    x = jax.random.normal(jax.random.PRNGKey(0), (n, *shape))
    y = (jnp.arange(n) % 10).astype(jnp.int32)
    x = x.at[:, 0, 0, 0].add(y.astype(jnp.float32))
    return TaskData(x, y, x[:200], y[:200], x[:100], y[:100])


def _env(base, **kw):
    env, params = ganno_jax.make_env(CNN2(), _data(), tau=3, episode_length=4, n_val=64, batch_size=32,
                                     base=base, reward="telescoping_accuracy", **kw)
    return env, params.replace(init_lr_low=jnp.float32(2e-3), init_lr_high=jnp.float32(2e-3),
                               wd_low=jnp.float32(0.1), wd_high=jnp.float32(0.1))


@pytest.mark.parametrize("base", ["linear", "wsd", "cosine", "schedule_free"])
def test_all_noop_policy_on_a_base_is_the_benchmarks_method_run_for_run(base):
    """The agents' env on base X with every agent doing nothing == the benchmark's method X on the
    plain env: same init, minibatches, validation subsets, rates and scores (rates exactly; the
    rest to float tolerance, see above)."""
    agent_env, params = _env(base)
    rival_env, _ = _env("constant")
    key = jax.random.PRNGKey(3)
    noop = jax.jit(make_rollout(agent_env, controllers.constant_controller()))(key, params)
    rival = controllers.METHODS[base](controllers.MethodContext(agent_env.num_actions))
    ref = jax.jit(make_rollout(rival_env, rival))(key, params)
    np.testing.assert_array_equal(noop.lrs, ref.lrs)
    for field in ("val_accuracy", "test_curve", "final_val_accuracy", "test_accuracy"):
        np.testing.assert_allclose(getattr(noop, field), getattr(ref, field), atol=1e-6, err_msg=field)
    for field in ("train_loss", "test_loss"):
        np.testing.assert_allclose(getattr(noop, field), getattr(ref, field), rtol=1e-5, err_msg=field)
    assert float(noop.lrs.max()) > 0 and not bool(noop.diverged)


def test_a_rival_with_its_own_optimiser_is_refused_on_a_base():
    env, _ = _env("linear")
    rival = controllers.METHODS["cosine"](controllers.MethodContext(env.num_actions))
    with pytest.raises(ValueError, match="constant"):
        make_rollout(env, rival)


def test_paired_reward_is_zero_for_the_noop_and_telescopes_to_the_final_gap():
    """Against the base branch: all no-op earns exactly 0 at every step; any policy's return is
    its final accuracy minus the base's, on the episode's fixed subset."""
    env, params = ganno_jax.make_env(CNN2(), _data(), tau=3, episode_length=4, n_val=64, batch_size=32,
                                     base="schedule_free", reward="paired_telescoping_accuracy",
                                     base_branch=True, action_set="log")
    params = params.replace(init_lr_low=jnp.float32(2e-3), init_lr_high=jnp.float32(2e-3),
                            wd_low=jnp.float32(0.1), wd_high=jnp.float32(0.1))
    step = jax.jit(env.step_env)
    double = LOG_FACTORS.index(2.0)
    for actions, zero in ((jnp.zeros((2,), jnp.int32), True), (jnp.full((2,), double, jnp.int32), False)):
        _, state = env.reset(jax.random.PRNGKey(0), params)
        rewards = []
        for t in range(4):
            _, state, r, _, info = step(jax.random.PRNGKey(10 + t), state, actions, params)
            rewards.append(float(r))
        x_val, y_val = env.val_subset(state.val_key, params)
        gap = (env.task.evaluate(state.inner, x_val, y_val).accuracy
               - env.task.evaluate(state.base_inner, x_val, y_val).accuracy)
        if zero:
            assert rewards == [0.0] * 4
        else:
            assert any(r != 0.0 for r in rewards)
        np.testing.assert_allclose(sum(rewards), float(gap), atol=1e-6)
        np.testing.assert_allclose(float(state.base_val_accuracy), float(
            env.task.evaluate(state.base_inner, x_val, y_val).accuracy))


def test_paired_reward_needs_the_base_branch():
    with pytest.raises(ganno_jax.errors.UserInputError, match="base_branch"):
        ganno_jax.make_env(CNN2(), _data(), tau=3, episode_length=4, reward="paired_telescoping_accuracy")
    with pytest.raises(ganno_jax.errors.UserInputError, match="unknown base"):
        ganno_jax.make_env(CNN2(), _data(), tau=3, episode_length=4, base="velo")
