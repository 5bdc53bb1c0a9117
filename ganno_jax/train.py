"""Train a GANNO agent: `python -m ganno_jax.train --env mlp_fmnist --preset cpu --out DIR`.

The host loop calls the compiled chunk of IPPO updates repeatedly; after each chunk it saves an
Orbax checkpoint, then appends that chunk's metrics (JSONL + TensorBoard), plots finished
episodes' LR schedules and updates the progress bar. Bad input → one line on stderr and exit
status 2, with nothing written: every check (flags, data, a resumed checkpoint) runs before the
run folder is touched.

Resume (`--resume`): the run continues from its last checkpoint with its saved config. A flag
that contradicts the saved run (another --env, --agent, --preset, --seed, or a --set value that
differs) is refused. `RESUMABLE` settings may change: `total_env_steps` (to train longer) and
`updates_per_chunk`. Outputs past the restored update (metrics rows, TensorBoard events, episode
plots) are removed, so every update appears once.
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
from ganno_jax.errors import UserInputError, cli_main, create_out_dir, remove_created
from ganno_jax.trainer.config import AGENTS, PRESETS, config_from_json, make_config, parse_overrides

RESUMABLE = ("total_env_steps", "updates_per_chunk")
SEED_RANGE = (0, 2**32 - 1)


class TrainingFailed(Exception):
    """The run cannot go on (the agent's loss became non-finite); the last good checkpoint stays."""


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m ganno_jax.train", description=__doc__.splitlines()[0])
    ap.add_argument("--env", default=None, help="environment id, e.g. mlp_fmnist (default cnn2_fmnist)")
    ap.add_argument("--preset", default=None, help=f"one of {', '.join(PRESETS)} (default cpu)")
    ap.add_argument("--agent", default=None, help=f"one of {', '.join(AGENTS)} (default ganno)")
    ap.add_argument("--seed", default=None, help="integer seed in [0, 2^32) (default 0)")
    ap.add_argument("--out", required=True, help="run folder (must not exist unless --resume)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, e.g. --set total_env_steps=1024")
    dist = ap.add_argument_group("several processes (JAX's distributed runtime; README 'Beyond one machine')")
    dist.add_argument("--distributed", action="store_true",
                      help="initialise jax.distributed: env copies are sharded over every device of every process")
    dist.add_argument("--coordinator", default=os.environ.get("JAX_COORDINATOR_ADDRESS"),
                      help="HOST:PORT of process 0 (default $JAX_COORDINATOR_ADDRESS)")
    dist.add_argument("--num-processes", default=os.environ.get("JAX_NUM_PROCESSES"),
                      help="number of processes (default $JAX_NUM_PROCESSES)")
    dist.add_argument("--process-id", default=os.environ.get("JAX_PROCESS_ID"),
                      help="this process's index, 0 writes the logs (default $JAX_PROCESS_ID)")
    return ap.parse_args(argv)


def init_distributed(args: argparse.Namespace) -> None:
    """`jax.distributed.initialize` from the flags (CPU collectives over gloo); bad values are
    UserInputErrors. Must run before JAX touches a device."""
    if not args.distributed:
        return
    try:
        n, pid = int(args.num_processes), int(args.process_id)
    except (TypeError, ValueError):
        raise UserInputError("--distributed needs --num-processes and --process-id (integers) or "
                             "$JAX_NUM_PROCESSES and $JAX_PROCESS_ID") from None
    host, _, port = (args.coordinator or "").rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UserInputError(f"--distributed needs --coordinator HOST:PORT with a port in 1..65535 "
                             f"(or $JAX_COORDINATOR_ADDRESS), got {args.coordinator!r}")
    if not 0 <= pid < n:
        raise UserInputError(f"--process-id must be in [0, {n}), got {pid}")
    if pid != 0:  # process 0 starts the coordinator; the others wait for it here, not in XLA's abort
        _wait_for_coordinator(host.strip("[]"), int(port))
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # A process that stops answering is declared dead within this many seconds, so the others
    # stop with an error instead of waiting in a collective forever.
    heartbeat = envvars.number("GANNO_HEARTBEAT_TIMEOUT", 30, integer=True)
    jax.distributed.initialize(args.coordinator, num_processes=n, process_id=pid,
                               heartbeat_timeout_seconds=heartbeat, initialization_timeout=120)


def _wait_for_coordinator(host: str, port: int) -> None:
    """Returns once HOST:PORT accepts a TCP connection; UserInputError after
    $GANNO_COORDINATOR_TIMEOUT seconds (default 120). Without this, a process whose coordinator
    never appears is aborted by XLA after its initialization timeout (exit 134, a page of log)."""
    import socket
    import time

    timeout = envvars.number("GANNO_COORDINATOR_TIMEOUT", 120.0)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise UserInputError(f"no coordinator answered at {host}:{port} within {timeout:g} s; start "
                                     f"process 0 first (or set GANNO_COORDINATOR_TIMEOUT)") from None
            time.sleep(0.5)


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise UserInputError(f"--seed must be an integer, got {text!r}") from None
    if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise UserInputError(f"--seed must be in [0, 2^32 - 1], got {text}")
    return seed


def resolve_config(args: argparse.Namespace):
    """The run's config: preset + flags, or, with --resume, the saved one with the resumable
    settings changed (contradicting flags are refused). Writes nothing."""
    overrides = parse_overrides(args.set)
    config_path = os.path.join(args.out, "config.json")
    if not args.resume:
        if os.path.exists(args.out):
            raise UserInputError(f"run folder {args.out} already exists; pass --resume to continue it "
                                 f"or choose another --out")
        return make_config(args.preset or "cpu", args.env or "cnn2_fmnist", overrides,
                           agent=args.agent or "ganno", seed=_seed(args.seed or "0"))
    if not os.path.exists(config_path):
        raise UserInputError(f"--resume: {args.out} is not a run folder (no config.json)")
    try:
        with open(config_path) as f:
            saved = config_from_json(f.read())
    except (ValueError, TypeError) as e:
        raise UserInputError(f"--resume: {config_path} is not a readable config: {e}") from None
    given = {"env": (args.env, saved.env_id), "agent": (args.agent, saved.agent),
             "preset": (args.preset, saved.preset), "seed": (args.seed, str(saved.seed))}
    for flag, (value, old) in given.items():
        if value is not None and str(value) != str(old):
            raise UserInputError(f"--resume: --{flag} {value} contradicts the saved run's {old}; "
                                 f"a resumed run keeps its {flag}")
    # What the overrides would make of the saved config; only RESUMABLE fields may differ.
    fields = {k: v for k, v in dataclasses.asdict(saved).items() if k not in overrides and k not in ("env_id", "preset")}
    wanted = make_config(saved.preset, saved.env_id, overrides, **fields)
    for key in overrides:
        if key not in RESUMABLE and getattr(wanted, key) != getattr(saved, key):
            raise UserInputError(f"--resume: --set {key}={getattr(wanted, key)} contradicts the saved "
                                 f"run's {getattr(saved, key)}; on resume only "
                                 f"{', '.join(RESUMABLE)} may change")
    return wanted


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


def _plot_update(name: str) -> int:
    """The update that wrote `plots/episode_NNNN_uUUUUU.png`."""
    return int(name.rsplit("_u", 1)[1].split(".")[0])


def _truncate_plots(plots_dir: str, update: int) -> int:
    """Removes episode plots written after `update`; returns how many remain."""
    kept = 0
    for name in os.listdir(plots_dir):
        if name.startswith("episode_"):
            if _plot_update(name) > update:
                os.remove(os.path.join(plots_dir, name))
            else:
                kept += 1
    return kept


def run(args: argparse.Namespace) -> str:
    leader = not args.distributed or int(args.process_id or 0) == 0
    config = resolve_config(args) if leader or args.resume else None
    init_distributed(args)
    if args.distributed:  # the leader checked the folder; the others read the config it will write
        config = config or _sync_config(args)
    created = [] if args.resume or not leader else create_out_dir(args.out)
    try:
        return _train(args, config, leader)
    except UserInputError:
        remove_created(created)  # a refused fresh run leaves nothing behind
        raise
    except KeyboardInterrupt:
        # Stopped before its first checkpoint, a fresh run holds nothing to resume: leave no
        # folder that would block running the same command again. With a checkpoint it stays.
        from ganno_jax.trainer import checkpoint

        if created and checkpoint.latest_step(args.out) is None:
            remove_created(created)
        raise


def _sync_config(args):
    """On processes other than 0 of a fresh distributed run: the config from the same flags, built
    without the run folder check (process 0 makes and owns the folder)."""
    return make_config(args.preset or "cpu", args.env or "cnn2_fmnist", parse_overrides(args.set),
                       agent=args.agent or "ganno", seed=_seed(args.seed or "0"))


def _train(args: argparse.Namespace, config, leader: bool) -> str:
    import jax
    from jax.experimental import multihost_utils
    from ganno_jax.env import make
    from ganno_jax.trainer import checkpoint
    from ganno_jax.trainer.anakin import host_local, make_trainer
    from ganno_jax.trainer.runlog import RunLogger, plot_episode

    env, env_params = make(config.env_id, **config.env_overrides())
    quiet = envvars.flag("GANNO_NO_PROGRESS") or not leader
    progress = StepProgress(config, len(jax.local_devices()), jax.process_count(), disable=quiet)
    trainer = make_trainer(config, env, env_params, progress=None if quiet else progress)
    env_params = trainer.params
    runner = trainer.init(jax.random.PRNGKey(config.seed))
    resuming = args.resume and checkpoint.latest_step(args.out) is not None
    start_policy = _start_policy(config, env, env_params) if not resuming else None
    meta = {"config": json.loads(config.to_json()), "obs_layout": env.obs_layout,
            "num_agents": env.num_agents(env_params), "num_actions": env.num_actions,
            "env_id": config.env_id}
    if args.resume and checkpoint.latest_step(args.out) is not None:
        runner, saved = checkpoint.restore_runner(checkpoint.manager(args.out), runner, trainer.shardings)
        if saved.get("obs_layout") != env.obs_layout:
            raise UserInputError("the checkpoint's observation layout differs from this version's")
        if int(host_local(runner.update)) > config.num_updates:
            raise UserInputError(f"--resume: the run has done {int(host_local(runner.update))} updates, more than "
                                 f"total_env_steps={config.total_env_steps} gives ({config.num_updates})")
    # Everything is checked: from here on the run folder is written (by process 0 only, except
    # for the checkpoints, which every process writes its shards of).
    if args.distributed:
        multihost_utils.sync_global_devices("run folder ready")
    mngr = checkpoint.manager(args.out)
    start = int(host_local(runner.update))
    if start_policy is not None and start == 0:
        runner = runner.replace(agent=_warm_start(runner.agent, start_policy, trainer.mesh))
    if config.pretrain == "bc" and start == 0:
        runner = runner.replace(agent=_pretrain(args.out if leader else None, config, env, env_params,
                                                runner.agent, trainer.mesh))
    plots_dir = os.path.join(args.out, "plots")
    logger = _Quiet()
    if leader:
        os.makedirs(plots_dir, exist_ok=True)
        with open(os.path.join(args.out, "config.json"), "w") as f:
            f.write(config.to_json())
        logger = RunLogger(args.out)
        if args.resume:
            logger.truncate_after(start)
    tracker = EpisodeTracker(_truncate_plots(plots_dir, start) if leader else 0)
    work = 2 if env.config.noop_branch or env.config.base_branch else 1  # inner steps of work per acting one
    progress.start(start)
    t0 = time.time()
    done_updates = start
    while done_updates < config.num_updates:
        n = min(config.updates_per_chunk, config.num_updates - done_updates)
        runner, (metrics, traces) = trainer.run_updates(runner, env_params, n)
        metrics, traces = host_local((metrics, traces))
        elapsed = time.time() - t0
        bad = [i for i in range(n) if not np.isfinite(metrics["loss"][i])]
        if bad:  # keep the last good checkpoint; write nothing of this chunk
            raise TrainingFailed(
                f"the agent's loss became non-finite at update {done_updates + bad[0] + 1}; the last "
                f"good checkpoint is update {done_updates} in {args.out} (lower lr or check the env)")
        checkpoint.save(mngr, done_updates + n, runner, meta, write_manifest=leader)
        for i in range(n if leader else 0):
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
                plot_episode(os.path.join(plots_dir, f"episode_{tracker.count:04d}_u{update:05d}.png"),
                             lrs, acc, config.tau,
                             f"{config.env_id}: env 0, episode {tracker.count} (update {update})")
        done_updates += n
        progress.chunk_done(done_updates, reward=float(metrics["reward"][-1]), work=work)
    progress.close()
    logger.close()
    mngr.close()
    if args.distributed:
        multihost_utils.sync_global_devices("run finished")
    return args.out


class StepProgress:
    """The training progress bar, in env steps (of each env copy), ticked from inside the compiled
    loop after every env step (`make_trainer(progress=...)`) so it moves within an update, at most
    once a second. Until the first tick the program is compiling, and the bar says so; the clock
    (and so the ETA) restarts at the first tick."""

    def __init__(self, config, num_local_devices: int, num_processes: int, disable: bool):
        import threading

        from tqdm import tqdm

        # Each local device reports its own env copies; other processes' copies end episodes alike.
        self.config, self.devices, self.processes = config, num_local_devices, num_processes
        self.lock = threading.Lock()
        self.bar = tqdm(total=config.num_updates * config.rollout_len, unit="env step", dynamic_ncols=True,
                        disable=disable, desc="compiling the first update")
        self.steps, self.episodes, self.shown, self.last, self.first = 0.0, 0.0, 0, 0.0, True
        self.postfix: dict = {}  # what the last finished chunk reported (update, rates, reward)

    def start(self, updates_done: int) -> None:
        self.steps = float(updates_done * self.config.rollout_len)
        self.bar.n = self.shown = int(self.steps)
        self.bar.refresh()

    def __call__(self, episodes_ended) -> None:
        """One env step of one device's env copies (called by jax.debug.callback)."""
        with self.lock:
            self.steps += 1.0 / self.devices
            self.episodes += float(episodes_ended)
            now = time.time()
            if self.first:
                self.first = False
                self.bar.set_description("training")
                self.bar.reset(total=self.bar.total)  # the ETA counts from here, not from compile
                self.bar.n = self.shown = int(self.steps)
            if now - self.last >= 1.0:
                self._show(now)

    def _show(self, now: float) -> None:
        self.last = now
        self.bar.update(int(self.steps) - self.shown)
        self.shown = int(self.steps)
        self.bar.set_postfix(self.postfix, episodes=int(self.episodes * self.processes), refresh=False)

    def chunk_done(self, updates_done: int, reward: float, work: int) -> None:
        with self.lock:
            self._show(time.time())
            rate = self.bar.format_dict["rate"] or 0.0  # env steps per second of each env copy
            self.postfix = {"update": f"{updates_done}/{self.config.num_updates}",
                            "inner_steps_s": f"{rate * self.config.num_envs * self.config.tau * work:.0f}",
                            "reward": f"{reward:.4f}"}
            self.bar.set_postfix(self.postfix, episodes=int(self.episodes * self.processes))

    def close(self) -> None:
        self.bar.close()


class _Quiet:
    """The logger of processes other than 0: they log nothing."""

    def write(self, row):
        pass

    def close(self):
        pass


def _start_policy(config, env, env_params):
    """The policy `config.init_from` names (None for "none"), checked against this run's env:
    the same observation layout and action set (UserInputError otherwise, before anything is
    written)."""
    if config.init_from == "none":
        return None
    from ganno_jax.deploy.policy import check_layout, load_policy, pretrained

    source = config.init_from
    if source == "pretrained" or source.startswith("pretrained:"):
        policy = pretrained(source.partition(":")[2] or "default")
    else:
        policy = load_policy(source)
    check_layout(policy, env.obs_layout, f"init_from={source}: this run's env")
    if policy.num_actions != env.num_actions or policy.config.action_set != config.action_set:
        raise UserInputError(f"init_from={source}: its action set ({policy.config.action_set}, "
                             f"{policy.num_actions} actions) is not this run's ({config.action_set})")
    return policy


def _warm_start(agent, policy, mesh):
    """`agent` with the actor and observation normaliser of `policy` (the critic, the value
    normaliser and the optimiser state start fresh), replicated over the mesh."""
    from ganno_jax.parallel import replicate
    from ganno_jax.trainer.anakin import host_local

    agent = host_local(agent).replace(actor_params=policy.actor_params, obs_stats=policy.obs_stats)
    return replicate(agent, mesh)


def _pretrain(run_dir: str | None, config, env, env_params, agent, mesh):
    """Behaviour cloning on demonstrations of `config.bc_schedules` (written to `demos/`, the
    cloning's per-epoch loss to `bc.json`, when `run_dir` is given); returns the cloned agent
    replicated over the mesh. Every process computes the same clone."""
    import jax

    from ganno_jax.trainer import bc, demos
    from ganno_jax.parallel import replicate
    from ganno_jax.trainer.anakin import host_local

    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0xBC)
    demo_key, bc_key = jax.random.split(key)
    names = tuple(config.bc_schedules.split(","))
    t0 = time.time()
    all_demos = demos.generate_all(env, env_params, names, config.bc_episodes, demo_key,
                                   run_dir and os.path.join(run_dir, "demos"))
    agent = host_local(agent)
    cloned, hist = bc.behaviour_clone(agent, list(all_demos.values()), env.num_actions, bc_key,
                                      config.bc_epochs, config.bc_lr)
    report = {"schedules": list(names), "episodes_per_schedule": config.bc_episodes,
              "demo_env_steps": len(names) * config.bc_episodes * config.episode_length,
              "seconds": round(time.time() - t0, 1),
              "tracking_log10_error": {n: float(d["log10_error"].mean()) for n, d in all_demos.items()},
              "loss": [float(x) for x in hist["loss"]], "accuracy": [float(x) for x in hist["accuracy"]]}
    if run_dir:
        with open(os.path.join(run_dir, "bc.json"), "w") as f:
            json.dump(report, f, indent=1)
    return replicate(cloned, mesh)


def main(argv=None) -> int:
    try:
        return cli_main(run, parse_args(argv), "run folder: {}")
    except TrainingFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001
        if not _peer_failure(e):
            raise
        print(f"error: lost another process of the distributed run ({e.__class__.__name__}: "
              f"{str(e).strip().splitlines()[0][:160]}); resume with --resume from the last checkpoint",
              file=sys.stderr)
        return 1


def _peer_failure(e: Exception) -> bool:
    """An error raised because another process of a distributed run died or stopped answering."""
    import jax

    if jax.process_count() < 2:
        return False
    text = str(e).lower()
    return any(w in text for w in ("gloo", "connection", "heartbeat", "peer", "unavailable", "barrier",
                                   "deadline", "coordination"))


if __name__ == "__main__":
    sys.exit(main())
