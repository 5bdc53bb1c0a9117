"""Evaluate a trained GANNO agent zero-shot, and baselines, over a grid of initial conditions.

  python -m ganno_jax.evaluate --ckpt runs/RUN --env cnn5_cifar10 --methods ganno,random,constant \
      --init-lrs 1e-4,3e-4,1e-3,3e-3,1e-2 --wds 0.1 --seeds 3 --preset cpu --out DIR

Every method trains the same network (same init and minibatch order per seed) for the same number
of inner steps from the same initial LR and weight decay; reported: final test accuracy.
The grid of one method is one compiled program, vmapped over (initial LR, weight decay, seed).
Bad input → one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import numpy as np

from ganno_jax import envvars
from ganno_jax.errors import UserInputError, cli_main, create_out_dir, one_line, remove_created

# The benchmark's baselines: the random agent, the constant LR, the handcrafted schedules whose
# spread at the best initial LR shows that the protocol separates schedules (summary.json), and
# what users pick instead of tuning: WSD, reduce-on-plateau, schedule-free AdamW and the
# LR-free optimisers.
BENCHMARK_BASELINES = ("random", "constant", "linear", "cosine", "sgdr", "onecycle", "warmup_cosine",
                       "wsd", "plateau", "schedule_free", "prodigy", "dadapt_adamw", "dog", "cocob", "mechanic")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m ganno_jax.evaluate", description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", help="run folder or checkpoint (needed for method 'ganno')")
    ap.add_argument("--env", default=None,
                    help="environment id (default: the checkpoint's training env; required without --ckpt)")
    ap.add_argument("--methods", default=None,
                    help="comma list of methods (ganno, random, constant, linear, quadratic, cosine, "
                         "exponential, piecewise, sgdr, warmup_cosine, onecycle, wsd, lamb_cosine, lion, "
                         "plateau, schedule_free, and the LR-free prodigy, dadapt_adamw, dog, cocob, "
                         "mechanic); "
                         "default ganno,random,constant with --ckpt, else random,constant")
    ap.add_argument("--init-lrs", default="1e-4,3e-4,1e-3,3e-3,1e-2")
    ap.add_argument("--wds", default="0.1")
    ap.add_argument("--seeds", default=None, help="number of seeds (0..N-1); default 3, 5 with --benchmark")
    ap.add_argument("--benchmark", action="store_true",
                    help="the CPU benchmark protocol (README 'Benchmark'): the checkpoint's agent against "
                         f"{', '.join(BENCHMARK_BASELINES)}, 5 seeds, the preset's episode")
    ap.add_argument("--preset", default="cpu", help="episode size: smoke, cpu or paper")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override tau, episode_length, n_val, batch_size or model_width (ResNets) "
                         "of the evaluation run")
    ap.add_argument("--greedy", action="store_true", help="GANNO takes its most likely action")
    ap.add_argument("--baselines-from", default=None, metavar="DIR",
                    help="reuse the rows and curves of non-agent methods from an earlier evaluation with "
                         "the same protocol (they are deterministic given it) instead of running them")
    ap.add_argument("--out", required=True)
    return ap.parse_args(argv)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _floats(text: str, name: str, allow_zero: bool) -> list[float]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    try:
        values = [float(x) for x in items]
    except ValueError:
        bad = next(x for x in items if not _is_float(x))
        raise UserInputError(f"--{name} must be a comma list of numbers; {one_line(repr(bad), 40)} is not "
                             f"one") from None
    bad = [v for v in values if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero)]
    if not values or bad:
        raise UserInputError(f"--{name} values must be finite and {'>= 0' if allow_zero else '> 0'}; "
                             f"got {one_line(repr(bad[0]) if bad else repr(text), 80)}")
    dup = sorted({v for v in values if values.count(v) > 1})
    if dup:  # each cell would be computed twice and reported twice
        raise UserInputError(f"--{name} lists {dup[0]:g} more than once")
    return values


def run(args: argparse.Namespace) -> str:
    if args.out and os.path.exists(args.out):
        raise UserInputError(f"output folder {args.out} already exists; choose another --out")
    created = create_out_dir(args.out)
    try:
        return _evaluate(args)
    except (UserInputError, KeyboardInterrupt):
        remove_created(created)  # a refused or interrupted evaluation leaves nothing behind
        raise


@dataclasses.dataclass
class Plan:
    """What an evaluation runs, checked before anything is computed."""

    methods: list[str]
    agent_methods: list[str]  # trained agents among `methods` (they act through `policy`)
    init_lrs: list[float]
    wds: list[float]
    num_seeds: int
    env_cfg: dict  # the episode's size: tau, episode_length, n_val, batch_size, model_width

    @property
    def grid(self) -> list[tuple[float, float, int]]:
        return [(lr, wd, s) for lr in self.init_lrs for wd in self.wds for s in range(self.num_seeds)]


def _evaluate(args: argparse.Namespace) -> str:
    from ganno_jax.deploy.policy import load_policy
    from ganno_jax.evaluation import reuse
    from ganno_jax.evaluation.rollout import replicate_data

    # A run folder, a checkpoint step or a policy file; restored (and verified) before anything is written.
    policy = load_policy(args.ckpt) if args.ckpt else None
    plan = _plan(args, policy)
    env, agent_env, params = _envs(args, plan, policy)
    params = replicate_data(params)  # once: no method copies the dataset again
    protocol = {"env": args.env, "tau": env.config.tau, "episode_length": env.config.episode_length,
                "n_val": env.config.n_val, "batch_size": env.config.batch_size, "reward": env.config.reward,
                "model_width": plan.env_cfg.get("model_width", 1.0), "init_lrs": plan.init_lrs, "wds": plan.wds,
                "seeds": plan.num_seeds}
    rivals = [m for m in plan.methods if m not in plan.agent_methods]
    if args.baselines_from:
        reused = reuse.reuse_rows(args.baselines_from, protocol, rivals, len(plan.grid))
    else:
        reused = reuse.committed_rows(args.env, protocol, rivals, len(plan.grid)) if args.benchmark else {}
    rows, curves = _run_methods(args, plan, env, agent_env, params, policy, reused)
    _write_outputs(args, plan, env, rows, curves, protocol, reused)
    return args.out


def _plan(args: argparse.Namespace, policy) -> Plan:
    """The methods, grid and episode size of `args`; UserInputError for anything unusable."""
    from ganno_jax.evaluation.controllers import LR_FREE_METHODS, METHODS, NEEDS_CHECKPOINT
    from ganno_jax.trainer.config import make_config, parse_overrides

    ckpt_cfg = policy.config if policy else None
    if args.env is None:
        if ckpt_cfg is None:
            raise UserInputError("--env is required without --ckpt")
        args.env = ckpt_cfg.env_id
    if args.benchmark and not args.ckpt:
        raise UserInputError("--benchmark needs --ckpt RUN_OR_CHECKPOINT (the agent it measures)")
    if args.benchmark:
        default = ",".join((ckpt_cfg.agent,) + BENCHMARK_BASELINES)
    else:
        default = f"{ckpt_cfg.agent},random,constant" if ckpt_cfg else "random,constant"
    methods = [m.strip() for m in (default if args.methods is None else args.methods).split(",") if m.strip()]
    if not methods:
        raise UserInputError(f"--methods {args.methods!r} names no method; known: {', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise UserInputError(f"--methods {args.methods!r} names a method twice")
    for m in methods:
        if m not in METHODS:
            raise UserInputError(f"unknown method {m!r}; known: {', '.join(METHODS)}")
    agent_methods = [m for m in methods if m in NEEDS_CHECKPOINT]
    if args.greedy and not agent_methods:
        raise UserInputError("--greedy applies to an agent's actions; --methods names no agent")
    if agent_methods and not args.ckpt:
        raise UserInputError(f"method(s) {agent_methods} need --ckpt RUN_OR_CHECKPOINT")
    for m in agent_methods:
        if m != ckpt_cfg.agent:
            raise UserInputError(f"method {m!r} needs a checkpoint of that agent preset; "
                                 f"{args.ckpt} holds a {ckpt_cfg.agent!r} agent")
    init_lrs = _floats(args.init_lrs, "init-lrs", allow_zero=True)
    scaled = [m for m in methods if m not in agent_methods and m not in LR_FREE_METHODS]
    if 0 in init_lrs and scaled:
        raise UserInputError(f"--init-lrs 0 would train nothing with {', '.join(scaled[:3])}"
                             f"{' ...' if len(scaled) > 3 else ''} (their rate is the initial LR times a "
                             f"schedule); an initial LR of 0 is for agents, which raise it")
    wds = _floats(args.wds, "wds", allow_zero=True)
    try:
        num_seeds = int(args.seeds or (5 if args.benchmark else 3))
    except ValueError:
        raise UserInputError(f"--seeds must be a positive integer, got {args.seeds!r}") from None
    if num_seeds < 1:
        raise UserInputError(f"--seeds must be a positive integer, got {num_seeds}")
    overrides = parse_overrides(args.set)
    allowed = {"tau", "episode_length", "n_val", "batch_size", "model_width"}
    if set(overrides) - allowed:
        raise UserInputError(f"--set accepts {', '.join(sorted(allowed))}; got {sorted(set(overrides) - allowed)}")
    env_cfg = {k: v for k, v in make_config(args.preset, args.env, overrides).env_overrides().items()
               if k in allowed}
    return Plan(methods=methods, agent_methods=agent_methods, init_lrs=init_lrs, wds=wds, num_seeds=num_seeds,
                env_cfg=env_cfg)


def _envs(args: argparse.Namespace, plan: Plan, policy):
    """(the rivals' env, the agent's env, params): the same task; the agent's is built as it was
    trained (observations, actions, base), both without a second branch (deployment)."""
    from ganno_jax.deploy.policy import check_layout
    from ganno_jax.env import make
    from ganno_jax.env.rewards import DEPLOYED_REWARD, NEEDS_NOOP_BRANCH
    from ganno_jax.trainer.config import AGENT_ENV_FIELDS

    ckpt_cfg = policy.config if policy else None
    # Otherwise the env measures as the agent was trained (a reward scored on one subset per
    # episode also fixes the validation subsets and the reset measurement).
    reward = ckpt_cfg.reward if ckpt_cfg and ckpt_cfg.reward not in NEEDS_NOOP_BRANCH else "accuracy"
    reward = DEPLOYED_REWARD.get(reward, reward)
    env, params = make(args.env, noop_branch=False, reward=reward, **plan.env_cfg)
    agent_env = env
    if plan.agent_methods:
        # The agent sees the env as it was trained to: its observation and action sets, one or many
        # agents, its base (subramanian2023 also brings its optimiser: it schedules plain SGD).
        trained = {k: getattr(ckpt_cfg, k) for k in AGENT_ENV_FIELDS}
        agent_env, _ = make(args.env, noop_branch=False, reward=reward, **trained, **plan.env_cfg)
        check_layout(policy, agent_env.obs_layout, args.env)
    lr_max = min(env.config.lr_max, agent_env.config.lr_max)
    if max(plan.init_lrs) > lr_max:
        raise UserInputError(f"--init-lrs {max(plan.init_lrs):g} is above lr_max={lr_max:g}, the largest LR "
                             f"the agents may set; raise lr_max (train with --set lr_max=...) to use it")
    return env, agent_env, params


def _run_methods(args, plan: Plan, env, agent_env, params, policy, reused: dict):
    """Runs (or reuses) every method over the grid; returns (CSV rows, curves)."""
    from ganno_jax.evaluation.controllers import LR_FREE_METHODS, METHODS, MethodContext
    from ganno_jax.evaluation.rollout import run_grid

    ctx = MethodContext(env.num_actions, policy, args.greedy)
    agent_ctx = MethodContext(agent_env.num_actions, policy, args.greedy)
    grid, first_lr = plan.grid, plan.init_lrs[0]
    inner_steps = env.config.tau * env.config.episode_length
    rows, curves = [], {}
    bar = _progress(len(plan.methods))
    for method in plan.methods:
        if method in reused:
            rows += reused[method][0]
            curves.update(reused[method][1])
            bar.update(1)
            continue
        method_env, method_ctx = (agent_env, agent_ctx) if method in plan.agent_methods else (env, ctx)
        # An LR-free method ignores the initial LR: one run per (wd, seed), shown in every LR column.
        lr_free = method in LR_FREE_METHODS
        cells = [g for g in grid if g[0] == first_lr] if lr_free else grid
        t0 = time.time()
        res = run_grid(method_env, METHODS[method](method_ctx), [g[2] for g in cells], [g[0] for g in cells],
                       [g[1] for g in cells], params)
        wall = (time.time() - t0) / len(cells)
        index = {g: i for i, g in enumerate(cells)}
        cell_of = lambda g: index[(first_lr, *g[1:]) if lr_free else g]  # noqa: E731
        for lr, wd, seed in grid:
            i = cell_of((lr, wd, seed))
            rows.append({"method": method, "env": args.env, "init_lr": lr, "weight_decay": wd,
                         "seed": seed, "test_accuracy": float(res.test_accuracy[i]),
                         "test_loss": float(res.test_loss[i]),
                         "final_val_accuracy": float(res.final_val_accuracy[i]),
                         "diverged": bool(res.diverged[i]), "inner_steps": inner_steps,
                         "wall_time_s": round(wall, 3)})
        for lr in plan.init_lrs:
            for wd in plan.wds:
                idx = [cell_of(g) for g in grid if g[:2] == (lr, wd)]
                curves[(method, lr, wd)] = {"lrs": res.lrs[idx], "val_accuracy": res.val_accuracy[idx],
                                            "test_accuracy": res.test_curve[idx]}
        bar.update(1)
        bar.set_postfix(method=method, s_per_run=f"{wall:.2f}")
    bar.close()
    return rows, curves


def _write_outputs(args, plan: Plan, env, rows, curves, protocol: dict, reused: dict) -> None:
    """results.csv, results.md, summary.json, curves.npz, plots and command.json (with the digests
    that let a later `--baselines-from` refuse a file changed since)."""
    from ganno_jax.evaluation import report, reuse
    from ganno_jax.evaluation.baselines import RIVAL_VERSIONS
    from ganno_jax.evaluation.controllers import LR_FREE_METHODS

    out = args.out
    inner_steps = env.config.tau * env.config.episode_length
    report.write_csv(os.path.join(out, "results.csv"), rows)
    title = (f"# {args.env} ({inner_steps} inner steps)\n\nckpt: {args.ckpt or '-'}; greedy: {args.greedy}; "
             f"tau {env.config.tau}, T {env.config.episode_length}; seeds {plan.num_seeds}")
    agent_method = plan.agent_methods[0] if plan.agent_methods else None
    summary = report.summary(rows, agent_method)
    for m in set(plan.methods) & LR_FREE_METHODS:  # its "tuned LR" is no choice: every column is one run
        summary["methods"][m]["lr_free"] = True
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(_tables(rows, title) + (report.questions_table(summary, agent_method) if agent_method else ""))
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    report.save_curves(os.path.join(out, "curves.npz"), curves)
    report.plot_grid(os.path.join(out, ""), curves, env.config.tau, args.env)
    digests = {name: reuse.sha256(os.path.join(out, name)) for name in reuse.REUSED_FILES}
    with open(os.path.join(out, "command.json"), "w") as f:
        json.dump({"argv": sys.argv, "args": vars(args), "protocol": protocol, "sha256": digests,
                   "rival_versions": {m: RIVAL_VERSIONS.get(m, 1) for m in plan.methods
                                      if m not in plan.agent_methods},
                   "reused_from": {m: origin for m, (_, _, origin) in reused.items()}}, f, indent=2)


def _progress(total: int):
    """A tqdm bar over methods (silenced by GANNO_NO_PROGRESS=1)."""
    from tqdm import tqdm

    return tqdm(total=total, unit="method", disable=envvars.flag("GANNO_NO_PROGRESS"))


def _tables(rows, title):
    """Test accuracy (the reported number) and final validation accuracy tables."""
    from ganno_jax.evaluation.report import markdown_table

    return markdown_table(rows, "test_accuracy", title) + markdown_table(rows, "final_val_accuracy")


def main(argv=None) -> int:
    return cli_main(run, parse_args(argv), "results: {}/results.md")


if __name__ == "__main__":
    sys.exit(main())
