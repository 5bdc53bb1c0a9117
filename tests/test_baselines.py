"""Handcrafted baselines: schedules equal the optax functions; the per-inner-step rollout path."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ganno_jax
from ganno_jax.evaluation import baselines, controllers
from ganno_jax.inner import schedules
from ganno_jax.evaluation.rollout import make_rollout
from ganno_jax.inner.models import CNN2
from ganno_jax.inner.task import TaskData

N = 700
ALPHA = 3e-3
STEPS = np.array([0, 1, 34, 35, 99, 100, 101, 299, 300, 349, 350, 351, 524, 525, 526, 650, 699, 700])

# The optax function each baseline must equal, built directly with α (not through the unit trick).
REFERENCE = {
    "linear": lambda: optax.linear_schedule(ALPHA, 0.0, N),
    "quadratic": lambda: optax.polynomial_schedule(ALPHA, 0.0, 2, N),
    "cosine": lambda: optax.cosine_decay_schedule(ALPHA, N),
    "exponential": lambda: optax.exponential_decay(ALPHA, N, 0.01),
    "piecewise": lambda: optax.piecewise_constant_schedule(ALPHA, {350: 0.1, 525: 0.1}),
    "sgdr": lambda: optax.sgdr_schedule([dict(init_value=ALPHA, peak_value=ALPHA, warmup_steps=0,
                                              decay_steps=c) for c in (100, 200, 400)]),
    "warmup_cosine": lambda: optax.warmup_cosine_decay_schedule(0.0, ALPHA, 35, N),
    "onecycle": lambda: optax.cosine_onecycle_schedule(N, ALPHA),
    # 5 % warm-up (35 steps), constant to 80 % (560), then α·(1 − sqrt(fraction of the last 140)).
    "wsd": lambda: optax.join_schedules(
        [optax.linear_schedule(0.0, ALPHA, 35), optax.constant_schedule(ALPHA),
         lambda c: ALPHA * (1 - jnp.sqrt(jnp.clip(c / 140, 0, 1)))], [35, 560]),
}


@pytest.mark.parametrize("name", sorted(schedules.UNIT_SCHEDULES))
def test_schedule_equals_optax_at_sampled_steps(name):
    ours = schedules.schedule(name, jnp.float32(ALPHA), N)
    ref = REFERENCE[name]()
    np.testing.assert_allclose([float(ours(s)) for s in STEPS], [float(ref(s)) for s in STEPS],
                               rtol=1e-5, atol=1e-12)


def test_schedule_landmarks_by_hand():
    at = lambda name, step: float(schedules.schedule(name, ALPHA, N)(step))  # noqa: E731
    assert at("linear", 350) == pytest.approx(ALPHA / 2)
    assert at("quadratic", 350) == pytest.approx(ALPHA / 4)
    assert at("cosine", 350) == pytest.approx(ALPHA / 2)
    assert at("exponential", N) == pytest.approx(ALPHA / 100)
    assert at("piecewise", 349) == pytest.approx(ALPHA) and at("piecewise", 350) == pytest.approx(ALPHA / 10)
    assert at("piecewise", 525) == pytest.approx(ALPHA / 100)
    # SGDR restarts at α after N/7 and 3N/7 steps, and each cycle halves at its middle.
    assert at("sgdr", 100) == pytest.approx(ALPHA) and at("sgdr", 300) == pytest.approx(ALPHA)
    assert at("sgdr", 50) == pytest.approx(ALPHA / 2) and at("sgdr", 500) == pytest.approx(ALPHA / 2)
    assert at("warmup_cosine", 0) == 0.0 and at("warmup_cosine", 35) == pytest.approx(ALPHA)
    assert at("onecycle", 210) == pytest.approx(ALPHA)  # the peak at 30 %
    assert at("wsd", 0) == 0.0 and at("wsd", 35) == pytest.approx(ALPHA) and at("wsd", 559) == pytest.approx(ALPHA)
    assert at("wsd", 560 + 35) == pytest.approx(ALPHA / 2)  # 1 − sqrt(1/4) a quarter into the cooldown
    assert at("wsd", N) == pytest.approx(0.0, abs=1e-12)


def test_schedules_trace_under_vmap_over_alpha():
    alphas = jnp.array([0.0, 1e-4, 1e-2])
    lrs = jax.vmap(lambda a: schedules.schedule("sgdr", a, N)(jnp.int32(300)))(alphas)
    np.testing.assert_allclose(lrs, alphas, rtol=1e-6)


def _data(n=640, shape=(12, 12, 1)):
    x = jax.random.normal(jax.random.PRNGKey(0), (n, *shape))
    y = (jnp.arange(n) % 10).astype(jnp.int32)
    x = x.at[:, 0, 0, 0].add(y.astype(jnp.float32))
    return TaskData(x, y, x[:200], y[:200], x[:100], y[:100])


@pytest.fixture(scope="module")
def env_and_params():
    env, params = ganno_jax.make_env(CNN2(), _data(), tau=3, episode_length=4, n_val=64, batch_size=32)
    fixed = params.replace(init_lr_low=jnp.float32(2e-3), init_lr_high=jnp.float32(2e-3),
                           wd_low=jnp.float32(0.1), wd_high=jnp.float32(0.1))
    return env, fixed


def test_optimizer_path_equals_agent_path_for_constant_adamw(env_and_params):
    """optax.adamw at a constant α through the per-inner-step path == the no-op agent through the
    env (layerwise AdamW at equal rates): same init, minibatches and validation subsets."""
    env, params = env_and_params
    adamw = controllers.Controller(
        "adamw", optimizer=lambda a, wd, n: (optax.adamw(a, eps=1e-8, weight_decay=wd), lambda c: a + 0.0 * c))
    key = jax.random.PRNGKey(3)
    ours = jax.jit(make_rollout(env, adamw))(key, params)
    ref = jax.jit(make_rollout(env, controllers.constant_controller()))(key, params)
    np.testing.assert_allclose(ours.lrs, ref.lrs, rtol=1e-7)
    np.testing.assert_allclose(ours.train_loss, ref.train_loss, rtol=1e-6)
    np.testing.assert_allclose(ours.val_accuracy, ref.val_accuracy, atol=1e-6)
    np.testing.assert_allclose(ours.test_curve, ref.test_curve, atol=1e-6)
    np.testing.assert_allclose(ours.test_loss, ref.test_loss, rtol=1e-6)


@pytest.mark.parametrize("name", ["cosine", "onecycle"])
def test_scheduled_baseline_applies_the_optax_schedule_at_every_inner_step(env_and_params, name):
    """The per-inner-step path equals a plain optax loop of `optax.adamw(schedule)` built directly
    from the optax function, on the env's init and minibatch order: every applied update counts."""
    env, params = env_and_params
    key = jax.random.PRNGKey(3)
    ctrl = controllers.METHODS[name](controllers.MethodContext(env.num_actions))
    ours = jax.jit(make_rollout(env, ctrl))(key, params)

    n, tau = env.config.tau * env.config.episode_length, env.config.tau
    sched = REFERENCE_N[name](n)
    tx = optax.adamw(sched, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1)
    _, state = env.reset(jax.random.split(key)[0], params)  # the rollout's reset key
    inner, stream = state.inner.replace(opt_state=tx.init(state.inner.params)), state.stream
    step = jax.jit(lambda inner, idx: env.task.train_step(inner, params.data.x_train[idx],
                                                          params.data.y_train[idx], optimizer=tx)[:2])
    block_losses = []
    for _ in range(env.config.episode_length):
        indices, stream = env.task.next_indices(stream, tau)
        losses = []
        for idx in indices:
            inner, loss = step(inner, idx)
            losses.append(float(loss))
        block_losses.append(np.mean(losses))
    np.testing.assert_allclose(ours.train_loss, block_losses, rtol=1e-6)
    test = env.task.evaluate(inner, params.data.x_test, params.data.y_test)
    np.testing.assert_allclose(ours.test_loss, test.loss, rtol=1e-6)
    assert float(ours.test_accuracy) == float(test.accuracy)
    # The schedule really moved the LR within the run (a constant would not test this).
    assert float(ours.lrs[0, 0]) != float(ours.lrs[-1, 0])


REFERENCE_N = {"cosine": lambda n: optax.cosine_decay_schedule(2e-3, n),
               "onecycle": lambda n: optax.cosine_onecycle_schedule(n, 2e-3)}


@pytest.mark.parametrize("name", [pytest.param("sgdr", marks=pytest.mark.slow), "lamb_cosine",
                                  pytest.param("lion", marks=pytest.mark.slow)])
def test_optimizer_baselines_record_their_schedule_per_block(env_and_params, name):
    env, params = env_and_params
    ctrl = controllers.METHODS[name](controllers.MethodContext(env.num_actions))
    res = jax.jit(make_rollout(env, ctrl))(jax.random.PRNGKey(0), params)
    total = env.config.tau * env.config.episode_length
    _, sched = baselines.OPTIMIZER_BASELINES[name](jnp.float32(2e-3), 0.1, total)
    expected = [float(sched(t * env.config.tau)) for t in range(env.config.episode_length)]
    assert res.lrs.shape == (4, 2)
    np.testing.assert_allclose(res.lrs[:, 0], expected, rtol=1e-6)
    np.testing.assert_array_equal(res.lrs[:, 0], res.lrs[:, 1])  # one global LR
    assert not bool(res.diverged) and np.isfinite(float(res.test_loss))
    assert 0.0 <= float(res.test_accuracy) <= 1.0


def test_divergent_baseline_is_reported_not_raised(env_and_params):
    env, params = env_and_params
    ctrl = controllers.METHODS["linear"](controllers.MethodContext(env.num_actions))
    huge = params.replace(init_lr_low=jnp.float32(1e6), init_lr_high=jnp.float32(1e6))
    res = jax.jit(make_rollout(env, ctrl))(jax.random.PRNGKey(0), huge)
    assert bool(res.diverged) and float(res.test_accuracy) == pytest.approx(0.1)
    assert np.all(np.isfinite(res.val_accuracy)) and np.all(np.isfinite(res.test_curve))
