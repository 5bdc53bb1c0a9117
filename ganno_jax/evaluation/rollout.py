"""One inner training run under a controller, for evaluation (deployment: no no-op branch).

Both kinds of controller (see `controllers`) start from the env's reset for the same key: the same
network initialisation, initial LR, weight decay and minibatch order; they differ only in who sets
the learning rates. Both record, after every block of `tau` inner steps, the LRs in force, the
accuracy on the step's validation subset and on a fixed test subset (the first `n_val` test
examples: the accuracy-over-steps curves), so their curves line up point for point.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from ganno_jax.evaluation.controllers import Controller
from ganno_jax.inner.task import tree_finite


@struct.dataclass
class EpisodeResult:
    lrs: jax.Array  # (T, num_layers) learning rates in force during each block of tau inner steps
    val_accuracy: jax.Array  # (T,) on the step's validation subset
    test_curve: jax.Array  # (T,) accuracy on the fixed test subset after each block
    train_loss: jax.Array  # (T,)
    final_val_accuracy: jax.Array  # () on the whole validation split
    test_accuracy: jax.Array  # () on the official test split
    test_loss: jax.Array  # ()
    diverged: jax.Array  # () bool: the run became non-finite at some step


def make_rollout(env, controller: Controller):
    """`rollout(key, params) -> EpisodeResult` over `env.config.episode_length` blocks of `tau` steps.

    A run that diverges reports chance accuracy from then on (its network is non-finite).
    """
    num_steps = env.config.episode_length
    chance = 1.0 / env.task.num_classes
    step_fn = _optimizer_block if controller.per_inner_step else _agent_block
    if controller.per_inner_step and env.task.base != "constant":
        # Its own optimiser replaces the env's: the env's base (and its scoring) would not apply.
        raise ValueError(f"{controller.name} brings its own optimiser; run it on a 'constant'-base env, "
                         f"not on base {env.task.base!r}")

    def rollout(key: jax.Array, params) -> EpisodeResult:
        reset_key, run_key = jax.random.split(key)
        obs, state = env.reset(reset_key, params)
        carry = _init_carry(env, controller, obs, state, params)
        x_curve, y_curve = (a[: env.config.n_val] for a in (params.data.x_test, params.data.y_test))

        def body(c, step_key):
            carry, diverged = c
            carry, inner, info = step_fn(env, controller, carry, step_key, params)
            diverged = diverged | info["diverged"]
            curve = env.task.evaluate(inner, x_curve, y_curve).accuracy
            out = (info["lrs"], jnp.where(diverged, chance, info["val_accuracy"]),
                   jnp.where(diverged, chance, curve), info["train_loss"])
            return (carry, diverged), out

        (carry, diverged), (lrs, val_acc, curve, train_loss) = jax.lax.scan(
            body, (carry, jnp.zeros((), bool)), jax.random.split(run_key, num_steps))
        inner = _inner_state(controller, carry)
        data = params.data
        val = env.task.evaluate(inner, data.x_val, data.y_val)
        test = env.task.evaluate(inner, data.x_test, data.y_test)
        # A network can stay finite and still overflow the loss on examples the blocks did not see.
        diverged = diverged | ~jnp.isfinite(val.loss) | ~jnp.isfinite(test.loss)
        return EpisodeResult(
            lrs=lrs, val_accuracy=val_acc, test_curve=curve, train_loss=train_loss,
            final_val_accuracy=jnp.where(diverged, chance, val.accuracy),
            test_accuracy=jnp.where(diverged, chance, test.accuracy),
            test_loss=jnp.where(diverged, jnp.inf, test.loss),
            diverged=diverged)

    return rollout


def _init_carry(env, controller: Controller, obs, state, params):
    if not controller.per_inner_step:
        return obs, state, controller.init(env.num_agents(params))
    tx, _ = controller.optimizer(state.init_lr, state.weight_decay, _total_steps(env))
    inner = state.inner.replace(opt_state=tx.init(state.inner.params))
    return inner, state.stream, state.init_lr, state.weight_decay, jnp.zeros((), jnp.int32), state.val_key


def _total_steps(env) -> int:
    return env.config.tau * env.config.episode_length


def _inner_state(controller: Controller, carry):
    return _scored(controller, carry[0]) if controller.per_inner_step else carry[1].inner


def _scored(controller: Controller, inner):
    """The inner state as it is scored: at the controller's evaluation parameters if it has them."""
    if controller.eval_params is None:
        return inner
    return inner.replace(params=controller.eval_params(inner.opt_state, inner.params))


def _agent_block(env, controller: Controller, carry, key, params):
    """One env step: the controller's actions, then `tau` layerwise-AdamW steps (`env.step_env`)."""
    obs, state, ctrl_carry = carry
    act_key, env_key = jax.random.split(key)
    ctrl_carry, actions = controller.act(ctrl_carry, obs, act_key)
    obs, state, _, _, info = env.step_env(env_key, state, actions, params)
    return (obs, state, ctrl_carry), state.inner, info


def _optimizer_block(env, controller: Controller, carry, key, params):
    """`tau` steps of the controller's own optax optimiser, on the env's minibatch order and
    validation subsets. The transform is rebuilt from (α, wd) in the carry: it is pure, so this
    costs nothing at run time. The recorded LR is the schedule's at the block's first step."""
    inner, stream, alpha, wd, count, val_key = carry
    tx, schedule = controller.optimizer(alpha, wd, _total_steps(env))
    indices, stream = env.task.next_indices(stream, env.config.tau)

    def step(inner, idx):
        inner, loss, _, _ = env.task.train_step(inner, params.data.x_train[idx],
                                                params.data.y_train[idx], optimizer=tx)
        return inner, loss

    inner, losses = jax.lax.scan(step, inner, indices)
    # The validation subset `_agent_block`'s `env.step_env` draws for the same key and episode.
    x_val, y_val = env.val_subset(env.step_val_key(jax.random.split(key)[1], val_key), params)
    scored = _scored(controller, inner)
    val = env.task.evaluate(scored, x_val, y_val)
    if controller.observe is not None:  # e.g. reduce-on-plateau steps on this validation loss
        inner = inner.replace(opt_state=controller.observe(inner.opt_state, val.loss))
    train_loss = losses.mean()
    diverged = ~(jnp.isfinite(train_loss) & jnp.isfinite(val.loss) & tree_finite(inner.params))
    lr = jnp.broadcast_to(schedule(count), (env.task.num_layers,))
    if controller.lr_scale is not None:  # plateau: the schedule's α times the scale now in force
        lr = lr * controller.lr_scale(inner.opt_state)
    info = {"lrs": lr, "val_accuracy": jnp.nan_to_num(val.accuracy), "diverged": diverged,
            "train_loss": jnp.nan_to_num(train_loss, nan=100.0, posinf=100.0)}
    return (inner, stream, alpha, wd, count + env.config.tau, val_key), _scored(controller, inner), info


def run_grid(env, controller: Controller, seeds, init_lrs, wds, params) -> EpisodeResult:
    """One method's runs over a grid, as one program whose grid axis is sharded over every device
    (the local ones, and those of every process under `jax.distributed`).

    Args:
      seeds, init_lrs, wds: (G,) the grid's cells: run i starts from PRNGKey(seeds[i]) (network
        init, minibatch order, validation subsets) at initial LR init_lrs[i] and decay wds[i].
      params: the env's params (the dataset); the grid's values replace its initial conditions.

    Returns:
      EpisodeResult of numpy arrays with a leading (G,) axis, equal to the one-device run's.
    """
    import numpy as np
    from jax.experimental import multihost_utils
    from jax.sharding import NamedSharding, PartitionSpec as P

    from ganno_jax.parallel import device_mesh

    mesh = device_mesh("grid")
    devices = mesh.devices.ravel()
    params = replicate_data(params)
    g = len(seeds)
    pad = (-g) % len(devices)  # every device runs as many cells; the padding repeats the last one

    def grid_array(x):  # (G, ...) -> padded and sharded over the grid axis
        x = np.asarray(x)
        x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
        return jax.make_array_from_callback(x.shape, NamedSharding(mesh, P("grid")), lambda idx: x[idx])

    keys = grid_array(np.stack([np.asarray(jax.random.PRNGKey(s)) for s in seeds]))
    lrs = grid_array(np.asarray(init_lrs, np.float32))
    decays = grid_array(np.asarray(wds, np.float32))
    grid_params = params.replace(init_lr_low=lrs, init_lr_high=lrs, wd_low=decays, wd_high=decays)
    axes = params.replace(data=None, init_lr_low=0, init_lr_high=0, wd_low=0, wd_high=0)
    fn = jax.jit(jax.vmap(make_rollout(env, controller), in_axes=(0, axes)),
                 out_shardings=NamedSharding(mesh, P("grid")))
    res = fn(keys, grid_params)
    res = multihost_utils.process_allgather(res, tiled=True) if jax.process_count() > 1 else jax.device_get(res)
    return jax.tree.map(lambda x: np.asarray(x)[:g], res)


def replicate_data(params):
    """`params` with its dataset replicated over every device of every process, as `run_grid`
    needs it; data already placed so is returned as is (call this once before a loop over methods,
    and no method copies the dataset again)."""
    from ganno_jax.parallel import device_mesh, replicate

    return params.replace(data=replicate(params.data, device_mesh("grid")))
