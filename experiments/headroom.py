"""How much can corrections on top of a base gain? The ceiling of what an agent on that base can add.

    python experiments/headroom.py --bases constant,linear,wsd,schedule_free --out experiments/results/headroom
    python experiments/headroom.py --table experiments/results/headroom [...]   # the markdown table

An open-loop search, before any policy is trained: a correction is a table of log2-multipliers,
one per (phase of the run, layer group), applied to every layer's peak rate of the base (a layer's
rate is `init_lr × 2^c[phase, group] × unit(t)`, the quantity an agent's multiplier controls);
`c = 0` is the base itself. Per base and initial LR:
  1. random search: `--candidates` tables drawn uniformly in [`--low`, `--high`]^(phases × groups)
     (plus c = 0), each run on the selection seeds; the best by mean final validation accuracy
     (the whole validation split) is kept;
  2. refinement: `--refine` tables drawn around it (Gaussian, σ 0.35 in log2, clipped to the box);
  3. report: the selected table and the base, on fresh seeds (never seen by the selection), paired:
     test accuracy difference, mean and 95% CI. The selection seeds' gain is reported too (it is
     optimistic: the maximum of many noisy means).
Cells are the benchmark's (`make benchmark`): the env's reset for each seed fixes the network
initialisation, minibatch order and validation subset, identical for every candidate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from ganno_jax import make  # noqa: E402
from ganno_jax.evaluation.report import paired  # noqa: E402
from ganno_jax.inner import optim  # noqa: E402

# The benchmark's protocol (README "Benchmark"; cpu preset): 1,000 AdamW steps, wd 0.1.
PROTOCOL = dict(tau=25, episode_length=40, n_val=1024, reward="telescoping_accuracy", action_set="log",
                lr_min=1e-5)


def layer_groups(num_layers: int, groups: str) -> np.ndarray:
    """(num_layers,) group index per layer: "body_head" (all but the last, the last) or "each"."""
    if groups == "each":
        return np.arange(num_layers)
    return np.array([0] * (num_layers - 1) + [1])


def open_loop_rollout(env, phases: int, group_of_layer: np.ndarray):
    """`rollout(key, params, log2_mult (phases, groups)) -> (final val acc, test acc, diverged)`,
    on the key schedule of `evaluation.rollout.make_rollout` (same cells as the benchmark)."""
    T = env.config.episode_length
    phase_of_t = jnp.asarray((np.arange(T) * phases) // T)
    group = jnp.asarray(group_of_layer)
    noop = jnp.zeros((env.num_agents(),), jnp.int32)

    def rollout(key, params, log2_mult):
        reset_key, run_key = jax.random.split(key)
        _, state = env.reset(reset_key, params)

        def body(state, inp):
            step_key, t = inp
            _, env_key = jax.random.split(step_key)  # as _agent_block: (act_key, env_key)
            peaks = state.init_lr * 2.0 ** log2_mult[phase_of_t[t], group]
            state = state.replace(inner=state.inner.replace(
                opt_state=optim.set_learning_rates(state.inner.opt_state, peaks)))
            _, state, _, _, info = env.step_env(env_key, state, noop, params)
            return state, info["diverged"]

        state, diverged = jax.lax.scan(body, state, (jax.random.split(run_key, T), jnp.arange(T)))
        val = env.task.evaluate(state.inner, params.data.x_val, params.data.y_val)
        test = env.task.evaluate(state.inner, params.data.x_test, params.data.y_test)
        bad = diverged.any() | ~jnp.isfinite(val.loss) | ~jnp.isfinite(test.loss)
        chance = 1.0 / env.task.num_classes
        return jnp.where(bad, chance, val.accuracy), jnp.where(bad, chance, test.accuracy), bad

    return rollout


def run_cells(fn, params, lr: float, wd: float, tables: np.ndarray, seeds: list[int], chunk: int):
    """Every table on every seed; returns (val, test) of shape (len(tables), len(seeds)), in %."""
    cells = [(i, s) for i in range(len(tables)) for s in seeds]
    val, test = np.zeros(len(cells)), np.zeros(len(cells))
    for lo in range(0, len(cells), chunk):
        part = cells[lo:lo + chunk]
        keys = jnp.stack([jax.random.PRNGKey(s) for _, s in part])
        mults = jnp.asarray(np.stack([tables[i] for i, _ in part]), jnp.float32)
        v, t, _ = fn(keys, params, mults)
        val[lo:lo + len(part)], test[lo:lo + len(part)] = 100 * np.asarray(v), 100 * np.asarray(t)
    return val.reshape(len(tables), len(seeds)), test.reshape(len(tables), len(seeds))


def search(fn, params, lr, wd, shape, args, rng, log):
    sel_seeds = list(range(args.select_seeds))
    tables = np.concatenate([np.zeros((1, *shape)), rng.uniform(args.low, args.high, (args.candidates, *shape))])
    val, _ = run_cells(fn, params, lr, wd, tables, sel_seeds, args.chunk)
    best = int(np.argmax(val.mean(1)))
    log(f"    random: best of {len(tables)} val {val[best].mean():.2f} (base {val[0].mean():.2f})")
    if args.refine:
        near = np.clip(tables[best] + rng.normal(0, 0.35, (args.refine, *shape)), args.low, args.high)
        v2, _ = run_cells(fn, params, lr, wd, near, sel_seeds, args.chunk)
        tables, val = np.concatenate([tables, near]), np.concatenate([val, v2])
        best = int(np.argmax(val.mean(1)))
        log(f"    refined: best of {len(tables)} val {val[best].mean():.2f}")
    fresh = list(range(100, 100 + args.test_seeds))
    fv, ft = run_cells(fn, params, lr, wd, np.stack([np.zeros(shape), tables[best]]), fresh, args.chunk)
    return {"init_lr": lr, "table_log2": tables[best].tolist(), "selection_val_gain": float(val[best].mean() - val[0].mean()),
            "base_test": float(ft[0].mean()), "corrected_test": float(ft[1].mean()),
            "base_val": float(fv[0].mean()), "corrected_val": float(fv[1].mean()),
            "test_gain": paired(ft[1] - ft[0]), "val_gain": paired(fv[1] - fv[0]),
            "runs": int(val.size + ft.size)}


def table(folders: list[str]) -> str:
    """Markdown of every result in `folders`' headroom.json."""
    out = ["| base | init LR | search (phases × groups, bounds) | runs | base, fresh seeds | corrected | "
           "gain [95% CI] | selection seeds' val gain |", "|---|---|---|---|---|---|---|---|"]
    for folder in folders:
        with open(os.path.join(folder, "headroom.json")) as f:
            data = json.load(f)
        a = data["args"]
        for r in data["results"]:
            g = r["test_gain"]
            shape = f"{a['phases']} × {a['groups']}, log2 [{a['low']:g}, {a['high']:g}]"
            out.append(f"| {r['base']} | {r['init_lr']:g} | {shape} | {r['runs']} | {r['base_test']:.2f} | "
                       f"{r['corrected_test']:.2f} | {g['mean_diff']:+.2f} [{g['ci95'][0]:+.2f}, {g['ci95'][1]:+.2f}] | "
                       f"{r['selection_val_gain']:+.2f} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--table":
        sys.stdout.write(table(sys.argv[2:]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="mlp_fmnist")
    ap.add_argument("--bases", default="constant,linear,wsd,schedule_free")
    ap.add_argument("--init-lrs", default="tuned", help="comma list, or 'tuned': each base's benchmark-tuned LR")
    ap.add_argument("--tuned-from", default="experiments/results/rivals/bench_default_mlp_fmnist/summary.json")
    ap.add_argument("--phases", type=int, default=4)
    ap.add_argument("--groups", default="body_head", choices=("body_head", "each"))
    ap.add_argument("--low", type=float, default=-1.0, help="log2 multiplier bounds")
    ap.add_argument("--high", type=float, default=1.0)
    ap.add_argument("--candidates", type=int, default=32)
    ap.add_argument("--refine", type=int, default=16)
    ap.add_argument("--select-seeds", type=int, default=3)
    ap.add_argument("--test-seeds", type=int, default=5)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--chunk", type=int, default=48, help="runs per compiled call")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    tuned = {}
    if args.init_lrs == "tuned":
        with open(args.tuned_from) as f:
            tuned = {m: v["tuned_init_lr"] for m, v in json.load(f)["methods"].items()}
    logf = open(os.path.join(args.out, "log.txt"), "a")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    log(f"$ python experiments/headroom.py {' '.join(argv or sys.argv[1:])}")
    results = []
    rng = np.random.default_rng(args.seed)
    for base in args.bases.split(","):
        env, params = make(args.env, base=base, **PROTOCOL)
        groups = layer_groups(env.task.num_layers, args.groups)
        shape = (args.phases, int(groups.max()) + 1)
        fn = jax.jit(jax.vmap(open_loop_rollout(env, args.phases, groups), in_axes=(0, None, 0)))
        lrs = [tuned[base]] if args.init_lrs == "tuned" else [float(x) for x in args.init_lrs.split(",")]
        for lr in lrs:
            t0 = time.time()
            p = params.replace(init_lr_low=jnp.float32(lr), init_lr_high=jnp.float32(lr),
                               wd_low=jnp.float32(args.wd), wd_high=jnp.float32(args.wd))
            log(f"{base} at init LR {lr:g}:")
            r = search(fn, p, lr, args.wd, shape, args, rng, log)
            r.update(base=base, seconds=round(time.time() - t0, 1))
            g = r["test_gain"]
            log(f"    fresh seeds: base {r['base_test']:.2f}, corrected {r['corrected_test']:.2f}, gain "
                f"{g['mean_diff']:+.2f} [{g['ci95'][0]:+.2f}, {g['ci95'][1]:+.2f}] ({r['seconds']:.0f} s, "
                f"{r['runs']} runs); table {np.round(r['table_log2'], 2).tolist()}")
            results.append(r)
            with open(os.path.join(args.out, "headroom.json"), "w") as f:
                json.dump({"args": vars(args), "protocol": PROTOCOL, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
