"""Inner-training primitives: reference check against plain optax, batching, evaluation."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganno_jax.inner.models import CNN2, CNN5, MLP
from ganno_jax.inner.task import InnerTask, TaskData, count_params


def _data(n=512, shape=(28, 28, 1), seed=0):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    x = jax.random.normal(k1, (n, *shape))
    y = jax.random.randint(k2, (n,), 0, 10)
    return TaskData(x, y, x[:100], y[:100], x[:50], y[:50])


@pytest.mark.parametrize("model,shape,count", [(CNN2(), (28, 28, 1), 63_050),
                                               (CNN5(), (32, 32, 3), 620_362),
                                               (MLP(), (28, 28, 1), 269_322)])
def test_parameter_counts(model, shape, count):
    task = InnerTask(model, shape)
    state = task.init(jax.random.PRNGKey(0), jnp.full(task.num_layers, 1e-3), 0.1)
    assert count_params(state.params) == count


def test_train_steps_equal_a_plain_optax_adamw_loop():
    task = InnerTask(CNN2(), (28, 28, 1), batch_size=32)
    data = _data()
    state = task.init(jax.random.PRNGKey(0), jnp.full(2, 2e-3), 0.05)
    indices = jax.random.randint(jax.random.PRNGKey(1), (6, 32), 0, 512)
    new, metrics, stats = jax.jit(task.train_steps)(state, data, indices)

    opt = optax.adamw(2e-3, weight_decay=0.05)
    params, opt_state, losses = state.params, opt.init(state.params), []
    for idx in indices:
        def loss_fn(p):
            logits = CNN2().apply({"params": p}, data.x_train[idx])
            return optax.softmax_cross_entropy_with_integer_labels(logits, data.y_train[idx]).mean()
        loss, g = jax.value_and_grad(loss_fn)(params)
        u, opt_state = opt.update(g, opt_state, params)
        params = optax.apply_updates(params, u)
        losses.append(loss)
    chex.assert_trees_all_close(new.params, params, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(metrics.loss, np.mean(losses), rtol=1e-5)
    # Last-step statistics: ‖θ‖ of each layer, and ‖g‖ of the last gradient.
    np.testing.assert_allclose(
        stats.param_norm[1],
        np.sqrt(np.sum(params["Dense_0"]["kernel"] ** 2) + np.sum(params["Dense_0"]["bias"] ** 2)),
        rtol=1e-5)
    np.testing.assert_allclose(stats.grad_norm[0], np.sqrt(sum(np.sum(np.square(v)) for v in g["Conv_0"].values())), rtol=1e-4)
    k = params["Conv_0"]
    allv = np.concatenate([np.ravel(k["kernel"]), np.ravel(k["bias"])])
    np.testing.assert_allclose(stats.param_mean[0], allv.mean(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(stats.param_var[0], allv.var(), rtol=1e-3)


def test_next_indices_are_epochwise_permutations():
    task = InnerTask(MLP(), (4,), batch_size=10)
    stream = task.init_stream(jax.random.PRNGKey(0), 35)  # 3 full minibatches per epoch
    draw = jax.jit(task.next_indices, static_argnums=1)
    parts = []
    for _ in range(2):
        part, stream = draw(stream, 3)
        parts.append(part)
    part, stream = draw(stream, 1)
    idx = np.concatenate(parts + [part])
    assert part.shape == (1, 10)
    for epoch in (idx[0:3], idx[3:6]):
        assert len(set(epoch.ravel())) == 30  # no repeats within an epoch
    assert not np.array_equal(idx[0:3], idx[3:6])  # a fresh permutation each epoch
    assert int(stream.pos) == 1
    # Drawn in pieces (one call per env step) the order continues where it stopped.
    s2 = task.init_stream(jax.random.PRNGKey(0), 35)
    a, s2 = task.next_indices(s2, 2)
    b, s2 = task.next_indices(s2, 2)
    assert len(set(np.concatenate([a[:2], b[:1]]).ravel())) == 30  # epoch 1 = a0, a1, b0
    with pytest.raises(ValueError, match="epoch has only 3"):
        task.next_indices(s2, 4)


def test_evaluate_handles_ragged_chunks():
    task = InnerTask(MLP(), (28, 28, 1))
    data = _data(n=300)
    state = task.init(jax.random.PRNGKey(0), jnp.full(3, 1e-3), 0.0)
    m = task.evaluate(state, data.x_train, data.y_train, chunk=128)
    logits = MLP().apply({"params": state.params}, data.x_train)
    ref = optax.softmax_cross_entropy_with_integer_labels(logits, data.y_train).mean()
    np.testing.assert_allclose(m.loss, ref, rtol=1e-5)
    np.testing.assert_allclose(m.accuracy, np.mean(np.argmax(logits, -1) == data.y_train))


def test_cnn2_learns_the_tiny_dataset(tiny_data):
    from ganno_jax.data.datasets import load_dataset
    ds = load_dataset("fashion_mnist", n_val=100)
    data = TaskData.from_dataset(ds)
    task = InnerTask(CNN2(), (28, 28, 1), batch_size=50)
    state = task.init(jax.random.PRNGKey(0), jnp.full(2, 3e-3), 1e-4)
    stream = task.init_stream(jax.random.PRNGKey(1), 500)
    train = jax.jit(task.train_steps)
    for _ in range(4):
        idx, stream = task.next_indices(stream, 10)
        state, metrics, _ = train(state, data, idx)
    assert float(task.evaluate(state, data.x_val, data.y_val).accuracy) > 0.9
