"""Rewards: every kind by hand, and the difference reward's equation and sign on a real env."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ganno_jax
from ganno_jax.env import rewards
from ganno_jax.env.rewards import Outcome
from ganno_jax.inner.models import MLP
from ganno_jax.inner.task import TaskData


def _outcome(acc=0.75, loss=0.5, noop_acc=0.625, noop_loss=0.75, diverged=False, t=3, T=10,
             prev_acc=0.5, prev_loss=1.0, best=0.6, u=0.25, prev_noop_acc=0.5625):
    f = jnp.float32
    return Outcome(val_accuracy=f(acc), val_loss=f(loss), noop_val_accuracy=f(noop_acc),
                   noop_val_loss=f(noop_loss), diverged=jnp.bool_(diverged), best_val_loss=f(best),
                   t=jnp.int32(t), episode_length=f(T), u=f(u), prev_val_accuracy=f(prev_acc),
                   prev_val_loss=f(prev_loss), prev_noop_val_accuracy=f(prev_noop_acc))


# (kind, outcome kwargs, expected reward), all computed by hand.
HAND = [
    ("difference_accuracy", {}, 0.75 - 0.625),
    ("difference_accuracy", {"acc": 0.5}, 0.5 - 0.625),  # a worse action is negative
    ("difference_accuracy", {"acc": np.nan, "diverged": True}, -0.625),  # action-only divergence
    ("difference_loss", {}, 0.75 - 0.5),  # no-op loss − action loss
    ("difference_loss", {"loss": 20.0}, 0.75 - 10.0),  # losses clipped to [0, 10]
    ("difference_loss", {"loss": np.nan, "diverged": True}, -1.0),
    ("accuracy", {}, 0.75),
    ("accuracy", {"diverged": True}, 0.0),
    ("neg_val_loss", {}, -0.5),
    ("neg_val_loss", {"loss": np.inf, "diverged": True}, -100.0),
    ("subramanian2023", {}, 10 * (0.6 - 0.5) + (10 - 3)),
    ("subramanian2023", {"diverged": True}, -1250.0),
    ("telescoping_accuracy", {}, 0.75 - 0.5),
    ("telescoping_accuracy", {"acc": 0.25}, 0.25 - 0.5),
    ("telescoping_accuracy", {"acc": np.nan, "diverged": True}, -0.5),  # a diverged net scores 0
    ("telescoping_log_loss", {}, np.log(1.0) - np.log(0.5)),
    ("telescoping_log_loss", {"loss": np.nan, "diverged": True}, np.log(1.0) - np.log(10.0)),
    ("terminal_accuracy", {}, 0.0),  # not the last step
    ("terminal_accuracy", {"t": 10}, 0.75),
    ("terminal_accuracy", {"t": 10, "diverged": True}, 0.0),
    # (0.75 − 0.5) − (0.625 − 0.5625): the agents' step gain minus the base branch's.
    ("paired_telescoping_accuracy", {}, 0.25 - 0.0625),
    ("paired_telescoping_accuracy", {"acc": 0.5, "noop_acc": 0.5, "prev_noop_acc": 0.5}, 0.0),
    ("paired_telescoping_accuracy", {"acc": np.nan, "diverged": True}, -0.5 - 0.0625),
]


@pytest.mark.parametrize("kind,kwargs,expected", HAND, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(HAND)])
def test_reward_kind_by_hand(kind, kwargs, expected):
    assert float(rewards.REWARDS[kind](_outcome(**kwargs))) == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_every_reward_kind_has_a_hand_computed_case():
    assert {k for k, _, _ in HAND} == set(rewards.REWARDS)


def test_telescoping_returns_sum_to_the_final_improvement():
    """Over an episode the undiscounted return of a telescoping reward is m(θ_T) − m(θ_0)."""
    accs, losses = [0.1, 0.4, 0.35, 0.7, 0.8], [2.3, 1.2, 1.3, 0.6, 0.45]
    acc_ret = sum(float(rewards.telescoping_accuracy(_outcome(acc=a, prev_acc=p)))
                  for p, a in zip(accs, accs[1:]))
    loss_ret = sum(float(rewards.telescoping_log_loss(_outcome(loss=b, prev_loss=a)))
                   for a, b in zip(losses, losses[1:]))
    assert acc_ret == pytest.approx(accs[-1] - accs[0], abs=1e-6)
    assert loss_ret == pytest.approx(np.log(losses[0] / losses[-1]), rel=1e-5)


def _data(n=640, scale=1.0):
    x = jax.random.normal(jax.random.PRNGKey(0), (n, 6, 6, 1)) * scale
    y = (jnp.arange(n) % 10).astype(jnp.int32)
    x = x.at[:, 0, 0, 0].add(y.astype(jnp.float32))  # a learnable signal
    return TaskData(x, y, x[:200], y[:200], x[:100], y[:100])


def _mlp_env(**kw):
    cfg = dict(tau=3, episode_length=4, n_val=64, batch_size=32, init_lr_low=1e-2, init_lr_high=1e-2,
               wd_low=0.1, wd_high=0.1)
    return ganno_jax.make_env(MLP(width=0.25), _data(), **{**cfg, **kw})


@pytest.mark.parametrize("kind", ["difference_accuracy", "difference_loss"])
def test_difference_reward_equals_action_branch_minus_a_separate_noop_run(kind):
    """At init LR 1e-2: the reward is (action − no-op) for accuracy, (no-op − action) for loss, where
    each branch equals a separate run without the no-op branch from the same state and key. The
    action (×2 for every layer) changes both measurements, so a flipped sign cannot pass."""
    env, params = _mlp_env(reward=kind, noop_branch=True, action_set="log")
    solo, _ = _mlp_env(reward="accuracy", noop_branch=False, action_set="log")
    _, state = env.reset(jax.random.PRNGKey(0), params)
    actions = jnp.array([7, 7, 7])  # ×2 for every layer: from 1e-2 to 2e-2
    key = jax.random.PRNGKey(7)
    _, _, reward, _, info = jax.jit(env.step_env)(key, state, actions, params)
    step = jax.jit(solo.step_env)
    _, _, _, _, act = step(key, state, actions, params)
    _, _, _, _, noop = step(key, state, jnp.zeros(3, jnp.int32), params)
    assert float(info["val_accuracy"]) == float(act["val_accuracy"])
    assert float(info["noop_val_accuracy"]) == float(noop["val_accuracy"])
    if kind == "difference_accuracy":
        expected = float(act["val_accuracy"]) - float(noop["val_accuracy"])
    else:
        expected = float(noop["val_loss"]) - float(act["val_loss"])
    assert expected != 0.0  # the branches really differ
    assert float(reward) == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(info["lrs"], [2e-2] * 3, rtol=1e-6)


def test_joint_noop_gives_exactly_zero_difference_loss():
    """Both branches see the same minibatches and validation subset: a joint no-op ties exactly,
    also for the continuous loss difference."""
    env, params = _mlp_env(reward="difference_loss", noop_branch=True)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(env.step)
    for i in range(3):
        _, state, reward, _, _ = step(jax.random.PRNGKey(i), state, jnp.zeros(3, jnp.int32), params)
        assert float(reward) == 0.0


def test_action_only_divergence_gives_minus_noop_accuracy_and_sets_the_flag():
    """The action branch diverges (plain SGD at LR 1 on inputs of scale 1e4), the no-op branch
    (LR 0) does not: reward −acc(no-op), episode over, nonfinite_flag 1 in a finite observation."""
    env, params = ganno_jax.make_env(
        MLP(width=0.25), _data(scale=1e4), tau=3, episode_length=5, n_val=64, batch_size=32,
        reward="difference_accuracy", noop_branch=True, action_set="absolute", lr_max=1.0, inner_optimizer="sgd", init_lr_low=0.0, init_lr_high=0.0,
        wd_low=0.0, wd_high=0.0)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    obs, _, reward, done, info = jax.jit(env.step_env)(jax.random.PRNGKey(1), state, jnp.array([12] * 3), params)
    assert bool(info["diverged"]) and bool(done)
    assert np.isfinite(float(info["noop_val_accuracy"])) and float(info["noop_val_accuracy"]) > 0
    assert float(reward) == pytest.approx(-float(info["noop_val_accuracy"]))
    assert np.all(np.isfinite(obs))
    np.testing.assert_array_equal(obs[:, env.obs_names.index("nonfinite_flag")], 1.0)
    # The no-op branch on its own stays finite: the divergence is the action's.
    solo, _ = ganno_jax.make_env(
        MLP(width=0.25), _data(scale=1e4), tau=3, episode_length=5, n_val=64, batch_size=32,
        action_set="absolute", lr_max=1.0, inner_optimizer="sgd", noop_branch=False, reward="accuracy")
    _, _, _, _, noop = jax.jit(solo.step_env)(jax.random.PRNGKey(1), state, jnp.zeros(3, jnp.int32), params)
    assert not bool(noop["diverged"])


def test_telescoping_env_return_is_the_final_improvement_on_one_fixed_subset():
    env, params = _mlp_env(reward="telescoping_accuracy", noop_branch=False)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    first = float(state.last.val_accuracy)  # measured on the episode's subset at reset
    x, y = env.val_subset(state.val_key, params)
    assert float(env.task.evaluate(state.inner, x, y).accuracy) == first
    step, total = jax.jit(env.step_env), 0.0
    for i in range(4):
        _, state, reward, done, info = step(jax.random.PRNGKey(i), state, jnp.array([7, 2, 0]), params)
        total += float(reward)
        # Every step is scored on the same subset.
        assert float(env.task.evaluate(state.inner, x, y).accuracy) == float(info["val_accuracy"])
    assert bool(done) and total == pytest.approx(float(info["val_accuracy"]) - first, abs=1e-6)
