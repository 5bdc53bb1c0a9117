"""The GANNO environment: functional, jit/vmap-able, gymnax-style, with auto-reset.

Protocol (what any env driven by `ganno_jax.trainer` must provide; written down once, here):
  env.reset(key, params) -> (obs (num_agents, obs_dim) float32, state)
  env.step(key, state, actions (num_agents,) int32, params)
      -> (obs, state, reward () float32, done () bool, info dict of () or (num_agents,) arrays)
  env.num_agents(params) -> int, env.num_actions -> int, env.obs_dim -> int,
  env.obs_names -> tuple[str, ...], env.obs_layout -> dict (saved in checkpoints).
`step` resets by itself when `done`; the returned obs is then the new episode's first one, and
`info` describes the step that ended.

One env step = `tau` inner AdamW steps. In training the action branch and the all-no-op branch
are a vmapped axis of size 2 (`noop_branch=True`): both start from the same state, see the same
minibatches and are scored on the same validation subset; the episode continues from the action
branch. With `noop_branch=False` (deployment) only the action branch runs: half the work.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ganno_jax.env import observations, rewards
from ganno_jax.env.actions import ACTION_SETS, apply_action_set
from ganno_jax.env.types import Dynamics, EnvConfig, EnvParams, EnvState
from ganno_jax.inner import bases, optim, shuffle
from ganno_jax.inner.task import InnerTask, tree_finite
from ganno_jax.errors import UserInputError


def _log_uniform(key: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """LogUniform[low, high]; exactly `low` when low == high (so 0 can be fixed)."""
    u = jax.random.uniform(key)
    lo, hi = jnp.log(jnp.maximum(low, 1e-30)), jnp.log(jnp.maximum(high, 1e-30))
    return jnp.where(low == high, low, jnp.exp(lo + u * (hi - lo)))


class GannoEnv:
    """Layerwise learning-rate control of one inner training run. See the module docstring."""

    def __init__(self, task: InnerTask, config: EnvConfig):
        if config.reward not in rewards.REWARDS:
            raise UserInputError(f"unknown reward {config.reward!r}; known: {', '.join(rewards.REWARDS)}")
        if config.action_set not in ACTION_SETS:
            raise UserInputError(
                f"unknown action_set {config.action_set!r}; known: {', '.join(ACTION_SETS)}")
        if config.obs_set not in observations.OBS_SETS:
            raise UserInputError(
                f"unknown obs_set {config.obs_set!r}; known: {', '.join(observations.OBS_SETS)}")
        if config.reward in rewards.NEEDS_NOOP_BRANCH and not config.noop_branch:
            raise UserInputError(f"reward {config.reward!r} needs noop_branch=True (without the "
                                 f"counterfactual branch it would always be 0)")
        if config.reward in rewards.NEEDS_BASE_BRANCH and not config.base_branch:
            raise UserInputError(f"reward {config.reward!r} needs base_branch=True (it is paired "
                                 f"against the base run beside the agents)")
        if config.noop_branch and config.base_branch:
            raise UserInputError("noop_branch and base_branch are two uses of the second branch; choose one")
        for name in ("tau", "episode_length", "batch_size", "n_val"):
            if getattr(config, name) < 1:
                raise UserInputError(f"{name} must be a positive integer, got {getattr(config, name)}")
        if not 0 < config.lr_max < float("inf"):
            raise UserInputError(f"lr_max must be a positive finite number, got {config.lr_max}")
        if not 0 <= config.lr_min < config.lr_max:
            raise UserInputError(f"lr_min must be in [0, lr_max={config.lr_max}), got {config.lr_min}")
        self.task = task
        self.config = config
        self.obs_names = observations.OBS_SETS[config.obs_set]

    # --- protocol ---------------------------------------------------------------------------
    @property
    def num_actions(self) -> int:
        return ACTION_SETS[self.config.action_set]

    def num_agents(self, params: EnvParams | None = None) -> int:
        """One agent per layer, or a single agent with `global_lr`."""
        return 1 if self.config.global_lr else self.task.num_layers

    @property
    def obs_dim(self) -> int:
        return len(self.obs_names)

    @property
    def obs_layout(self) -> dict:
        """What a checkpoint records to refuse an env whose observations differ."""
        return {"version": observations.OBS_LAYOUT_VERSION, "names": list(self.obs_names)}

    def reset(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """A fresh network with sampled (or fixed) initial LR and weight decay."""
        init_key, lr_key, wd_key, stream_key = jax.random.split(key, 4)
        val_key = jax.random.fold_in(key, 4)  # the episode's validation subset, where it is fixed
        init_lr = _log_uniform(lr_key, params.init_lr_low, params.init_lr_high)
        wd = _log_uniform(wd_key, params.wd_low, params.wd_high)
        n = self.task.num_layers
        inner = self.task.init(init_key, jnp.full((n,), init_lr), wd)
        stream = self.task.init_stream(stream_key, params.data.x_train.shape[0])
        stats = self.task.layer_stats(inner, jnp.zeros((n,), jnp.float32))
        # An untrained network's expected loss and accuracy stand in for measurements we have not
        # made yet: measuring them would cost a validation pass on every auto-reset. Rewards that
        # telescope over one fixed subset need the fresh network's value there, so they measure it.
        k = self.task.num_classes
        chance_loss, chance_acc = jnp.log(jnp.float32(k)), jnp.float32(1.0 / k)
        val_loss, val_acc = chance_loss, chance_acc
        if self.config.reward in rewards.FIXED_VAL_SUBSET:
            val = self.task.evaluate(inner, *self.val_subset(val_key, params))
            val_loss, val_acc = val.loss, val.accuracy
        zero = jnp.zeros((), jnp.float32)
        last = Dynamics(train_loss=chance_loss, train_accuracy=chance_acc, val_loss=val_loss,
                        val_accuracy=val_acc, diverged=jnp.zeros((), bool), stats=stats, pred_var=zero,
                        pred_change_var=zero)
        branch = self.config.base_branch  # the base alone starts from the very same network
        state = EnvState(inner=inner, stream=stream, t=jnp.zeros((), jnp.int32),
                         prev_action=jnp.zeros((self.num_agents(),), jnp.int32), init_lr=init_lr,
                         weight_decay=wd, last=last, best_val_loss=chance_loss,
                         probe_probs=self._probe_probs(inner, params), val_key=val_key,
                         base_inner=inner if branch else None, base_val_accuracy=val_acc if branch else None)
        return self._obs(state), state

    def step(self, key: jax.Array, state: EnvState, actions: jax.Array, params: EnvParams):
        """`step_env`, then a reset where the episode ended (obs and state of the new episode)."""
        step_key, reset_key = jax.random.split(key)
        obs, stepped, reward, done, info = self.step_env(step_key, state, actions, params)
        reset_obs, reset_state = self.reset(reset_key, params)
        new_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, stepped)
        return jnp.where(done, reset_obs, obs), new_state, reward, done, info

    def step_env(self, key: jax.Array, state: EnvState, actions: jax.Array, params: EnvParams):
        """Applies the agents' LR actions, trains `tau` inner steps and scores; no reset.

        After a divergence the returned state holds non-finite parameters: only `step` (which
        resets) may be used to continue; evaluation uses `step_env` to read the final network.
        """
        cfg = self.config
        lrs = optim.get_learning_rates(state.inner.opt_state)
        act = lambda lr: apply_action_set(lr, actions, cfg.lr_max, cfg.action_set, cfg.lr_min)  # noqa: E731
        # A single agent's action moves every layer's (equal) LR together.
        new_lrs = jnp.broadcast_to(act(lrs[:1]), lrs.shape) if cfg.global_lr else act(lrs)
        indices, stream = self.task.next_indices(state.stream, cfg.tau)
        x_val, y_val = self.val_subset(self.step_val_key(key, state.val_key), params)

        def with_lrs(inner, branch_lrs):
            return inner.replace(opt_state=optim.set_learning_rates(inner.opt_state, branch_lrs))

        def run_branch(inner):
            inner, train, stats = self.task.train_steps(inner, params.data, indices)
            val = self.task.evaluate(inner, x_val, y_val)
            return inner, train, stats, val

        acting = with_lrs(state.inner, new_lrs)
        if cfg.noop_branch or cfg.base_branch:
            # The second branch: the all-no-op step from the same state (the paper's one-step
            # counterfactual), or the base's own run, which continues from its last step.
            second = state.base_inner if cfg.base_branch else with_lrs(state.inner, lrs)
            inner_b, train_b, stats_b, val_b = jax.vmap(run_branch)(
                jax.tree.map(lambda a, b: jnp.stack([a, b]), acting, second))
            pick = lambda tree, i: jax.tree.map(lambda x: x[i], tree)  # noqa: E731
            inner, train, stats, val = (pick(t, 0) for t in (inner_b, train_b, stats_b, val_b))
            noop_val, second_inner = pick(val_b, 1), pick(inner_b, 1)
        else:
            inner, train, stats, val = run_branch(acting)
            noop_val, second_inner = val, None

        diverged = ~(jnp.isfinite(train.loss) & jnp.isfinite(val.loss) & tree_finite(inner.params))
        t = state.t + 1
        outcome = rewards.Outcome(
            val_accuracy=val.accuracy, val_loss=val.loss, noop_val_accuracy=noop_val.accuracy,
            noop_val_loss=noop_val.loss, diverged=diverged, best_val_loss=state.best_val_loss, t=t,
            episode_length=jnp.float32(cfg.episode_length), u=jax.random.uniform(jax.random.fold_in(key, 1)),
            prev_val_accuracy=state.last.val_accuracy, prev_val_loss=state.last.val_loss,
            prev_noop_val_accuracy=state.base_val_accuracy if cfg.base_branch else state.last.val_accuracy)
        reward = rewards.REWARDS[cfg.reward](outcome).astype(jnp.float32)
        best = jnp.where(jnp.isfinite(val.loss), jnp.minimum(state.best_val_loss, val.loss),
                         state.best_val_loss)
        probs = self._probe_probs(inner, params)
        pred_var, pred_change_var = self._prediction_variances(state, probs)
        done = diverged | (t >= cfg.episode_length)
        last = Dynamics(train_loss=train.loss, train_accuracy=train.accuracy, val_loss=val.loss,
                        val_accuracy=val.accuracy, diverged=diverged, stats=stats, pred_var=pred_var,
                        pred_change_var=pred_change_var)
        stepped = state.replace(inner=inner, stream=stream, t=t, prev_action=actions.astype(jnp.int32),
                                last=last, best_val_loss=best, probe_probs=probs,
                                base_inner=second_inner if cfg.base_branch else None,
                                base_val_accuracy=jnp.nan_to_num(noop_val.accuracy) if cfg.base_branch else None)
        info = {
            # The rates the block's first inner step applied: each layer's peak times the base's
            # unit rate (the peak itself on the constant base).
            "lrs": self.task.rates_in_force(acting),
            "train_loss": jnp.nan_to_num(train.loss, nan=100.0, posinf=100.0),
            "train_accuracy": jnp.nan_to_num(train.accuracy),
            "val_loss": jnp.nan_to_num(val.loss, nan=100.0, posinf=100.0),
            "val_accuracy": jnp.nan_to_num(val.accuracy),
            "noop_val_accuracy": jnp.nan_to_num(noop_val.accuracy),
            "diverged": diverged,
            "t": t,
        }
        return self._obs(stepped), stepped, reward, done, info

    # --- helpers ----------------------------------------------------------------------------
    def _obs(self, state: EnvState) -> jax.Array:
        peaks = optim.get_learning_rates(state.inner.opt_state)
        feats = observations.feature_matrix(
            state.last,
            self.task.rates_in_force(state.inner),
            jnp.broadcast_to(state.prev_action, peaks.shape),
            state.t / self.config.episode_length,
            state.init_lr,
            state.weight_decay,
            self.task.table,
            peaks=peaks,
            base_unit=bases.unit_rate(self.task.base, self.task.total_steps,
                                      bases.step_count(self.task.base, state.inner.opt_state)),
        )
        obs = observations.select(feats, self.obs_names)
        # A single agent sees the first layer's row: global features are the same in every row.
        return obs[:1] if self.config.global_lr else obs

    def _probe_probs(self, inner, params: EnvParams) -> jax.Array:
        """(n_probe, classes) predicted probabilities on the first `n_probe` validation examples,
        computed only for observation sets that use them (zeros otherwise: no cost)."""
        n = min(self.config.n_probe, params.data.x_val.shape[0])
        if self.config.obs_set not in observations.NEEDS_PROBE:
            return jnp.zeros((n, self.task.num_classes), jnp.float32)
        logits, _ = self.task.apply(inner.params, inner.model_state, params.data.x_val[:n], train=False)
        return jnp.nan_to_num(jax.nn.softmax(logits))

    def _prediction_variances(self, state: EnvState, probs: jax.Array):
        """Running averages (0.9) of the variance over probe examples of the predicted
        probabilities and of their change since the last env step, averaged over classes."""
        var = jnp.mean(jnp.var(probs, axis=0))
        change = jnp.mean(jnp.var(probs - state.probe_probs, axis=0))
        return 0.9 * state.last.pred_var + 0.1 * var, 0.9 * state.last.pred_change_var + 0.1 * change

    def step_val_key(self, step_key: jax.Array, episode_val_key: jax.Array) -> jax.Array:
        """The key of a step's validation subset: the episode's (`EnvState.val_key`) for rewards
        that telescope over one fixed subset, else the step's own (a fresh subset per step, as in
        the paper)."""
        return episode_val_key if self.config.reward in rewards.FIXED_VAL_SUBSET else step_key

    def val_subset(self, key: jax.Array, params: EnvParams):
        """`n_val` validation examples drawn without replacement (the whole split if smaller):
        the first `n_val` entries of a keyed permutation, computed for those entries only."""
        n = params.data.x_val.shape[0]
        if self.config.n_val >= n:
            return params.data.x_val, params.data.y_val
        idx = shuffle.permute(key, jnp.arange(self.config.n_val), n)
        return params.data.x_val[idx], params.data.y_val[idx]

