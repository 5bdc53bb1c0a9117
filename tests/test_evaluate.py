"""Smoke train → checkpoint → zero-shot evaluation on a deeper net; formats; refusals."""

import csv
import json
import os

import numpy as np
import pytest

from ganno_jax import evaluate, train
from ganno_jax.evaluation.report import load_curves, markdown_table, plot_grid, save_curves


@pytest.fixture(scope="module")
def cnn2_run(tmp_path_factory):
    """A smoke-trained cnn2 agent on tiny Fashion-MNIST files (shared by this module's tests)."""
    from conftest import write_tiny_mnist

    root = tmp_path_factory.mktemp("data")
    write_tiny_mnist(str(root), "fashion_mnist")
    write_tiny_mnist(str(root), "mnist", seed=1)
    env = {"GANNO_DATA_DIR": str(root), "GANNO_SKIP_CHECKSUMS": "1", "GANNO_NO_PROGRESS": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    out = str(tmp_path_factory.mktemp("runs") / "cnn2")
    assert train.main(["--env", "cnn2_fmnist", "--preset", "smoke", "--set", "n_val=32", "--out", out]) == 0
    yield out
    for k, v in old.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.mark.slow  # ~30 s of cnn5 compiles; the fast tier runs the shipped MLP policy on other nets (test_scheduler)
def test_cnn2_checkpoint_runs_zero_shot_on_cnn5(cnn2_run, tmp_path):
    out = str(tmp_path / "eval")
    argv = ["--ckpt", cnn2_run, "--env", "cnn5_fmnist", "--methods", "ganno,constant",
            "--init-lrs", "1e-3,3e-3", "--wds", "0.1", "--seeds", "2", "--preset", "smoke",
            "--set", "n_val=32", "--set", "batch_size=32", "--out", out]
    assert evaluate.main(argv) == 0
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    assert len(rows) == 2 * 2 * 2
    assert set(rows[0]) >= {"method", "env", "init_lr", "weight_decay", "seed", "test_accuracy",
                            "test_loss", "diverged", "inner_steps", "wall_time_s"}
    assert all(r["inner_steps"] == "8" for r in rows)  # smoke: tau 2 × T 4
    md = open(os.path.join(out, "results.md")).read()
    assert "| ganno |" in md and "| constant |" in md and "**" in md
    assert all(r["diverged"] == "False" for r in rows)
    curves = np.load(os.path.join(out, "curves.npz"))
    assert curves["ganno|0.001|0.1|lrs"].shape == (2, 4, 5)  # seeds, T, 5 agents of cnn5
    # The constant method keeps every layer's initial rate bit for bit.
    np.testing.assert_array_equal(curves["constant|0.003|0.1|lrs"], np.float32(3e-3))
    np.testing.assert_array_equal(curves["constant|0.001|0.1|lrs"], 1e-3 * np.ones((2, 4, 5), np.float32))
    assert curves["ganno|0.001|0.1|test_accuracy"].shape == (2, 4)
    assert any(f.startswith("lr_schedules") and f.endswith(".png") for f in os.listdir(out))


def test_layout_mismatch_and_bad_paths_exit_2(cnn2_run, tmp_path, capsys):
    # A checkpoint whose observation layout differs from the env's is refused.
    meta_file = os.path.join(cnn2_run, "checkpoints", "2", "meta", "metadata")
    meta = json.load(open(meta_file))
    bad = dict(meta, obs_layout={"version": 99, "names": ["x"]})
    json.dump(bad, open(meta_file, "w"))
    try:
        code = evaluate.main(["--ckpt", cnn2_run, "--env", "cnn2_fmnist", "--methods", "ganno",
                              "--preset", "smoke", "--out", str(tmp_path / "e1")])
    finally:
        json.dump(meta, open(meta_file, "w"))
    assert code == 2 and "observation layout" in capsys.readouterr().err
    assert evaluate.main(["--ckpt", str(tmp_path / "nope"), "--env", "cnn2_fmnist", "--preset",
                          "smoke", "--out", str(tmp_path / "e2")]) == 2
    assert evaluate.main(["--env", "cnn2_fmnist", "--methods", "ganno", "--out", str(tmp_path / "e3")]) == 2
    assert evaluate.main(["--env", "cnn2_fmnist", "--init-lrs", "-1", "--out", str(tmp_path / "e4")]) == 2
    assert evaluate.main(["--env", "cnn2_fmnist", "--methods", "velo", "--out", str(tmp_path / "e5")]) == 2
    assert "unknown method 'velo'" in capsys.readouterr().err
    assert evaluate.main(["--ckpt", cnn2_run, "--env", "cnn2_fmnist", "--methods", "ganno-lr-only",
                          "--out", str(tmp_path / "e6")]) == 2
    assert "holds a 'ganno' agent" in capsys.readouterr().err
    assert not any(os.path.exists(tmp_path / f"e{i}") for i in range(1, 7))


def test_markdown_table_hand_made_rows():
    rows = [{"method": m, "init_lr": lr, "weight_decay": 0.1, "seed": s, "test_accuracy": acc,
             "diverged": False}
            for m, base in (("a", 0.5), ("b", 0.6)) for lr in (1e-3, 1e-2) for s, acc in
            ((0, base), (1, base + 0.02))]
    md = markdown_table(rows, "test_accuracy")
    assert "| a | 51.00 ± 1.00 | 51.00 ± 1.00 | 51.00 ± 1.00 | 0 |" in md
    assert "| b | **61.00 ± 1.00** |" in md


def test_curves_round_trip_and_deep_net_legend(tmp_path):
    """Saved curves load back equal; a 21-layer LR plot labels only its first and last layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganno_jax.plotting import plot_layer_lrs

    rng = np.random.default_rng(0)
    curves = {(m, lr, 0.1): {"lrs": rng.random((2, 6, 21)), "test_accuracy": rng.random((2, 6))}
              for m in ("ganno", "sgdr") for lr in (1e-3, 1e-2)}
    save_curves(str(tmp_path / "c.npz"), curves)
    back = load_curves(str(tmp_path / "c.npz"))
    assert list(back) == list(curves)
    for k in curves:
        for name in curves[k]:
            np.testing.assert_array_equal(back[k][name], curves[k][name])
    written = plot_grid(str(tmp_path / "p_"), back, tau=5, label="t")
    assert len(written) == 4 and all(os.path.getsize(p) > 0 for p in written)

    fig, (deep, shallow) = plt.subplots(1, 2)
    plot_layer_lrs(deep, np.arange(6), curves[("ganno", 1e-3, 0.1)]["lrs"][0])
    plot_layer_lrs(shallow, np.arange(6), curves[("ganno", 1e-3, 0.1)]["lrs"][0][:, :5])
    assert [t.get_text() for t in deep.get_legend().get_texts()] == ["layer 1", "layer 21"]
    assert len(shallow.get_legend().get_texts()) == 5
    plt.close(fig)


@pytest.mark.slow
def test_table1_experiment_smoke_has_every_method(cnn2_run, tmp_path, monkeypatch):
    from conftest import run_experiment

    out = str(tmp_path / "table1")
    args = ["--preset", "smoke", "--ckpt", cnn2_run, "--env", "mlp_mnist", "--out", out]  # mlp: cheap
    assert run_experiment("table1", args, monkeypatch) == 0
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    expected = ["ganno", "random", "constant", "linear", "quadratic", "cosine", "exponential",
                "piecewise", "sgdr", "warmup_cosine", "onecycle", "lamb_cosine", "lion"]
    assert list(dict.fromkeys(r["method"] for r in rows)) == expected
    assert json.load(open(os.path.join(out, "command.json")))["argv"][1:3] == ["--preset", "smoke"]
    curves = np.load(os.path.join(out, "curves.npz"))
    assert curves["ganno|0.001|0.1|lrs"].shape == (1, 4, 3)  # the cnn2 policy drives mlp's 3 layers
    # Piecewise over 8 inner steps, recorded at block starts 0, 2, 4, 6: ×0.1 from 4, ×0.01 from 6.
    np.testing.assert_allclose(curves["piecewise|0.001|0.1|lrs"][0, :, 0], [1e-3, 1e-3, 1e-4, 1e-5], rtol=1e-6)


def test_summary_paired_differences_by_hand():
    """summary.json: per-method mean/SE/n; paired (agent − baseline) over the same cells with a
    Student-t 95% CI; the separation of the handcrafted schedules at the best initial LR."""
    from ganno_jax.evaluation.report import summary

    base = {1e-3: [0.80, 0.82, 0.81], 1e-2: [0.85, 0.86, 0.87]}
    shift = {"agent": [0.02, 0.04, 0.03], "cosine": [0.01, 0.01, 0.01], "constant": [0.0, 0.0, 0.0]}
    rows = [{"method": m, "init_lr": lr, "weight_decay": 0.1, "seed": s, "test_accuracy": v + d,
             "final_val_accuracy": v + d}
            for m, ds in shift.items() for lr, vs in base.items() for s, (v, d) in enumerate(zip(vs, ds))]
    out = summary(rows, "agent")
    assert out["methods"]["constant"]["n"] == 6
    assert out["methods"]["constant"]["mean"] == pytest.approx(100 * np.mean(base[1e-3] + base[1e-2]))
    p = out["paired"]["cosine"]  # diffs (agent − cosine) in %: 1, 3, 2 at both LRs
    diffs = np.array([1.0, 3.0, 2.0, 1.0, 3.0, 2.0])
    assert p["mean_diff"] == pytest.approx(2.0) and p["n"] == 6 and p["wins"] == 6
    half = 2.5706 * diffs.std(ddof=1) / np.sqrt(6)  # t(0.975, 5) = 2.5706
    assert p["ci95"] == pytest.approx([2.0 - half, 2.0 + half], rel=1e-4)
    sep = out["separation"]  # best LR 1e-2: cosine − constant = 1 point at every seed
    assert (sep["init_lr"], sep["best"], sep["worst"]) == (1e-2, "cosine", "constant")
    assert sep["mean_diff"] == pytest.approx(1.0) and sep["standard_errors"] == float("inf")


def test_baselines_are_reused_only_from_the_same_protocol(cnn2_run, tmp_path, capsys):
    common = ["--ckpt", cnn2_run, "--env", "cnn2_fmnist", "--init-lrs", "1e-3", "--preset", "smoke",
              "--set", "n_val=32"]
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    assert evaluate.main(common + ["--methods", "constant", "--seeds", "2", "--out", first]) == 0
    assert evaluate.main(common + ["--methods", "ganno,constant", "--seeds", "2", "--baselines-from", first,
                                   "--out", second]) == 0
    a, b = (list(csv.DictReader(open(os.path.join(d, "results.csv")))) for d in (first, second))
    assert [r for r in b if r["method"] == "constant"] == a
    assert {r["method"] for r in b} == {"ganno", "constant"}
    assert "paired" in json.load(open(os.path.join(second, "summary.json")))
    assert evaluate.main(common + ["--methods", "ganno,constant", "--seeds", "3", "--baselines-from", first,
                                   "--out", str(tmp_path / "third")]) == 2
    assert "its seeds is 2" in capsys.readouterr().err and not os.path.exists(tmp_path / "third")
