"""Train a GANNO agent: `python -m ganno_jax.train --env cnn2_fmnist --preset cpu --out DIR`.

The host loop calls the compiled chunk of IPPO updates repeatedly; between chunks it appends
metrics (JSONL + TensorBoard), saves an Orbax checkpoint, plots finished episodes' LR schedules
and updates the progress bar. Bad input → one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from ganno_jax.errors import UserInputError, cli_main
from ganno_jax.trainer.config import AGENTS, PRESETS, config_from_json, make_config


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m ganno_jax.train", description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="cnn2_fmnist", help="environment id, e.g. cnn2_fmnist")
    ap.add_argument("--preset", default="cpu", help=f"one of {', '.join(PRESETS)}")
    ap.add_argument("--agent", default="ganno", help=f"one of {', '.join(AGENTS)}")
    ap.add_argument("--seed", default="0", help="integer seed")
    ap.add_argument("--out", required=True, help="run folder (must not exist unless --resume)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, e.g. --set total_env_steps=1024")
    return ap.parse_args(argv)


def resolve_config(args: argparse.Namespace):
    """The run's config: from the run folder when resuming, else preset + flags."""
    config_path = os.path.join(args.out, "config.json")
    if args.resume:
        if not os.path.exists(config_path):
            raise UserInputError(f"--resume: {args.out} is not a run folder (no config.json)")
        with open(config_path) as f:
            return config_from_json(f.read())
    if os.path.exists(args.out):
        raise UserInputError(f"run folder {args.out} already exists; pass --resume to continue it "
                             f"or choose another --out")
    try:
        seed = int(args.seed)
    except ValueError:
        raise UserInputError(f"--seed must be an integer, got {args.seed!r}") from None
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserInputError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return make_config(args.preset, args.env, overrides, agent=args.agent, seed=seed)


class EpisodeTracker:
    """Stitches env 0's per-update traces into whole episodes for plotting."""

    def __init__(self, count: int = 0):
        self.lrs, self.acc, self.count = [], [], count

    def feed(self, lrs: np.ndarray, acc: np.ndarray, done: np.ndarray):
        """Yields (lrs (T, A), val_accuracy (T,)) for each episode that ends in this trace."""
        for i in range(len(done)):
            self.lrs.append(lrs[i])
            self.acc.append(acc[i])
            if done[i]:
                self.count += 1
                yield np.stack(self.lrs), np.asarray(self.acc)
                self.lrs, self.acc = [], []


def run(args: argparse.Namespace) -> str:
    config = resolve_config(args)
    import jax
    from tqdm import tqdm

    from ganno_jax.env import make
    from ganno_jax.trainer import checkpoint
    from ganno_jax.trainer.anakin import make_trainer
    from ganno_jax.trainer.runlog import RunLogger, plot_episode

    env, env_params = make(config.env_id, **config.env_overrides())
    trainer = make_trainer(config, env, env_params)
    os.makedirs(os.path.join(args.out, "plots"), exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        f.write(config.to_json())
    mngr = checkpoint.manager(args.out)
    runner = trainer.init(jax.random.PRNGKey(config.seed))
    logger = RunLogger(args.out)
    meta = {"config": json.loads(config.to_json()), "obs_layout": env.obs_layout,
            "num_agents": env.num_agents(env_params), "num_actions": env.num_actions,
            "env_id": config.env_id}
    if args.resume and mngr.latest_step() is not None:
        runner, saved = checkpoint.restore_runner(mngr, runner, trainer.shardings)
        if saved.get("obs_layout") != env.obs_layout:
            raise UserInputError("the checkpoint's observation layout differs from this version's")
        logger.truncate_after(int(runner.update))
    start = int(runner.update)
    # On resume, number new episodes after those already plotted (an episode cut by the
    # interruption is not plotted: its first part was not kept).
    plotted = [f for f in os.listdir(os.path.join(args.out, "plots")) if f.startswith("episode_")]
    tracker = EpisodeTracker(len(plotted))
    work = 2 if env.config.noop_branch else 1  # inner steps of work per action-branch inner step
    bar = tqdm(total=config.num_updates, initial=start, unit="update", dynamic_ncols=True,
               disable=os.environ.get("GANNO_NO_PROGRESS") == "1")
    t0 = time.time()
    done_updates = start
    while done_updates < config.num_updates:
        n = min(config.updates_per_chunk, config.num_updates - done_updates)
        runner, (metrics, traces) = trainer.run_updates(runner, env_params, n)
        metrics = jax.device_get(metrics)
        traces = jax.device_get(traces)
        elapsed = time.time() - t0
        for i in range(n):
            update = done_updates + i + 1
            env_steps = update * config.env_steps_per_update
            row = {"update": update, "env_steps": env_steps, "inner_steps": env_steps * config.tau,
                   "wall_s": round(elapsed, 2)}
            row.update({k: float(v[i]) for k, v in metrics.items()})
            row["final_val_accuracy"] = (row.pop("final_val_accuracy_sum") / row["episodes"]
                                         if row["episodes"] else None)
            logger.write(row)
            for lrs, acc in tracker.feed(traces["lrs"][0, i], traces["val_accuracy"][0, i],
                                         traces["done"][0, i]):
                plot_episode(os.path.join(args.out, "plots", f"episode_{tracker.count:04d}.png"),
                             lrs, acc, config.tau,
                             f"{config.env_id}: env 0, episode {tracker.count} (update {update})")
        done_updates += n
        checkpoint.save(mngr, done_updates, runner, meta)
        rate = (done_updates - start) * config.env_steps_per_update / max(elapsed, 1e-9)
        bar.set_postfix(env_steps_s=f"{rate:.1f}", inner_steps_s=f"{rate * config.tau * work:.0f}",
                        reward=f"{metrics['reward'][-1]:.4f}")
        bar.update(n)
    bar.close()
    logger.close()
    mngr.close()
    return args.out


def main(argv=None) -> int:
    return cli_main(run, parse_args(argv), "run folder: {}")


if __name__ == "__main__":
    sys.exit(main())
