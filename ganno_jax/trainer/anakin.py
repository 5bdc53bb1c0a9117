"""Recurrent IPPO in one compiled loop (the Anakin pattern; PureJaxRL/Mava structure).

`make_trainer(config, env, env_params)` returns a `Trainer` of pure, jitted functions:
  init(key) -> RunnerState (laid out on the device mesh)
  run_updates(runner, env_params, n) -> (runner, (metrics, traces)) stacked over n updates
  train(key) -> the same for the whole run, in one program
and `make_train(config)` is the PureJaxRL-style shortcut returning `train` alone.
Each update: `make_rollout`'s scan over the rollout (policy → vmap(env.step)), GAE, then
`_update_epoch` × epochs, each shuffling recurrent sequences (`sequence_batch`) into
`_update_minibatch`es. The rollout and the sequence code are module-level functions so that tests
can check that the loss recomputes exactly the log-probabilities the rollout sampled with.
Environment copies are sharded over all local devices with `shard_map`; gradients and
normaliser moments are averaged over the device axis, so every device holds the same agent.
The env only has to follow the protocol in `ganno_jax.env.ganno_env`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import NamedSharding, PartitionSpec as P

from ganno_jax.agent import normalizer, ppo
from ganno_jax.agent.networks import GRU_SIZE, Actor, Critic, critic_features, critic_input_dim
from ganno_jax.parallel import device_mesh, replicate
from ganno_jax.trainer.config import TrainConfig

AXIS = "device"


@struct.dataclass
class AgentState:
    """Everything the learner owns: networks, their optimiser, normalisers."""

    actor_params: Any
    critic_params: Any
    opt_state: optax.OptState
    obs_stats: normalizer.RunningStats  # feature shape (obs_dim,)
    value_stats: normalizer.RunningStats  # scalar


@struct.dataclass
class RunnerState:
    """The carry of the training loop; arrays with a leading env axis are sharded over devices."""

    agent: AgentState
    env_state: Any  # (num_envs, ...) env states
    obs: jax.Array  # (num_envs, num_agents, obs_dim) raw observations
    reset: jax.Array  # (num_envs,) bool: the current obs starts an episode (GRU resets)
    hidden: jax.Array  # (num_envs, num_agents, GRU_SIZE)
    key: jax.Array  # PRNG key, same on every device
    update: jax.Array  # () int32 updates done


class EnvCarry(NamedTuple):
    """What the rollout carries from one env step to the next (RunnerState's env fields)."""

    env_state: Any  # (E, ...)
    obs: jax.Array  # (E, A, D) raw
    reset: jax.Array  # (E,) bool
    hidden: jax.Array  # (E, A, H)


class Transition(NamedTuple):
    """One rollout, time-major; N = env copies × agents, one row per agent."""

    obs: jax.Array  # (T, N, D) normalised actor input
    critic_obs: jax.Array  # (T, N, D') normalised critic input (D' = D or 3D, see critic_features)
    action: jax.Array  # (T, N)
    log_prob: jax.Array  # (T, N) under the policy that sampled the action
    value: jax.Array  # (T, N) critic output (normalised scale)
    reward: jax.Array  # (T, N) team reward, copied to every agent
    done: jax.Array  # (T, N) this step ended the episode
    reset: jax.Array  # (T, N) GRU reset before this step
    hidden: jax.Array  # (T, N, H) GRU state before this step


class Rollout(NamedTuple):
    traj: Transition
    raw_obs: jax.Array  # (T, E, A, D) before normalisation (for the running statistics)
    reward: jax.Array  # (T, E)
    done: jax.Array  # (T, E)
    info: dict  # (T, E, ...) arrays of the env's info
    last_critic_obs: jax.Array  # (N, D') the critic's input after the last step (bootstrap)


class Trainer(NamedTuple):
    init: Any  # key -> RunnerState
    run_updates: Any  # (runner, env_params, n static) -> (runner, (metrics, traces))
    train: Any  # key -> (runner, (metrics, traces))
    shardings: Any  # RunnerState of NamedShardings (for checkpoint restore)
    params: Any  # env_params replicated over the mesh (pass these to run_updates)
    mesh: Any  # the device mesh: all devices of all processes


def host_local(tree):
    """Host (numpy) values of a tree of global arrays as this process sees them: a replicated array
    whole, an array sharded over devices as this process's first device's shard."""
    def get(x):
        return np.asarray(x) if x.is_fully_addressable else np.asarray(x.addressable_data(0))

    return jax.tree.map(get, tree)


def vmapped_step(env, keys: jax.Array, states, actions: jax.Array, params):
    """`vmap(env.step)` over env copies, resetting only when some copy's episode ended.

    Under `vmap` the auto-reset inside `env.step` is a select, so its reset (a network init, its
    statistics) would run at every step. When the env also exposes gymnax's `step_env` (the step
    without a reset), the reset runs under a `lax.cond` on "any copy done", outside the `vmap`,
    with the same keys `env.step` would use: the result equals `vmap(env.step)` bit for bit.
    """
    if not hasattr(env, "step_env"):
        return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, states, actions, params)
    split = jax.vmap(jax.random.split)(keys)  # (E, 2, key): env.step's (step_key, reset_key)
    obs, states, reward, done, info = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
        split[:, 0], states, actions, params)

    def reset_done(obs_states):
        obs, states = obs_states
        new_obs, new_states = jax.vmap(env.reset, in_axes=(0, None))(split[:, 1], params)
        pick = lambda r, s: jnp.where(done.reshape(done.shape + (1,) * (s.ndim - 1)), r, s)  # noqa: E731
        return jax.tree.map(pick, (new_obs, new_states), (obs, states))

    obs, states = jax.lax.cond(jnp.any(done), reset_done, lambda x: x, (obs, states))
    return obs, states, reward, done, info


def agent_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """AMSGrad (or Adam, `config.agent_opt`) with global-norm clipping, for actor and critic."""
    opt = {"amsgrad": optax.amsgrad, "adam": optax.adam}[config.agent_opt]
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), opt(config.lr, eps=1e-5))


def init_agent(key: jax.Array, config: TrainConfig, obs_dim: int, num_actions: int) -> AgentState:
    """A fresh agent; its structure depends only on obs_dim, num_actions and the critic kind."""
    actor_key, critic_key = jax.random.split(key)
    actor_params = Actor(num_actions).init(actor_key, jnp.zeros((1, GRU_SIZE)), jnp.zeros((1, 1, obs_dim)),
                                           jnp.zeros((1, 1), bool))
    critic_params = Critic().init(critic_key, jnp.zeros((1, 1, critic_input_dim(obs_dim, config.critic))))
    if config.noop_bias:  # residual start: the untrained policy mostly keeps the base (action 0)
        logits = actor_params["params"]["Dense_3"]
        actor_params = {"params": {**actor_params["params"],
                                   "Dense_3": {**logits, "bias": logits["bias"].at[0].add(config.noop_bias)}}}
    return AgentState(actor_params=actor_params, critic_params=critic_params,
                      opt_state=agent_optimizer(config).init((actor_params, critic_params)),
                      obs_stats=normalizer.init_stats((obs_dim,)), value_stats=normalizer.init_stats(()))


def make_rollout(env, config: TrainConfig, num_agents: int, progress=None):
    """`rollout(agent, carry, params, key) -> (carry, Rollout)`: `config.rollout_len` env steps of
    every env copy in `carry` under the agent's sampled actions (pure; no device axis).

    `progress`, if given, is a host function called after every env step (through
    `jax.debug.callback`; it does not change any value): the training CLI's progress bar, which
    must tick well inside an update when one update of a CNN takes minutes."""
    actor, critic = Actor(env.num_actions), Critic()

    def rollout(agent: AgentState, carry: EnvCarry, params, key: jax.Array):
        n_env = carry.obs.shape[0]
        flat = lambda x: x.reshape((n_env * num_agents,) + x.shape[2:])  # noqa: E731
        per_agent = lambda x: jnp.repeat(x, num_agents)  # (E,) -> (E*A,)  # noqa: E731

        def critic_input(obs_n):  # (E*A, D) normalised -> (E*A, D')
            return flat(critic_features(obs_n.reshape(n_env, num_agents, -1), config.critic))

        def _env_step(carry: EnvCarry, step_key):
            policy_key, env_key = jax.random.split(step_key)
            obs_n = normalizer.normalize(agent.obs_stats, flat(carry.obs))
            new_hidden, dist = actor.apply(agent.actor_params, flat(carry.hidden), obs_n[None],
                                           per_agent(carry.reset)[None])
            action = dist.sample(seed=policy_key)[0]
            log_prob = dist.log_prob(action[None])[0]
            c_obs = critic_input(obs_n)
            value = critic.apply(agent.critic_params, c_obs)
            next_obs, env_state, reward, done, info = vmapped_step(
                env, jax.random.split(env_key, n_env), carry.env_state,
                action.reshape(n_env, num_agents), params)
            tr = Transition(obs=obs_n, critic_obs=c_obs, action=action, log_prob=log_prob, value=value,
                            reward=per_agent(reward), done=per_agent(done), reset=per_agent(carry.reset),
                            hidden=flat(carry.hidden))
            if progress is not None:
                jax.debug.callback(progress, jnp.sum(done))
            new = EnvCarry(env_state=env_state, obs=next_obs, reset=done,
                           hidden=new_hidden.reshape(carry.hidden.shape))
            return new, (tr, carry.obs, reward, done, info)

        carry, (traj, raw_obs, rewards, dones, infos) = jax.lax.scan(
            _env_step, carry, jax.random.split(key, config.rollout_len))
        last = critic_input(normalizer.normalize(agent.obs_stats, flat(carry.obs)))
        return carry, Rollout(traj=traj, raw_obs=raw_obs, reward=rewards, done=dones, info=infos,
                              last_critic_obs=last)

    return rollout


def to_sequences(x: jax.Array, seq_len: int) -> jax.Array:
    """(T, N, ...) -> (L, S, ...): consecutive chunks of L = seq_len steps of each row; sequence
    s = c·N + n is chunk c of row n (S = T/L · N)."""
    x = x.reshape((x.shape[0] // seq_len, seq_len) + x.shape[1:])
    x = jnp.swapaxes(x, 0, 1)
    return x.reshape((seq_len, -1) + x.shape[3:])


def sequence_batch(traj: Transition, seq_len: int) -> tuple[Transition, jax.Array]:
    """The rollout as recurrent sequences, and each sequence's initial GRU state.

    Returns:
      (Transition with fields (L, S, ...), h0 (S, H)): h0 is the state the rollout's GRU held before
      the sequence's first step; resets inside a sequence are in `reset`.
    """
    return jax.tree.map(lambda x: to_sequences(x, seq_len), traj), to_sequences(traj.hidden, seq_len)[0]


def actor_on_sequences(actor: Actor, actor_params, seqs: Transition, h0: jax.Array):
    """The policy's distribution over (L, S) sequence steps, as the loss computes it."""
    _, dist = actor.apply(actor_params, h0, seqs.obs, seqs.reset)
    return dist


def make_trainer(config: TrainConfig, env, env_params, progress=None) -> Trainer:
    """Builds the pure training functions for `env` (see module docstring); `progress(episodes
    ended)` is called on the host after every env step of every device (see `make_rollout`)."""
    from ganno_jax.errors import UserInputError

    devices = jax.devices()  # every device of every process (jax.distributed); local ones otherwise
    num_devices = len(devices)
    if config.num_envs % num_devices:
        raise UserInputError(
            f"num_envs={config.num_envs} env copies do not divide over {num_devices} devices "
            f"({jax.process_count()} process(es)); use a number of processes/devices that divides it")
    mesh = device_mesh(AXIS)
    num_agents = env.num_agents(env_params)
    local_seqs = config.rollout_len // config.seq_len * config.num_envs // num_devices * num_agents
    if local_seqs % config.num_minibatches:
        raise ValueError(f"{local_seqs} recurrent sequences per device do not split into "
                         f"{config.num_minibatches} minibatches")
    obs_dim = env.obs_dim
    actor, critic = Actor(env.num_actions), Critic()
    tx = agent_optimizer(config)
    rollout = make_rollout(env, config, num_agents, progress)

    def init(key: jax.Array, params) -> RunnerState:
        agent_key, env_key, key = jax.random.split(key, 3)
        agent = init_agent(agent_key, config, obs_dim, env.num_actions)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(env_key, config.num_envs), params)
        return RunnerState(agent=agent, env_state=env_state, obs=obs, reset=jnp.ones((config.num_envs,), bool),
                           hidden=jnp.zeros((config.num_envs, num_agents, GRU_SIZE)), key=key,
                           update=jnp.zeros((), jnp.int32))

    def _loss(net_params, seqs: Transition, adv, tgt, h0):
        actor_params, critic_params = net_params
        dist = actor_on_sequences(actor, actor_params, seqs, h0)
        value = critic.apply(critic_params, seqs.critic_obs)
        return ppo.ppo_loss(dist.log_prob(seqs.action), seqs.log_prob, adv, value, seqs.value, tgt,
                            dist.entropy(), config.clip_eps, config.value_clip_eps,
                            config.vf_coef, config.ent_coef)

    def _update(runner: RunnerState, params) -> tuple[RunnerState, tuple[dict, dict]]:
        """One IPPO update on this device's env copies."""
        key, rollout_key, epoch_key = jax.random.split(runner.key, 3)
        local_key = jax.random.fold_in(rollout_key, jax.lax.axis_index(AXIS))
        agent = runner.agent
        carry = EnvCarry(env_state=runner.env_state, obs=runner.obs, reset=runner.reset, hidden=runner.hidden)
        carry, ro = rollout(agent, carry, params, local_key)
        traj = ro.traj

        # Advantages in the raw value scale, per agent-trajectory.
        v_raw = normalizer.denormalize(agent.value_stats, traj.value)
        last_v = normalizer.denormalize(agent.value_stats, critic.apply(agent.critic_params,
                                                                        ro.last_critic_obs))
        adv, targets = jax.vmap(ppo.gae, in_axes=(1, 1, 1, 0, None, None), out_axes=1)(
            traj.reward, v_raw, traj.done, last_v, config.gamma, config.gae_lambda)
        value_stats = normalizer.update_stats(agent.value_stats, targets, AXIS)
        obs_stats = normalizer.update_stats(agent.obs_stats, ro.raw_obs, AXIS)
        targets_n = normalizer.normalize(value_stats, targets, clip=1e6)

        seqs, h0 = sequence_batch(traj, config.seq_len)
        seq_adv, seq_tgt = to_sequences(adv, config.seq_len), to_sequences(targets_n, config.seq_len)
        num_seqs = h0.shape[0]

        def _update_minibatch(state, batch):
            net_params, opt_state = state
            tr, adv, tgt, h0 = batch
            (loss, aux), grads = jax.value_and_grad(_loss, has_aux=True)(net_params, tr, adv, tgt, h0)
            grads = jax.lax.pmean(grads, AXIS)
            updates, opt_state = tx.update(grads, opt_state, net_params)
            return (optax.apply_updates(net_params, updates), opt_state), (loss, aux)

        def _update_epoch(state, perm_key):
            perm = jax.random.permutation(perm_key, num_seqs)
            split = lambda x, ax: jnp.stack(jnp.split(jnp.take(x, perm, axis=ax), config.num_minibatches, axis=ax))  # noqa: E731
            batches = (jax.tree.map(lambda x: split(x, 1), seqs), split(seq_adv, 1), split(seq_tgt, 1),
                       split(h0, 0))
            return jax.lax.scan(_update_minibatch, state, batches)

        (net_params, opt_state), (losses, aux) = jax.lax.scan(
            _update_epoch, ((agent.actor_params, agent.critic_params), agent.opt_state),
            jax.random.split(epoch_key, config.num_epochs))
        agent = AgentState(actor_params=net_params[0], critic_params=net_params[1], opt_state=opt_state,
                           obs_stats=obs_stats, value_stats=value_stats)

        metrics, traces = _metrics(ro, losses, aux, num_devices)
        runner = RunnerState(agent=agent, env_state=carry.env_state, obs=carry.obs, reset=carry.reset,
                             hidden=carry.hidden, key=key, update=runner.update + 1)
        return runner, (metrics, traces)

    def _run_local(runner, params, n):
        return jax.lax.scan(lambda r, _: _update(r, params), runner, None, length=n)

    def run_updates(runner: RunnerState, params, n: int):
        """`n` IPPO updates in one compiled program; returns (runner, (metrics, traces))."""
        specs = _runner_specs(runner)
        out_specs = (specs, ({k: P() for k in METRIC_KEYS}, P(AXIS)))
        fn = jax.shard_map(lambda r, p: _swap_trace_axes(_run_local(r, p, n)), mesh=mesh,
                           in_specs=(specs, P()), out_specs=out_specs, check_vma=False)
        return fn(runner, params)

    abstract = jax.eval_shape(init, jax.random.PRNGKey(0), env_params)
    shardings = jax.tree.map(lambda spec: NamedSharding(mesh, spec), _runner_specs(abstract),
                             is_leaf=lambda x: isinstance(x, P))
    params = replicate(env_params, mesh)
    init_params_jit = jax.jit(init, out_shardings=shardings)

    def init_jit(key: jax.Array) -> RunnerState:
        return init_params_jit(key, params)

    # Pin the output layout to the input's: otherwise XLA may return env-axis arrays replicated
    # (it does on one device) and the next call, seeing other input shardings, compiles again.
    run_jit = jax.jit(run_updates, static_argnums=2, out_shardings=(shardings, None))

    @jax.jit
    def train(key: jax.Array):
        """The whole run as one program."""
        return run_updates(init(key, env_params), env_params, config.num_updates)

    return Trainer(init_jit, run_jit, train, shardings, params, mesh)


def make_train(config: TrainConfig, env=None, env_params=None):
    """`train(key)` for `config` (PureJaxRL style); builds the env from `config.env_id` if needed."""
    if env is None:
        from ganno_jax.env import make
        env, env_params = make(config.env_id, **config.env_overrides())
    return make_trainer(config, env, env_params).train


# Metrics of every update; the GANNO-specific ones read optional info keys (zeros without them).
METRIC_KEYS = ("reward", "episodes", "final_val_accuracy_sum", "diverged", "val_accuracy", "loss",
               "policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
SUMMED_METRICS = ("episodes", "final_val_accuracy_sum", "diverged")  # sums over devices, not means


def _metrics(ro: Rollout, losses, aux, num_devices: int) -> tuple[dict, dict]:
    """Device-averaged metrics of one update and env 0's trace for the LR plots.

    The env protocol's `info` may lack GANNO's keys ("val_accuracy", "diverged", "lrs", "t"):
    their metrics are then 0 and the traces hold zeros.
    """
    ended = ro.done.astype(jnp.float32)
    info = ro.info
    zeros = jnp.zeros_like(ended)
    val_acc = info.get("val_accuracy", zeros)
    metrics = {
        "reward": jnp.mean(ro.reward),
        "episodes": jnp.sum(ended),
        "final_val_accuracy_sum": jnp.sum(ended * val_acc),
        "diverged": jnp.sum(info.get("diverged", zeros).astype(jnp.float32)),
        "val_accuracy": jnp.mean(val_acc),
        "loss": losses.mean(),
        **{k: v.mean() for k, v in aux.__dict__.items()},
    }
    metrics = jax.lax.pmean(metrics, AXIS)
    for k in SUMMED_METRICS:
        metrics[k] = metrics[k] * num_devices
    # The first local env copy's trajectory, for LR-schedule plots: (1, T, ...) per device.
    lrs = info.get("lrs", jnp.zeros(ro.done.shape + (1,)))
    traces = {"lrs": lrs[None, :, 0], "val_accuracy": val_acc[None, :, 0],
              "done": ro.done[None, :, 0], "t": info.get("t", zeros.astype(jnp.int32))[None, :, 0]}
    return metrics, traces


def _runner_specs(runner: RunnerState) -> RunnerState:
    """PartitionSpecs: env-axis arrays sharded over devices, the rest replicated."""
    rep = jax.tree.map(lambda _: P(), runner)
    shard = lambda tree: jax.tree.map(lambda _: P(AXIS), tree)  # noqa: E731
    return rep.replace(env_state=shard(runner.env_state), obs=P(AXIS), reset=P(AXIS), hidden=P(AXIS))


def _swap_trace_axes(out):
    """Scan stacks traces as (n, 1, T, ...); put the device axis first: (1, n, T, ...)."""
    runner, (metrics, traces) = out
    return runner, (metrics, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), traces))
