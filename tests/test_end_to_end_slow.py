"""Slow tier (`make test-slow`): the whole path on the real datasets, experiments, presets."""

import csv
import os

import numpy as np
import pytest

from ganno_jax import evaluate, train


@pytest.mark.slow
def test_real_fmnist_train_then_zero_shot_cnn5(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("GANNO_NO_PROGRESS", "1")
    run = str(tmp_path / "run")
    assert train.main(["--env", "cnn2_fmnist", "--preset", "smoke", "--set", "total_env_steps=64",
                       "--out", run]) == 0
    out = str(tmp_path / "eval")
    assert evaluate.main(["--ckpt", run, "--env", "cnn5_fmnist", "--methods", "ganno,random",
                          "--init-lrs", "1e-3", "--seeds", "2", "--preset", "smoke",
                          "--set", "episode_length=10", "--out", out]) == 0
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    assert len(rows) == 4 and all(r["diverged"] == "False" for r in rows)
    # 20 AdamW steps at 1e-3 already lift a fresh cnn5 well above chance on real Fashion-MNIST.
    assert all(float(r["test_accuracy"]) > 0.3 for r in rows)


@pytest.mark.slow
def test_figure4_smoke_resnet9_to_resnet18(tiny_data, tmp_path, monkeypatch):
    """experiments/figure4.py at smoke scale: train on resnet9_fmnist, evaluate on resnet18_cifar10."""
    from conftest import run_experiment

    monkeypatch.setenv("GANNO_NO_PROGRESS", "1")
    out = str(tmp_path / "figure4")
    assert run_experiment("figure4", ["--preset", "smoke", "--out", out], monkeypatch) == 0
    rows = list(csv.DictReader(open(os.path.join(out, "eval", "results.csv"))))
    assert {r["method"] for r in rows} == {"ganno", "random", "sgdr"}
    assert {r["weight_decay"] for r in rows} == {"0.01", "0.1"} and len(rows) == 6
    assert os.path.exists(os.path.join(out, "eval", "accuracy_lr0.001_wd0.01.png"))


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["ganno-lr-only", "ganno-timestep-only", "ganno-single-agent",
                                   "xu2019", "subramanian2023"])
def test_agent_preset_trains_and_evaluates_on_cnn5(agent, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("GANNO_NO_PROGRESS", "1")
    run = str(tmp_path / "run")
    assert train.main(["--env", "cnn2_fmnist", "--preset", "smoke", "--agent", agent, "--out", run]) == 0
    out = str(tmp_path / "eval")
    assert evaluate.main(["--ckpt", run, "--env", "cnn5_fmnist", "--init-lrs", "1e-3", "--seeds", "1",
                          "--preset", "smoke", "--set", "n_val=32", "--out", out]) == 0
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    assert [r["method"] for r in rows] == [agent, "random", "constant"]  # default: the ckpt's preset
    curves = np.load(os.path.join(out, "curves.npz"))
    lrs = curves[f"{agent}|0.001|0.1|lrs"][0]  # (T, 5 layers of cnn5)
    if agent in ("ganno-single-agent", "xu2019", "subramanian2023"):
        assert np.all(lrs == lrs[:, :1])  # one global LR


@pytest.mark.slow
def test_table2_smoke_merges_one_row_per_agent(tiny_data, tmp_path, monkeypatch):
    from conftest import run_experiment

    monkeypatch.setenv("GANNO_NO_PROGRESS", "1")
    out = str(tmp_path / "table2")
    assert run_experiment("table2", ["--preset", "smoke", "--out", out], monkeypatch) == 0
    md = open(os.path.join(out, "results.md")).read()
    for agent in ("ganno-lr-only", "ganno-timestep-only", "ganno-single-agent", "ganno"):
        assert f"| {agent} |" in md


@pytest.mark.slow
def test_gpu_recipe_runs_at_smoke_scale_on_the_cpu(tiny_data, tmp_path, monkeypatch):
    """experiments/gpu_default_agent.py with --scale smoke: the GPU recipe's flags and plumbing."""
    from conftest import run_experiment

    import ganno_jax

    out = str(tmp_path / "gpu")
    assert run_experiment("gpu_default_agent", ["--out", out, "--scale", "smoke"], monkeypatch) == 0
    policy = ganno_jax.load_policy(out)
    assert policy.config.num_envs == 4 and policy.config.agent_opt == "amsgrad"
