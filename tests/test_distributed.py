"""Several processes on JAX's distributed runtime (`make test-distributed`): 2 processes on
127.0.0.1 with one CPU device each, gloo collectives. The commands are the README's (section
"Beyond one machine") with only the address, the folders and the preset (smoke) changed."""

import csv
import os
import signal
import socket
import subprocess
import sys
import time

import chex
import jax
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = ["--env", "mlp_fmnist", "--preset", "smoke", "--set", "n_val=32"]
pytestmark = pytest.mark.distributed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tiny_data, **extra):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # devices only as a test asks
    return dict(env, GANNO_DATA_DIR=str(tiny_data), GANNO_SKIP_CHECKSUMS="1", GANNO_NO_PROGRESS="1", **extra)


def _processes(args, out, tiny_data, n=2, **extra):
    port = free_port()
    return [subprocess.Popen([sys.executable, "-m", "ganno_jax.train", *args, "--out", out, "--distributed",
                              "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(n),
                              "--process-id", str(i)], cwd=ROOT, env=_env(tiny_data, **extra),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(n)]


def _agent(run):
    from ganno_jax.trainer import checkpoint
    from ganno_jax.trainer.anakin import init_agent
    from ganno_jax.trainer.config import config_from_json

    ckpt_dir, step, meta = checkpoint.read_meta(run)
    cfg = config_from_json(open(os.path.join(run, "config.json")).read())
    like = jax.eval_shape(lambda k: init_agent(k, cfg, len(meta["obs_layout"]["names"]), meta["num_actions"]),
                          jax.random.PRNGKey(0))
    return step, checkpoint.restore_agent(ckpt_dir, step, like)


def test_two_processes_train_the_same_agent_as_two_devices_in_one_process(tiny_data, tmp_path):
    """Bit-exact: the collectives (pmean over 2 devices) sum the same two values in both runs."""
    one = str(tmp_path / "one_process")
    subprocess.run([sys.executable, "-m", "ganno_jax.train", *SMOKE, "--out", one], cwd=ROOT, check=True,
                   env=_env(tiny_data, XLA_FLAGS="--xla_force_host_platform_device_count=2"), timeout=300,
                   capture_output=True)
    two = str(tmp_path / "two_processes")
    procs = _processes(SMOKE, two, tiny_data)
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    step_a, a = _agent(one)
    step_b, b = _agent(two)
    assert step_a == step_b == 2
    chex.assert_trees_all_equal(a, b)
    # Process 0 alone wrote the logs: one row per update.
    rows = open(os.path.join(two, "metrics.jsonl")).read().splitlines()
    assert len(rows) == 2


def test_a_killed_process_stops_the_other_with_a_clear_error(tiny_data, tmp_path):
    """kill -9 one process mid-training: the other exits non-zero within 90 s, saying why."""
    out = str(tmp_path / "run")
    procs = _processes(SMOKE + ["--set", "total_env_steps=16000", "--set", "updates_per_chunk=1"], out,
                       tiny_data, GANNO_HEARTBEAT_TIMEOUT="5")
    deadline = time.time() + 240
    while not os.path.exists(os.path.join(out, "metrics.jsonl")):  # training is under way
        assert time.time() < deadline and all(p.poll() is None for p in procs), procs[0].stderr.read()[-2000:]
        time.sleep(0.5)
    procs[1].send_signal(signal.SIGKILL)
    t0 = time.time()
    try:
        _, err = procs[0].communicate(timeout=90)
    finally:
        for p in procs:
            p.kill()
    assert procs[0].returncode != 0 and time.time() - t0 < 90  # no hang
    # Either our own line (a collective failed in Python) or JAX's runtime, which ends the process
    # once the coordinator has missed the dead one's heartbeats (GANNO_HEARTBEAT_TIMEOUT seconds).
    assert ("error: lost another process" in err or "another task died" in err), err[-3000:]


def test_evaluation_grid_sharded_over_two_devices_gives_the_same_results(tiny_data, tmp_path):
    """The (init LR, weight decay, seed) grid over 2 forced host devices vs one device."""
    results = []
    for devices in (1, 2):
        out = str(tmp_path / f"eval{devices}")
        subprocess.run([sys.executable, "-m", "ganno_jax.evaluate", "--env", "mlp_fmnist", "--methods",
                        "constant,cosine,random", "--init-lrs", "1e-4,1e-3,1e-2", "--seeds", "3", "--preset", "smoke",
                        "--set", "n_val=32", "--out", out], cwd=ROOT, check=True, timeout=300, capture_output=True,
                       env=_env(tiny_data, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}"))
        rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
        results.append([{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows])
    assert len(results[0]) == 27 and results[0] == results[1]  # 9 runs a method: one device pads
