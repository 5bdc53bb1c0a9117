"""The optax transform reproduces the env rollout's LR trajectory; policies load, save and ship."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ganno_jax
from ganno_jax.deploy.policy import from_agent
from ganno_jax.evaluation.controllers import policy_controller
from ganno_jax.evaluation.rollout import make_rollout
from ganno_jax.inner import bases
from ganno_jax.inner.models import CNN2, MLP
from ganno_jax.inner.task import TaskData
from ganno_jax.trainer.anakin import init_agent
from ganno_jax.trainer.config import make_config

TAU, T = 3, 5


def _data(n=640):
    x = jax.random.normal(jax.random.PRNGKey(0), (n, 6, 6, 1))
    y = (jnp.arange(n) % 10).astype(jnp.int32)
    x = x.at[:, 0, 0, 0].add(y.astype(jnp.float32))
    return TaskData(x, y, x[:200], y[:200], x[:100], y[:100])


def _policy_and_env(reward="telescoping_accuracy", base="constant"):
    """A (random) policy with the default preset's settings, and an env that measures as it trains."""
    cfg = make_config("smoke", "mlp_fmnist", {"tau": str(TAU), "episode_length": str(T), "reward": reward,
                                              "lr_min": "1e-5", "base": base})
    model = MLP(width=0.25)
    env, params = ganno_jax.make_env(model, _data(), tau=TAU, episode_length=T, n_val=64, batch_size=32,
                                     noop_branch=False, reward=reward, lr_min=cfg.lr_min, base=base,
                                     init_lr_low=2e-3, init_lr_high=2e-3, wd_low=1e-4, wd_high=1e-4)
    agent = init_agent(jax.random.PRNGKey(4), cfg, env.obs_dim, env.num_actions)
    # A random actor's logits are nearly flat: sharpen them so the trajectory is not a coin toss.
    agent = agent.replace(actor_params=jax.tree.map(lambda p: 30.0 * p, agent.actor_params))
    return from_agent(agent, cfg, env.obs_layout, env.num_actions), model, env, params


@pytest.mark.parametrize("greedy", [True, False])
def test_plain_loop_with_the_transform_reproduces_the_env_rollout(greedy):
    """Same model, init, data order and validation subset as `evaluate`'s rollout for seed 3:
    the per-layer LRs the transform sets equal the rollout's, decision by decision."""
    policy, model, env, params = _policy_and_env()
    seed = 3
    rollout = jax.jit(make_rollout(env, policy_controller(policy, greedy)))(jax.random.PRNGKey(seed), params)

    _, state = env.reset(jax.random.split(jax.random.PRNGKey(seed))[0], params)  # the rollout's reset
    p, stream = state.inner.params, state.stream
    x_val, y_val = env.val_subset(state.val_key, params)  # the episode's fixed subset
    tx = ganno_jax.scheduler(policy, model, params.data.x_train[:1], init_lr=2e-3, weight_decay=1e-4,
                             total_steps=TAU * T, seed=seed, greedy=greedy)
    opt_state = tx.init(p)

    @jax.jit
    def step(p, opt_state, x, y, val_loss, val_acc):
        def loss_fn(p):
            logits = model.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
        acc = jnp.mean(jnp.argmax(logits, -1) == y)
        updates, opt_state = tx.update(grads, opt_state, p, loss=loss, accuracy=acc, val_loss=val_loss,
                                       val_accuracy=val_acc)
        return optax.apply_updates(p, updates), opt_state

    lrs = []
    for _ in range(T):
        val = env.task.evaluate(state.inner.replace(params=p), x_val, y_val)
        indices, stream = env.task.next_indices(stream, TAU)
        for i, idx in enumerate(indices):
            # Validation metrics when the loop has them: here, at each block's first step.
            v = (val.loss, val.accuracy) if i == 0 else (None, None)
            p, opt_state = step(p, opt_state, params.data.x_train[idx], params.data.y_train[idx], *v)
            if i == 0:
                lrs.append(np.asarray(ganno_jax.scheduler_learning_rates(opt_state)))
    np.testing.assert_allclose(np.stack(lrs), rollout.lrs, rtol=1e-6)
    assert len({tuple(r) for r in np.round(np.stack(lrs), 8)}) > 2  # the policy really moved the LRs


@pytest.mark.parametrize("base", ["schedule_free", "linear"])
def test_plain_loop_on_a_base_reproduces_the_env_rollout(base):
    """As above on a base: the rates the transform applies (peaks × the base's unit rate) and the
    network it scores (`scheduler_eval_params`: schedule-free's averaged point) are the env's."""
    policy, model, env, params = _policy_and_env(base=base)
    seed = 3
    rollout = jax.jit(make_rollout(env, policy_controller(policy)))(jax.random.PRNGKey(seed), params)
    _, state = env.reset(jax.random.split(jax.random.PRNGKey(seed))[0], params)
    p, stream = state.inner.params, state.stream
    x_val, y_val = env.val_subset(state.val_key, params)
    x_te, y_te = params.data.x_test, params.data.y_test
    tx = ganno_jax.scheduler(policy, model, params.data.x_train[:1], init_lr=2e-3, weight_decay=1e-4,
                             total_steps=TAU * T, seed=seed)
    assert policy.config.base == base  # the transform's default base is the policy's
    opt_state = tx.init(p)

    def metrics(p, x, y):
        logits = model.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), jnp.mean(logits.argmax(-1) == y)

    @jax.jit
    def step(p, opt_state, x, y, val_loss, val_acc):
        (loss, acc), grads = jax.value_and_grad(lambda p: metrics(p, x, y), has_aux=True)(p)
        updates, opt_state = tx.update(grads, opt_state, p, loss=loss, accuracy=acc, val_loss=val_loss,
                                       val_accuracy=val_acc)
        return optax.apply_updates(p, updates), opt_state

    rates = []
    for t in range(T):
        val = metrics(ganno_jax.scheduler_eval_params(opt_state, p), x_val, y_val)
        indices, stream = env.task.next_indices(stream, TAU)
        for i, idx in enumerate(indices):
            p, opt_state = step(p, opt_state, params.data.x_train[idx], params.data.y_train[idx],
                                *(val if i == 0 else (None, None)))
            if i == 0:  # the peaks the decision set, times the base's unit rate at the block's start
                unit = bases.unit_rate(base, TAU * T, jnp.int32(t * TAU))
                rates.append(np.asarray(ganno_jax.scheduler_learning_rates(opt_state) * unit))
    np.testing.assert_allclose(np.stack(rates), rollout.lrs, rtol=1e-5)
    final = metrics(ganno_jax.scheduler_eval_params(opt_state, p), x_te, y_te)[1]
    np.testing.assert_allclose(float(final), float(rollout.test_accuracy), atol=0.02)
    if base == "schedule_free":  # scored at the average, which is not the iterate it trains
        assert not np.allclose(jax.tree.leaves(ganno_jax.scheduler_eval_params(opt_state, p))[0],
                               jax.tree.leaves(p)[0])


def test_transform_runs_inside_lax_scan_on_a_model_without_a_train_argument():
    """A user's model whose __call__ has no `train` flag, 4 layers (not the policy's 3), scanned."""

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = x.reshape(x.shape[0], -1)
            for h in (32, 16, 16):
                x = nn.relu(nn.Dense(h)(x))
            return nn.Dense(10)(x)

    policy, _, _, _ = _policy_and_env()
    data = _data()
    net = Net()
    p = net.init(jax.random.PRNGKey(0), data.x_train[:1])["params"]
    tx = ganno_jax.scheduler(policy, net, data.x_train[:1], init_lr=1e-3, weight_decay=1e-4, total_steps=30)

    def body(carry, idx):
        p, s = carry
        x, y = data.x_train[idx], data.y_train[idx]
        def loss_fn(p):
            logits = net.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits
        (loss, logits), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
        u, s = tx.update(g, s, p, loss=loss, accuracy=jnp.mean(jnp.argmax(logits, -1) == y))
        return (optax.apply_updates(p, u), s), ganno_jax.scheduler_learning_rates(s)

    idx = jnp.arange(30 * 32).reshape(30, 32) % 640
    (_, state), lrs = jax.jit(lambda c: jax.lax.scan(body, c, idx))((p, tx.init(p)))
    assert lrs.shape == (30, 4) and int(state.count) == 30
    assert np.all(np.isfinite(lrs)) and not np.all(lrs == 1e-3)  # decisions at steps 0, 3, 6, ...
    np.testing.assert_array_equal(lrs[1:3], lrs[0:1].repeat(2, 0))  # held within a block


def test_policy_file_round_trip_and_pretrained(tmp_path):
    policy, _, _, _ = _policy_and_env()
    path = str(tmp_path / "p.policy")
    ganno_jax.save_policy(policy, path)
    back = ganno_jax.load_policy(path)
    assert back.obs_names == policy.obs_names and back.config == policy.config and back.tau == TAU
    jax.tree.map(np.testing.assert_array_equal, back.actor_params, policy.actor_params)
    jax.tree.map(np.testing.assert_array_equal, back.obs_stats, policy.obs_stats)
    with pytest.raises(ganno_jax.errors.CheckpointError, match="not a readable policy"):
        (tmp_path / "bad.policy").write_bytes(b"\x00garbage")
        ganno_jax.load_policy(str(tmp_path / "bad.policy"))


class _BNNet(nn.Module):
    """A user CNN as the Flax tutorials write it: BatchNorm on `train`, nested, with dropout."""

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Conv(4, (3, 3))(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        x = nn.Dropout(0.1, deterministic=not train)(x.reshape(x.shape[0], -1))
        return nn.Dense(10)(x)


def _scan_with_batch_stats(model, data, tx, steps, batch=32):
    """The user's loop: batch statistics (and dropout rngs) kept outside the transform."""
    variables = model.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)},
                           data.x_train[:2], train=False)
    p, stats = variables["params"], variables["batch_stats"]

    def body(carry, i):
        p, stats, s = carry
        idx = (i * batch + jnp.arange(batch)) % data.x_train.shape[0]
        x, y = data.x_train[idx], data.y_train[idx]

        def loss_fn(p):
            logits, new = model.apply({"params": p, "batch_stats": stats}, x, train=True,
                                      mutable=["batch_stats"], rngs={"dropout": jax.random.fold_in(
                                          jax.random.PRNGKey(2), i)})
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), (logits, new)
        (loss, (logits, new)), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
        u, s = tx.update(g, s, p, loss=loss, accuracy=jnp.mean(jnp.argmax(logits, -1) == y))
        return (optax.apply_updates(p, u), new["batch_stats"], s), ganno_jax.scheduler_learning_rates(s)

    return jax.jit(lambda c: jax.lax.scan(body, c, jnp.arange(steps)))((p, stats, tx.init(p)))


def test_transform_drives_a_batchnorm_cnn_whose_loop_keeps_the_batch_statistics():
    """`tx.init` used to trace the model without `batch_stats` and raised flax's
    ScopeCollectionNotFound. Now a BatchNorm + dropout CNN trains inside lax.scan, its batch
    statistics updated by the user's loop, and the policy moves the two layers' rates."""
    policy, _, _, _ = _policy_and_env()
    data = _data()
    model = _BNNet()
    tx = ganno_jax.scheduler(policy, model, data.x_train[:1], init_lr=1e-3, weight_decay=1e-4, total_steps=12)
    (p, stats, state), lrs = _scan_with_batch_stats(model, data, tx, 12)
    assert lrs.shape == (12, 2) and int(state.count) == 12
    assert np.all(np.isfinite(lrs)) and not np.all(lrs == 1e-3)
    assert not np.allclose(stats["BatchNorm_0"]["mean"], 0.0)  # the loop's own statistics moved
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(p))


@pytest.mark.slow  # compiles a ResNet-9 step (~15 s)
def test_transform_drives_the_repositorys_resnet9():
    from ganno_jax.inner.models import ResNet9

    policy, _, _, _ = _policy_and_env()
    model = ResNet9(width=0.125)
    x = jnp.zeros((2, 16, 16, 1))
    variables = model.init(jax.random.PRNGKey(0), x, train=False)
    tx = ganno_jax.scheduler(policy, model, x[:1], init_lr=1e-3, weight_decay=1e-4, total_steps=3)
    state = tx.init(variables["params"])
    grads = jax.tree.map(jnp.ones_like, variables["params"])
    _, state = jax.jit(lambda g, s, p: tx.update(g, s, p, loss=2.3, accuracy=0.1))(grads, state, variables["params"])
    assert ganno_jax.scheduler_learning_rates(state).shape == (9,)  # one agent per conv/dense layer


def _tx(**overrides):
    policy, model, _, _ = _policy_and_env()
    kwargs = dict(init_lr=1e-3, weight_decay=1e-4, total_steps=30)
    kwargs.update(overrides)
    return ganno_jax.scheduler(kwargs.pop("policy", policy), kwargs.pop("model", model),
                               kwargs.pop("sample_input", jnp.zeros((1, 6, 6, 1))), **kwargs)


@pytest.mark.parametrize("overrides, match", [
    ({"weight_decay": float("nan")}, "weight_decay must be a finite number"),
    ({"weight_decay": -0.1}, "weight_decay must be a finite number in \\[0.0"),
    ({"total_steps": 100.7}, "total_steps must be a whole number"),
    ({"total_steps": "100"}, "total_steps must be a whole number"),
    ({"init_lr": "1e-3"}, "init_lr must be a finite number"),
    ({"seed": -1}, "seed must be a whole number"),
    ({"policy": None}, "policy must be a ganno_jax Policy"),
    ({"model": "mlp"}, "model must be a flax.linen Module"),
    ({"sample_input": 3.0}, "sample_input must be a batch"),
    ({"model": CNN2(width=0.25), "sample_input": jnp.zeros((1, 5))}, "model could not be traced"),
])
def test_scheduler_arguments_are_refused_with_one_clear_error(overrides, match):
    with pytest.raises(ganno_jax.errors.UserInputError, match=match):
        _tx(**overrides)


def test_a_model_without_parameters_is_refused():
    class NoParams(nn.Module):
        @nn.compact
        def __call__(self, x):
            return x.reshape(x.shape[0], -1)

    with pytest.raises(ganno_jax.errors.UserInputError, match="no parameters"):
        _tx(model=NoParams())


def test_update_refuses_non_scalar_metrics_and_foreign_params():
    tx = _tx()
    _, model, _, _ = _policy_and_env()
    p = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 6, 6, 1)))["params"]
    state = tx.init(p)
    g = jax.tree.map(jnp.zeros_like, p)
    with pytest.raises(ValueError, match="loss must be a scalar"):
        tx.update(g, state, p, loss=jnp.ones(32), accuracy=0.5)
    with pytest.raises(ValueError, match="val_loss must be a scalar"):
        tx.update(g, state, p, loss=1.0, accuracy=0.5, val_loss=jnp.ones(3))
    other = nn.Dense(3).init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))["params"]
    with pytest.raises(ganno_jax.errors.UserInputError, match="tx.init: params are not the params"):
        tx.init(other)
    with pytest.raises(ganno_jax.errors.UserInputError, match="tx.update: params are not the params"):
        tx.update(g, state, other, loss=1.0, accuracy=0.5)
