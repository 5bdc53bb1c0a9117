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
    with open(os.path.join(out, "config.json")) as f:
        cfg = json.load(f)
    cfg["total_env_steps"] = 48
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f)
    assert train.main(["--out", out, "--resume"]) == 0
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
