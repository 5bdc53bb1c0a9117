"""Training configuration and its presets (SPEC §4).

Every field that fixes a shape or the program's structure is here (so the config is static and
hashable); the dataset arrays and initial-condition ranges are EnvParams arguments instead.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from ganno_jax.errors import UserInputError

# Agent presets (SPEC §6): each sets TrainConfig fields; the env, trainer and evaluator are shared.
AGENT_PRESETS: dict[str, dict[str, Any]] = {
    "ganno": {},
    "ganno-lr-only": {"obs_set": "lr_only"},  # paper Table 2: the current LR only
    "ganno-timestep-only": {"obs_set": "progress_only"},  # paper Table 2: t/T only
    "ganno-single-agent": {"obs_set": "global_only", "global_lr": True},  # one agent, one LR
    # Xu et al. 2019: one agent, global LR scaled by a factor, reward −validation loss, PPO.
    "xu2019": {"obs_set": "xu2019", "action_set": "scale", "reward": "neg_val_loss",
               "global_lr": True},
    # Subramanian et al. 2023: one agent picks plain SGD's global LR in [1e-6, 1].
    "subramanian2023": {"obs_set": "subramanian2023", "action_set": "absolute",
                        "reward": "subramanian2023", "global_lr": True, "inner_optimizer": "sgd",
                        "lr_max": 1.0},
}
AGENTS = tuple(AGENT_PRESETS)
AGENT_OPTIMIZERS = ("amsgrad", "adam")
# The env settings an agent preset fixes: evaluation rebuilds the env with a checkpoint's values.
AGENT_ENV_FIELDS = ("obs_set", "global_lr", "action_set", "inner_optimizer", "lr_max", "lr_min", "base")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    env_id: str = "cnn2_fmnist"
    agent: str = "ganno"
    seed: int = 0
    preset: str = "cpu"  # the preset it was built from (recorded: a resume keeps it)
    # Environment (static: shapes and program structure).
    tau: int = 100  # inner steps per env step (paper)
    episode_length: int = 300  # env steps per episode; paper Fig. 2-3 show ~30k inner steps (our reading)
    n_val: int = 2048  # validation examples scored per env step (our choice)
    batch_size: int = 128  # inner minibatch
    model_width: float = 1.0  # ResNet channel multiplier (1.0 = standard; smaller for CPU runs)
    reward: str = "difference_accuracy"  # env reward kind (ganno_jax.env.rewards.REWARDS)
    obs_set: str = "full"  # observation set (ganno_jax.env.observations.OBS_SETS)
    global_lr: bool = False  # one agent, one LR for all layers (ganno-single-agent)
    action_set: str = "ganno"  # ganno_jax.env.actions.ACTION_SETS
    inner_optimizer: str = "adamw"  # layerwise "adamw" or "sgd"
    lr_max: float = 0.1  # actions clip learning rates to [lr_min, lr_max]
    lr_min: float = 0.0  # > 0: no action switches a layer off
    # What each layer's rate follows when the agents do nothing (ganno_jax.inner.bases.BASES): the
    # agents' actions scale a per-layer multiplier of it. "constant" is the paper's environment.
    base: str = "constant"
    # IPPO (paper Appendix A where given, else our choices).
    num_envs: int = 4  # parallel env copies, sharded over local devices
    # Summed over env copies: the paper's 50k, as whole updates of num_envs × rollout_len = 128
    # (390 updates, what the trainer ran before it refused partial updates).
    total_env_steps: int = 49_920
    rollout_len: int = 32  # env steps per env per update
    seq_len: int = 8  # recurrent chunk length
    num_epochs: int = 2
    num_minibatches: int = 4
    clip_eps: float = 0.2
    value_clip_eps: float = 0.2
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    lr: float = 5e-4
    max_grad_norm: float = 0.5
    # The learner's optimiser (actor and critic). "amsgrad": Adam whose second-moment estimate
    # never decreases. Plain "adam" (the paper's) lets that estimate decay once a policy is solved
    # (its gradients vanish), so the next small gradient takes a step of several times `lr` in
    # every parameter: measured on a recall task, solved policies drifted to wrong deterministic
    # mappings (tests/test_trainer.py; experiments/README.md "Learner drift").
    agent_opt: str = "amsgrad"
    critic: str = "independent"  # "independent" (IPPO: own obs) or "central" (+ mean/max over agents)
    # Added to the untrained actor's no-op logit (action 0): > 0 starts the agents near their base
    # (residual policy learning), 0 starts them uniform. 2.2 gives the no-op half the mass of 9 actions.
    noop_bias: float = 0.0
    # Pre-training (paper §6): "bc" clones demonstrations of handcrafted schedules before PPO.
    pretrain: str = "none"  # "none" or "bc"
    # Start the actor (and its observation normaliser) from a trained policy instead of from
    # scratch: "none", "pretrained" (the shipped default), "pretrained:NAME", or a path that
    # `ganno_jax.load_policy` reads. Its observation layout and action set must be this run's.
    init_from: str = "none"
    bc_schedules: str = "cosine,onecycle,warmup_cosine,sgdr"  # inner/schedules.py names
    bc_episodes: int = 8  # demonstration episodes per schedule (initial conditions as in training)
    bc_epochs: int = 100  # passes of the cloning over the demonstrations
    bc_lr: float = 1e-3  # Adam learning rate of the cloning
    # Host loop.
    updates_per_chunk: int = 5  # compiled updates between logging/checkpointing

    @property
    def num_updates(self) -> int:
        return self.total_env_steps // (self.num_envs * self.rollout_len)

    @property
    def env_steps_per_update(self) -> int:
        return self.num_envs * self.rollout_len

    def env_overrides(self) -> dict[str, Any]:
        """The EnvConfig fields this config sets."""
        from ganno_jax.env.rewards import NEEDS_BASE_BRANCH, NEEDS_NOOP_BRANCH

        return {"tau": self.tau, "episode_length": self.episode_length, "n_val": self.n_val,
                "base": self.base, "base_branch": self.reward in NEEDS_BASE_BRANCH,
                "batch_size": self.batch_size, "reward": self.reward, "obs_set": self.obs_set,
                "model_width": self.model_width, "global_lr": self.global_lr,
                "action_set": self.action_set, "inner_optimizer": self.inner_optimizer,
                "lr_max": self.lr_max, "lr_min": self.lr_min,
                # The counterfactual branch doubles the work: run it only for a reward that uses it.
                "noop_branch": self.reward in NEEDS_NOOP_BRANCH}

    def validate(self) -> "TrainConfig":
        """Raises UserInputError naming the first bad value."""
        if self.agent not in AGENTS:
            raise UserInputError(f"unknown agent {self.agent!r}; known: {', '.join(AGENTS)}")
        positive = ("tau", "episode_length", "n_val", "batch_size", "num_envs", "total_env_steps",
                    "rollout_len", "seq_len", "num_epochs", "num_minibatches", "updates_per_chunk")
        for name in positive:
            if getattr(self, name) < 1:
                raise UserInputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.rollout_len % self.seq_len:
            raise UserInputError(f"rollout_len ({self.rollout_len}) must be a multiple of seq_len "
                                 f"({self.seq_len})")
        if self.num_updates < 1:
            raise UserInputError(f"total_env_steps ({self.total_env_steps}) is below one update "
                                 f"({self.env_steps_per_update} env steps)")
        if self.total_env_steps % self.env_steps_per_update:
            lo = self.num_updates * self.env_steps_per_update
            raise UserInputError(
                f"total_env_steps={self.total_env_steps} is not a whole number of updates of "
                f"{self.env_steps_per_update} env steps (num_envs × rollout_len); nearest: {lo} or "
                f"{lo + self.env_steps_per_update}")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise UserInputError(f"{f.name} must be a finite number, got {v}")
        for name in ("ent_coef", "vf_coef"):
            if getattr(self, name) < 0:
                raise UserInputError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserInputError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("clip_eps", "value_clip_eps", "lr", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise UserInputError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.agent_opt not in AGENT_OPTIMIZERS:
            raise UserInputError(f"unknown agent_opt {self.agent_opt!r}; known: {', '.join(AGENT_OPTIMIZERS)}")
        from ganno_jax.agent.networks import CRITICS
        from ganno_jax.inner.schedules import UNIT_SCHEDULES

        from ganno_jax.inner.bases import BASES

        if self.base not in BASES:
            raise UserInputError(f"unknown base {self.base!r}; known: {', '.join(BASES)}")
        if self.critic not in CRITICS:
            raise UserInputError(f"unknown critic {self.critic!r}; known: {', '.join(CRITICS)}")
        if self.pretrain not in ("none", "bc"):
            raise UserInputError(f"pretrain must be none or bc, got {self.pretrain!r}")
        if self.noop_bias and self.action_set == "absolute":
            raise UserInputError("noop_bias needs an action set with a no-op; 'absolute' has none")
        if self.pretrain == "bc" and self.init_from != "none":
            raise UserInputError("pretrain=bc and init_from both set the starting policy; choose one")
        if not self.init_from:
            raise UserInputError("init_from must be none, pretrained, pretrained:NAME or a policy path")
        bad = [s for s in self.bc_schedules.split(",") if s not in UNIT_SCHEDULES]
        if bad or not self.bc_schedules:
            raise UserInputError(f"bc_schedules: unknown {bad or 'empty'}; known: {', '.join(UNIT_SCHEDULES)}")
        for name in ("bc_episodes", "bc_epochs"):
            if getattr(self, name) < 1:
                raise UserInputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.bc_lr > 0:
            raise UserInputError(f"bc_lr must be > 0, got {self.bc_lr}")
        return self

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


PRESETS: dict[str, dict[str, Any]] = {
    # Seconds: for tests.
    "smoke": dict(tau=2, episode_length=4, n_val=64, num_envs=2, total_env_steps=32, rollout_len=8,
                  seq_len=4, num_minibatches=2, updates_per_chunk=1),
    # Default: the agents correct schedule-free AdamW (each layer's rate is schedule-free's times
    # a multiplier of its own), trained in about 14 minutes on 2 CPU cores (mlp_fmnist). Not the
    # paper's design, for measured reasons (experiments/README.md, "The default"): on the
    # schedule-free base the trained agent beats every rival untuned; a telescoping reward (the
    # episode's return is the final validation accuracy gained, on one subset per episode: no
    # short-horizon bias) with γ = λ = 1; scale-free multiplicative actions (the paper's additive
    # −1e-3 snaps a rate ≤ 1e-3 to 0: how agents switched layers off); no second branch (twice the
    # episodes per minute). 1,000 inner steps per episode (tau 25 × T 40): the benchmark's horizon.
    "cpu": dict(tau=25, episode_length=40, n_val=1024, num_envs=8, total_env_steps=19_200,
                rollout_len=40, seq_len=8, num_minibatches=4, num_epochs=4, lr=1e-3,
                reward="telescoping_accuracy", gamma=1.0, gae_lambda=1.0, action_set="log",
                lr_min=1e-5, updates_per_chunk=4, base="schedule_free"),
    # The paper's numbers (Appendix A): for an accelerator; Adam as in the paper's PPO.
    "paper": dict(agent_opt="adam"),
}


# The cpu preset's training length per network: what fits 15 minutes with install on the 2-core
# development CPU (an inner step costs 1.2 ms for mlp, about 10 ms for cnn2, 90 ms for cnn5; one
# update of 8 cnn2 episodes on the schedule-free base took 159 s, so cnn2 gets 4 updates). The
# shipped default agent is the mlp one, trained from scratch; on every other network the preset
# starts from it (`init_from="pretrained"`) and fine-tunes on that network, because the episodes
# that fit the same time there are far fewer than the 480 the default needed to learn
# (experiments/README.md, "make train ENV=cnn2_fmnist").
CPU_ENV_STEPS = {"mlp": 19_200, "mlp5": 12_800, "cnn2": 1_280, "cnn5": 320, "resnet9": 320, "resnet18": 320}
CPU_FROM_SCRATCH = ("mlp",)


def make_config(preset: str, env_id: str, overrides: dict[str, str] | None = None,
                **fields: Any) -> TrainConfig:
    """A validated TrainConfig from a preset, explicit fields and `--set key=value` strings."""
    if preset not in PRESETS:
        raise UserInputError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    agent = fields.get("agent", "ganno")
    if agent not in AGENT_PRESETS:
        raise UserInputError(f"unknown agent {agent!r}; known: {', '.join(AGENT_PRESETS)}")
    values: dict[str, Any] = {**PRESETS[preset], **AGENT_PRESETS[agent], "env_id": env_id,
                              "preset": preset, **fields}
    model = env_id.partition("_")[0]
    if preset == "cpu" and "total_env_steps" not in fields:
        values["total_env_steps"] = CPU_ENV_STEPS.get(model, values["total_env_steps"])
    if preset == "cpu" and model not in CPU_FROM_SCRATCH and "init_from" not in fields and agent == "ganno":
        values["init_from"] = "pretrained"
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    for key, raw in (overrides or {}).items():
        if key not in types:
            raise UserInputError(f"unknown setting {key!r}; known: {', '.join(sorted(types))}")
        if types[key] == "bool":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise UserInputError(f"{key}={raw!r} is not a valid bool (true/false)")
            values[key] = raw.lower() in ("true", "1")
            continue
        kind = {"int": int, "float": float, "str": str}[types[key]]
        try:
            values[key] = kind(float(raw)) if kind is int and float(raw).is_integer() else kind(raw)
        except ValueError:
            raise UserInputError(f"{key}={raw!r} is not a valid {types[key]}") from None
    return TrainConfig(**values).validate()


def parse_overrides(items: list[str]) -> dict[str, str]:
    """`--set KEY=VALUE` strings as a dict (UserInputError for an item without `=`)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def config_from_json(text: str) -> TrainConfig:
    """The config saved in a run folder or checkpoint."""
    data = json.loads(text)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    data.setdefault("agent_opt", "adam")  # runs saved before the field existed trained with Adam
    data.setdefault("base", "constant")  # and before bases existed, on the paper's constant base
    return TrainConfig(**{k: v for k, v in data.items() if k in known})
