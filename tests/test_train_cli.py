"""The training CLI on tiny data: files it writes, refusals with exit status 2, resume."""

import json
import os

import pytest

from ganno_jax import train

SMOKE = ["--env", "cnn2_fmnist", "--preset", "smoke", "--set", "n_val=32"]


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("GANNO_NO_PROGRESS", "1")


def test_smoke_run_writes_everything_and_resumes(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    assert train.main(SMOKE + ["--out", out]) == 0
    for name in ("config.json", "metrics.jsonl", "checkpoints/2", "tensorboard", "plots"):
        assert os.path.exists(os.path.join(out, name)), name
    rows = [json.loads(x) for x in open(os.path.join(out, "metrics.jsonl"))]
    assert [r["update"] for r in rows] == [1, 2] and rows[-1]["inner_steps"] == 64
    assert any(f.endswith(".png") for f in os.listdir(os.path.join(out, "plots")))
    # Existing folder without --resume: refused, nothing touched.
    before = open(os.path.join(out, "metrics.jsonl")).read()
    assert train.main(SMOKE + ["--out", out]) == 2
    assert open(os.path.join(out, "metrics.jsonl")).read() == before
    # --resume continues a longer run without overwriting earlier plots.
    plots = sorted(os.listdir(os.path.join(out, "plots")))
    assert train.main(["--out", out, "--resume", "--set", "total_env_steps=48"]) == 0
    assert json.load(open(os.path.join(out, "config.json")))["total_env_steps"] == 48
    rows = [json.loads(x) for x in open(os.path.join(out, "metrics.jsonl"))]
    assert [r["update"] for r in rows] == [1, 2, 3]
    after = sorted(os.listdir(os.path.join(out, "plots")))
    assert after[: len(plots)] == plots and len(after) > len(plots)
    before = open(os.path.join(out, "metrics.jsonl")).read()
    # --resume of a finished run does nothing more and keeps the metrics.
    assert train.main(["--out", out, "--resume"]) == 0
    assert open(os.path.join(out, "metrics.jsonl")).read() == before


@pytest.mark.parametrize("args,needle", [
    (["--env", "cnn9_x"], "unknown env"),
    (["--preset", "huge"], "unknown preset"),
    (["--set", "tau=-1"], "tau must be"),
    (["--set", "nope=1"], "unknown setting"),
    (["--set", "lr=abc"], "not a valid"),
    (["--seed", "x"], "--seed"),
    (["--agent", "foo"], "unknown agent"),
])
def test_bad_input_exits_2_with_one_line(tiny_data, tmp_path, capsys, args, needle):
    argv = SMOKE + args + ["--out", str(tmp_path / "r")]
    assert train.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not os.path.exists(tmp_path / "r")


def test_missing_data_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANNO_DATA_DIR", str(tmp_path / "empty"))
    assert train.main(SMOKE + ["--out", str(tmp_path / "r")]) == 2
    assert "GANNO_DATA_DIR" in capsys.readouterr().err


def test_resume_without_run_folder_exits_2(tmp_path):
    assert train.main(["--out", str(tmp_path / "none"), "--resume"]) == 2


def _restored(run):
    """(config, env, final RunnerState) of a finished run, restored from its last checkpoint."""
    import jax

    from ganno_jax.env import make
    from ganno_jax.trainer import checkpoint
    from ganno_jax.trainer.anakin import make_trainer
    from ganno_jax.trainer.config import config_from_json

    cfg = config_from_json(open(os.path.join(run, "config.json")).read())
    env, params = make(cfg.env_id, **cfg.env_overrides())
    trainer = make_trainer(cfg, env, params)
    runner, _ = checkpoint.restore_runner(checkpoint.manager(run), trainer.init(jax.random.PRNGKey(9)),
                                          trainer.shardings)
    return cfg, env, runner


@pytest.mark.slow  # ~60 s: three real-env training runs
def test_resume_of_a_real_env_run_is_bit_identical_and_load_policy_returns_the_saved_agent(tiny_data, tmp_path):
    """3 updates straight vs 2 + --resume to 3, through train.main on the GANNO env: agent, env
    states (network, injected-hyperparameter optimiser state, batch stream), GRU states and RNG
    are bit-identical; load_policy returns exactly the saved actor and normaliser."""
    import chex

    import ganno_jax

    # Episodes of 5 env steps: the update-2 checkpoint (16 env steps per env) is mid-episode, so
    # the resumed run depends on the saved network, optimiser state and batch stream.
    base = ["--env", "mlp_fmnist", "--preset", "smoke", "--set", "n_val=32", "--set", "episode_length=5"]
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    assert train.main(base + ["--set", "total_env_steps=48", "--out", straight]) == 0
    assert train.main(base + ["--set", "total_env_steps=32", "--out", split]) == 0
    assert train.main(["--out", split, "--resume", "--set", "total_env_steps=48"]) == 0
    _, env, a = _restored(straight)
    _, _, b = _restored(split)
    assert int(a.update) == int(b.update) == 3
    chex.assert_trees_all_equal(a, b)
    assert int(a.env_state.t[0]) == 4 and int(a.env_state.stream.epoch[0]) > 0  # mid-episode, mid-stream
    policy = ganno_jax.load_policy(split)
    assert policy.obs_layout == env.obs_layout
    chex.assert_trees_all_equal((policy.actor_params, policy.obs_stats), (b.agent.actor_params, b.agent.obs_stats))
    rows = [json.loads(x) for x in open(os.path.join(split, "metrics.jsonl"))]
    assert [r["update"] for r in rows] == [1, 2, 3]


def test_a_nan_agent_loss_stops_the_run_keeping_the_last_good_checkpoint(tiny_data, tmp_path, capsys):
    """PPO at lr 1e30 blows the agent up; the run stops with one line and exit 1, the checkpoint
    before the bad update stays, and metrics.jsonl is valid JSON up to it."""
    out = str(tmp_path / "run")
    code = train.main(["--env", "mlp_fmnist", "--preset", "smoke", "--set", "n_val=32", "--set", "lr=1e30",
                       "--set", "total_env_steps=64", "--out", out])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "became non-finite at update" in err[0]
    bad = int(err[0].split("at update ")[1].split(";")[0])
    assert f"last good checkpoint is update {bad - 1}" in err[0]
    rows = [json.loads(x) for x in open(os.path.join(out, "metrics.jsonl"))] if bad > 1 else []
    assert [r["update"] for r in rows] == list(range(1, bad))
    steps = sorted(int(d) for d in os.listdir(os.path.join(out, "checkpoints")) if d.isdigit()) if bad > 1 else []
    assert steps[-1:] == ([bad - 1] if bad > 1 else [])


@pytest.mark.slow  # ~40 s: two training runs
def test_resume_after_a_kill_between_checkpoint_and_logging_writes_every_update_once(tiny_data, tmp_path):
    """A kill can land after a chunk's checkpoint and before its metrics, or (older runs) after its
    metrics and before its checkpoint: the resumed run truncates metrics, TensorBoard events and
    plots to the restored update and every update appears exactly once."""
    import shutil

    from ganno_jax.trainer import runlog

    out = str(tmp_path / "run")
    assert train.main(SMOKE + ["--set", "total_env_steps=48", "--out", out]) == 0
    # Pretend update 3's outputs were written but its checkpoint was not.
    shutil.rmtree(os.path.join(out, "checkpoints", "3"))
    plots_before = sorted(os.listdir(os.path.join(out, "plots")))
    assert train.main(["--out", out, "--resume"]) == 0
    rows = [json.loads(x) for x in open(os.path.join(out, "metrics.jsonl"))]
    assert [r["update"] for r in rows] == [1, 2, 3]
    (events,) = os.listdir(os.path.join(out, "tensorboard"))
    payloads = runlog.read_tfrecords(os.path.join(out, "tensorboard", events))
    tags = [p for p in payloads[1:] if b"\x0a\x06reward" in p]  # the scalar tagged exactly "reward"
    assert len(tags) == 3  # one per update, none twice
    assert sorted(os.listdir(os.path.join(out, "plots"))) == plots_before  # update 3's plots redrawn, once


def test_init_from_starts_the_actor_from_a_trained_policy(tiny_data, tmp_path):
    """`--set init_from=pretrained`: one PPO update later the actor is still next to the shipped
    policy's (a fresh agent of the same seed is far from it)."""
    import jax
    import numpy as np

    import ganno_jax

    mlp = ["--env", "mlp_fmnist", "--preset", "smoke", "--set", "n_val=32", "--set", "total_env_steps=16",
           "--set", "action_set=log", "--set", "base=schedule_free"]
    warm, cold = (str(tmp_path / n) for n in ("warm", "cold"))
    assert train.main(mlp + ["--set", "init_from=pretrained", "--out", warm]) == 0
    assert train.main(mlp + ["--out", cold]) == 0
    leaves = lambda p: jax.tree.leaves(p.actor_params)  # noqa: E731
    dist = lambda x, y: max(float(np.max(np.abs(p - q))) for p, q in zip(leaves(x), leaves(y)))  # noqa: E731
    shipped = ganno_jax.pretrained()
    assert dist(ganno_jax.load_policy(warm), shipped) < 0.01 < dist(ganno_jax.load_policy(cold), shipped)
    assert ganno_jax.load_policy(warm).config.base == "schedule_free"
