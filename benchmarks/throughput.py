"""Plain vs deployment vs training throughput, scaling, FLOP efficiency (SPEC §7), as one JSON.

Usage: python -m benchmarks.throughput [--preset smoke|cpu|gpu] [--out FILE]   (or `make bench`)

Counts (SPEC §1). Every `*_inner_steps_per_s` counts inner steps (one optimiser update of the
network on one minibatch of 128):
  plain   a jitted `optax.adamw` scan over pre-batched minibatches of the same model code;
  deploy  GANNO deployment: a (freshly initialised, fixed) recurrent policy acts every `tau` inner
          steps through `env.step_env` without the no-op branch (`ratio_deploy` = deploy / plain);
  train   the full IPPO trainer (`run_updates`: rollout with both branches, GAE, PPO epochs); the
          no-op branch's steps count as work (`ratio_train` = train / plain; its physical ceiling
          is 1.0, and 0.5 counting action-branch steps only). `train_env_steps_per_s` counts env
          steps (tau inner steps of the action branch each).
Medians over repeats; the first call (compile + run) is timed apart as `compile_s`. Data are
synthetic arrays of the datasets' shapes: throughput does not depend on their values.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp

from benchmarks.common import device_info, emit_json, time_fn
from benchmarks.inner_step import plain_loop
from benchmarks.roofline import roofline
from benchmarks.user_loop import measure_user_loop

PRESETS = {
    # Seconds: the test checks the JSON fields with it (mlp: the cheapest model to compile).
    "smoke": dict(models=("mlp",), tau=2, env_steps=2, n_train=1024, n_val=64, repeats=1,
                  scaling_envs=(1, 2), devices=(), torch=False, deploy_taus=(4,),
                  user_loop_steps=50, roofline_matmul=256, roofline_conv=(8, 16, 16)),
    # The development CPU (2 cores): tau 20 keeps one repeat of cnn5 under a minute; deployment is
    # also measured at the paper's tau 100. Medians of 5 repeats (repeat-to-repeat noise is ±10 %).
    "cpu": dict(models=("cnn2", "cnn5"), tau=20, env_steps=4, n_train=50_000, n_val=512, repeats=5,
                scaling_envs=(1, 2, 4, 8), devices=(1, 2), torch=True, deploy_taus=(100,),
                user_loop_steps=1000, roofline_matmul=2048, roofline_conv=(128, 28, 64)),
    # An accelerator at the paper's tau.
    "gpu": dict(models=("cnn2", "cnn5"), tau=100, env_steps=8, n_train=50_000, n_val=2048, repeats=3,
                scaling_envs=(1, 2, 4, 8, 16, 32, 64), devices=(), torch=True, deploy_taus=(),
                user_loop_steps=1000, roofline_matmul=8192, roofline_conv=(256, 56, 128)),
}
INPUT_SHAPE = (28, 28, 1)  # Fashion-MNIST / MNIST
BATCH = 128


def synthetic_env(model_name: str, p: dict, noop: bool, tau: int | None = None):
    """An env of `model_name` on random arrays of Fashion-MNIST's shapes."""
    from ganno_jax.env import make_env
    from ganno_jax.inner.models import MODELS
    from ganno_jax.inner.task import TaskData

    kx, ky = jax.random.split(jax.random.PRNGKey(0))
    n = p["n_train"]
    x = jax.random.normal(kx, (n, *INPUT_SHAPE))
    y = jax.random.randint(ky, (n,), 0, 10)
    data = TaskData(x, y, x[: 4 * p["n_val"]], y[: 4 * p["n_val"]], x[:1000], y[:1000])
    return make_env(MODELS[model_name](num_classes=10), data, tau=tau or p["tau"], episode_length=10_000,
                    n_val=p["n_val"], batch_size=BATCH, noop_branch=noop,
                    reward="difference_accuracy" if noop else "accuracy")


def plain_batches(x_train, y_train, steps: int):
    """(steps, BATCH, ...) minibatches for the plain loop, wrapping around the split: at tau 100
    the cpu preset needs 400 × 128 examples of a 50,000-example split (a plain reshape of the first
    steps·BATCH rows failed there)."""
    idx = (jnp.arange(steps * BATCH) % x_train.shape[0]).reshape(steps, BATCH)
    return x_train[idx], y_train[idx]


def measure_plain(env, params, p) -> dict:
    steps = p["tau"] * p["env_steps"]
    x, y = plain_batches(params.data.x_train, params.data.y_train, steps)
    state = env.task.init(jax.random.PRNGKey(0), jnp.full(env.num_agents(), 1e-3), 0.1)
    t = time_fn(plain_loop(env.task.model, x, y), state.params, repeats=p["repeats"])
    return {"plain_inner_steps_per_s": steps / t["median_s"], "plain_compile_s": t["compile_s"]}


def measure_flops(env) -> float:
    """FLOPs of one layerwise-AdamW inner step, from XLA's cost analysis of the compiled step."""
    task = env.task
    state = task.init(jax.random.PRNGKey(0), jnp.full(task.num_layers, 1e-3), 0.1)
    xb, yb = jnp.zeros((BATCH, *INPUT_SHAPE)), jnp.zeros((BATCH,), jnp.int32)
    analysis = jax.jit(task.train_step).lower(state, xb, yb).compile().cost_analysis()
    if isinstance(analysis, list):  # older JAX returns one dict per device
        analysis = analysis[0]
    return float(analysis.get("flops", float("nan")))


def measure_parts(env, params, p) -> dict:
    """ms per env step of each part of a deployment env step, each jitted and timed alone: where
    the time beyond the tau inner steps goes."""
    from ganno_jax.deploy.policy import act, from_agent, init_carry
    from ganno_jax.trainer.anakin import init_agent
    from ganno_jax.trainer.config import TrainConfig

    _, state = jax.jit(env.reset)(jax.random.PRNGKey(0), params)
    idx, _ = env.task.next_indices(state.stream, env.config.tau)
    x_val, y_val = env.val_subset(jax.random.PRNGKey(1), params)
    agent = init_agent(jax.random.PRNGKey(1), TrainConfig(), env.obs_dim, env.num_actions)
    policy = from_agent(agent, TrainConfig(), env.obs_layout, env.num_actions)
    obs = env._obs(state)
    parts = {
        "inner_steps": (jax.jit(env.task.train_steps), (state.inner, params.data, idx)),
        "validation": (jax.jit(env.task.evaluate), (state.inner, x_val, y_val)),
        "batch_indices": (jax.jit(lambda s: env.task.next_indices(s, env.config.tau)), (state.stream,)),
        "validation_subset": (jax.jit(env.val_subset), (jax.random.PRNGKey(2), params)),
        "stats_and_observation": (jax.jit(lambda st: env._obs(st.replace(last=st.last.replace(
            stats=env.task.layer_stats(st.inner, st.last.stats.grad_norm))))), (state,)),
        "policy": (jax.jit(lambda c, o, k: act(policy, c, o, k)), (init_carry(env.num_agents()), obs,
                                                                    jax.random.PRNGKey(3))),
        "reset": (jax.jit(env.reset), (jax.random.PRNGKey(4), params)),
    }
    return {name: 1e3 * time_fn(fn, *args, repeats=p["repeats"])["median_s"] for name, (fn, args) in parts.items()}


def measure_deploy(env, params, p, num_envs: int) -> dict:
    """A fixed policy drives `num_envs` vmapped runs for `env_steps` env steps (no no-op branch)."""
    from ganno_jax.deploy.policy import from_agent
    from ganno_jax.evaluation.controllers import policy_controller
    from ganno_jax.trainer.anakin import init_agent
    from ganno_jax.trainer.config import TrainConfig

    agent = init_agent(jax.random.PRNGKey(1), TrainConfig(), env.obs_dim, env.num_actions)
    ctrl = policy_controller(from_agent(agent, TrainConfig(), env.obs_layout, env.num_actions))
    keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
    obs, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    carry = jax.vmap(lambda _: ctrl.init(env.num_agents()))(keys)

    @jax.jit
    def run(obs, states, carry, key):
        def one(obs, state, c, k):
            act_key, step_key = jax.random.split(k)
            c, actions = ctrl.act(c, obs, act_key)
            obs, state, _, _, info = env.step_env(step_key, state, actions, params)
            return obs, state, c, info["val_accuracy"]

        def body(xs, k):
            obs, states, carry = xs
            obs, states, carry, acc = jax.vmap(one)(obs, states, carry, jax.random.split(k, num_envs))
            return (obs, states, carry), acc

        return jax.lax.scan(body, (obs, states, carry), jax.random.split(key, p["env_steps"]))

    t = time_fn(run, obs, states, carry, jax.random.PRNGKey(2), repeats=p["repeats"])
    inner = num_envs * p["env_steps"] * p["tau"]
    return {"num_envs": num_envs, "deploy_inner_steps_per_s": inner / t["median_s"],
            "deploy_compile_s": t["compile_s"]}


def measure_train(env, params, p, num_envs: int) -> dict:
    """One IPPO update (rollout of `env_steps` per env with both branches, GAE, PPO epochs)."""
    from ganno_jax.trainer.anakin import make_trainer
    from ganno_jax.trainer.config import TrainConfig

    config = TrainConfig(num_envs=num_envs, rollout_len=p["env_steps"], seq_len=p["env_steps"],
                         num_minibatches=1, total_env_steps=num_envs * p["env_steps"],
                         tau=p["tau"], n_val=p["n_val"])
    trainer = make_trainer(config, env, params)
    runner = trainer.init(jax.random.PRNGKey(0))
    t = time_fn(lambda r: trainer.run_updates(r, params, 1), runner, repeats=p["repeats"])
    env_steps = num_envs * p["env_steps"]
    return {"num_envs": num_envs, "num_devices": jax.local_device_count(),
            "train_env_steps_per_s": env_steps / t["median_s"],
            "train_inner_steps_per_s": 2 * env_steps * p["tau"] / t["median_s"],  # both branches
            "train_compile_s": t["compile_s"]}


def torch_model(name: str):
    """cnn2 / cnn5 of `ganno_jax.inner.models` in PyTorch (same layers, SAME padding, NCHW)."""
    import torch.nn as tnn

    if name == "cnn2":
        return tnn.Sequential(tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                              tnn.Linear(32 * 14 * 14, 10))
    if name == "cnn5":
        layers, c = [], 1
        for f in (32, 64, 128):
            layers += [tnn.Conv2d(c, f, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2)]
            c = f
        return tnn.Sequential(*layers, tnn.Flatten(), tnn.Linear(128 * 3 * 3, 256), tnn.ReLU(), tnn.Linear(256, 10))
    return None


def measure_torch(name: str, p: dict) -> dict:
    """The same network under PyTorch eager AdamW (2 threads, batch 128): inner steps per second."""
    try:
        import torch
    except ImportError:
        return {"torch_inner_steps_per_s": None, "torch_note": "torch is not installed (make bench-torch)"}
    import time

    model = torch_model(name)
    if model is None:
        return {"torch_inner_steps_per_s": None, "torch_note": f"no PyTorch version of {name}"}
    torch.set_num_threads(2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    x, y = torch.randn(BATCH, *INPUT_SHAPE[::-1]), torch.randint(0, 10, (BATCH,))
    steps = p["tau"] * p["env_steps"]

    def run():
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    run()  # warm-up
    times = []
    for _ in range(p["repeats"]):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return {"torch_inner_steps_per_s": steps / sorted(times)[len(times) // 2], "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}


def measure_model(name: str, p: dict) -> dict:
    env, params = synthetic_env(name, p, noop=False)
    out = {"model": name, "batch": BATCH, "tau": p["tau"], **measure_plain(env, params, p)}
    flops = measure_flops(env)
    deploy = measure_deploy(env, params, p, 1)
    train_env, train_params = synthetic_env(name, p, noop=True)
    train = measure_train(train_env, train_params, p, 1)
    plain = out["plain_inner_steps_per_s"]
    out.update(
        deploy_inner_steps_per_s=deploy["deploy_inner_steps_per_s"],
        ratio_deploy=deploy["deploy_inner_steps_per_s"] / plain,
        train_inner_steps_per_s=train["train_inner_steps_per_s"],
        ratio_train=train["train_inner_steps_per_s"] / plain,
        train_env_steps_per_s=train["train_env_steps_per_s"],
        compile_s={"plain": out.pop("plain_compile_s"), "deploy": deploy["deploy_compile_s"],
                   "train": train["train_compile_s"]},
        flops_per_inner_step=flops,
        achieved_flops_per_s={"plain": flops * plain, "deploy": flops * deploy["deploy_inner_steps_per_s"]},
    )
    for tau in p["deploy_taus"]:  # deployment at another tau (the paper's 100)
        env_t, params_t = synthetic_env(name, p, noop=False, tau=tau)
        plain_t = measure_plain(env_t, params_t, dict(p, tau=tau))["plain_inner_steps_per_s"]
        dep_t = measure_deploy(env_t, params_t, dict(p, tau=tau), 1)["deploy_inner_steps_per_s"]
        out[f"ratio_deploy_tau{tau}"] = dep_t / plain_t
        out[f"deploy_tau{tau}_inner_steps_per_s"] = dep_t
        out[f"plain_tau{tau}_inner_steps_per_s"] = plain_t
    out["parts_ms_per_env_step"] = measure_parts(env, params, p)
    if p["torch"]:
        out.update(measure_torch(name, p))
        if out["torch_inner_steps_per_s"]:
            out["ratio_plain_vs_torch"] = plain / out["torch_inner_steps_per_s"]
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def measure_scaling(p: dict) -> list[dict]:
    """Deployment and training throughput of the preset's first model over the number of vmapped
    env copies."""
    env, params = synthetic_env(p["models"][0], p, noop=False)
    train_env, train_params = synthetic_env(p["models"][0], p, noop=True)
    rows = []
    for n in p["scaling_envs"]:
        row = {**measure_deploy(env, params, p, n), **measure_train(train_env, train_params, p, n)}
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def measure_devices(p: dict, preset: str) -> list[dict]:
    """Training of the first model with 2 env copies on 1 and on N devices (forced host devices
    on CPU)."""
    rows = []
    for d in p["devices"]:
        env_vars = dict(os.environ)
        if jax.default_backend() == "cpu":
            env_vars["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={d}"
        proc = subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--preset", preset,
                               "--_train_probe", str(max(d, 2))],
                              capture_output=True, text=True, env=env_vars, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--out", default=None)
    ap.add_argument("--_train_probe", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    p = PRESETS[args.preset]
    if args._train_probe:  # child of measure_devices: one JSON line
        env, params = synthetic_env(p["models"][0], p, noop=True)
        print(json.dumps(measure_train(env, params, p, args._train_probe)))
        return
    peak = roofline(p)  # this machine's own limit, measured in the same run
    models = [measure_model(m, p) for m in p["models"]]
    for m in models:
        m["fraction_of_peak"] = m["achieved_flops_per_s"]["plain"] / peak["matmul_flops_per_s"]
    result = {
        "device": device_info(), "preset": args.preset, "units": __doc__.split("Counts")[1].strip(),
        "roofline": peak,
        "models": models,
        "scaling_envs": measure_scaling(p),
        "scaling_devices": measure_devices(p, args.preset),
        # ganno_jax.scheduler against optax.adamw in a user's own jitted scan (benchmarks/user_loop.py).
        "user_loop": [measure_user_loop(m, p["user_loop_steps"], p["repeats"]) for m in ("mlp", "cnn")],
    }
    emit_json(result, args.out)


if __name__ == "__main__":
    main()
