"""Slow tier (`make test-slow`): the whole path on the real datasets."""

import csv
import os

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
