"""Bad input, table-driven (SPEC §8): exit status, one line naming the problem, nothing changed.

Each row runs a CLI in this process against a workspace holding tiny dataset files, a finished
smoke run and an existing output folder; the workspace is hashed before and after, so a row
passes only if the refusal wrote, moved and deleted nothing.
"""

import hashlib
import os

import pytest

from ganno_jax import evaluate, train

SMOKE = ["--env", "mlp_fmnist", "--preset", "smoke", "--set", "n_val=32"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """tiny data files, a finished 2-update smoke run `run/`, a plain file `file`, a folder `taken/`."""
    from conftest import write_tiny_mnist

    root = tmp_path_factory.mktemp("ws")
    write_tiny_mnist(str(root / "data"), "fashion_mnist")
    write_tiny_mnist(str(root / "data"), "mnist", seed=1)
    env = {"GANNO_DATA_DIR": str(root / "data"), "GANNO_SKIP_CHECKSUMS": "1", "GANNO_NO_PROGRESS": "1",
           "GANNO_CACHE_DIR": str(root / "cache")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    assert train.main(SMOKE + ["--out", str(root / "run")]) == 0
    (root / "file").write_text("x")
    (root / "taken").mkdir()
    (root / "taken" / "keep.txt").write_text("mine")
    yield root
    for k, v in old.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def tree_hash(root) -> str:
    """Hash of every path and file content under root (the decoded-data cache aside)."""
    h = hashlib.sha256()
    for d, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        if os.path.relpath(d, root).startswith("cache"):
            continue
        for name in sorted(files) + sorted(dirs):
            p = os.path.join(d, name)
            h.update(os.path.relpath(p, root).encode())
            if os.path.isfile(p):
                h.update(open(p, "rb").read())
    return h.hexdigest()


T, E = "train", "evaluate"
# (cli, argv with {ws} for the workspace, expected exit code, words the one line must contain)
ROWS = [
    (T, SMOKE + ["--env", "cnn9_x", "--out", "{ws}/new"], 2, "unknown env"),
    (T, SMOKE + ["--preset", "huge", "--out", "{ws}/new"], 2, "unknown preset"),
    (T, SMOKE + ["--agent", "foo", "--out", "{ws}/new"], 2, "unknown agent"),
    (T, SMOKE + ["--seed", "x", "--out", "{ws}/new"], 2, "--seed must be an integer"),
    (T, SMOKE + ["--seed", "100000000000000000000", "--out", "{ws}/new"], 2, "[0, 2^32 - 1]"),
    (T, SMOKE + ["--seed", "-1", "--out", "{ws}/new"], 2, "[0, 2^32 - 1]"),
    (T, SMOKE + ["--set", "tau=-1", "--out", "{ws}/new"], 2, "tau must be"),
    (T, SMOKE + ["--set", "nope=1", "--out", "{ws}/new"], 2, "unknown setting"),
    (T, SMOKE + ["--set", "lr=abc", "--out", "{ws}/new"], 2, "not a valid"),
    (T, SMOKE + ["--set", "tau", "--out", "{ws}/new"], 2, "KEY=VALUE"),
    (T, SMOKE + ["--set", "ent_coef=nan", "--out", "{ws}/new"], 2, "ent_coef must be a finite number"),
    (T, SMOKE + ["--set", "vf_coef=inf", "--out", "{ws}/new"], 2, "vf_coef must be a finite number"),
    (T, SMOKE + ["--set", "ent_coef=-0.1", "--out", "{ws}/new"], 2, "ent_coef must be >= 0"),
    (T, SMOKE + ["--set", "total_env_steps=40", "--out", "{ws}/new"], 2, "nearest: 32 or 48"),
    (T, SMOKE + ["--set", "critic=oracle", "--out", "{ws}/new"], 2, "unknown critic"),
    (T, SMOKE + ["--set", "reward=bogus", "--out", "{ws}/new"], 2, "unknown reward"),
    (T, SMOKE + ["--set", "action_set=bogus", "--out", "{ws}/new"], 2, "unknown action_set"),
    (T, SMOKE + ["--set", "lr_min=0.5", "--out", "{ws}/new"], 2, "lr_min must be in"),
    (T, SMOKE + ["--out", "{ws}/taken"], 2, "already exists"),
    (T, SMOKE + ["--out", "{ws}/file/run"], 2, "cannot write --out"),
    (T, SMOKE + ["--out", "/proc/ganno_run"], 2, "cannot write --out"),
    (T, ["--out", "{ws}/taken", "--resume"], 2, "not a run folder"),
    (T, ["--out", "{ws}/run", "--resume", "--env", "cnn2_fmnist"], 2, "--env cnn2_fmnist contradicts"),
    (T, ["--out", "{ws}/run", "--resume", "--seed", "7"], 2, "--seed 7 contradicts"),
    (T, ["--out", "{ws}/run", "--resume", "--preset", "cpu"], 2, "--preset cpu contradicts"),
    (T, ["--out", "{ws}/run", "--resume", "--set", "tau=3"], 2, "only total_env_steps"),
    (T, ["--out", "{ws}/run", "--resume", "--set", "total_env_steps=16"], 2, "more than"),
    (E, ["--env", "mlp_fmnist", "--methods", "", "--out", "{ws}/e"], 2, "names no method"),
    (E, ["--env", "mlp_fmnist", "--methods", ",", "--out", "{ws}/e"], 2, "names no method"),
    (E, ["--env", "mlp_fmnist", "--methods", "constant,constant", "--out", "{ws}/e"], 2, "twice"),
    (E, ["--env", "mlp_fmnist", "--methods", "velo", "--out", "{ws}/e"], 2, "unknown method 'velo'"),
    (E, ["--env", "mlp_fmnist", "--methods", "ganno", "--out", "{ws}/e"], 2, "need --ckpt"),
    (E, ["--env", "mlp_fmnist", "--init-lrs", "-1", "--out", "{ws}/e"], 2, "finite and >= 0"),
    (E, ["--env", "mlp_fmnist", "--init-lrs", "1e9", "--out", "{ws}/e"], 2, "above lr_max"),
    (E, ["--env", "mlp_fmnist", "--seeds", "0", "--out", "{ws}/e"], 2, "positive integer"),
    (E, ["--env", "mlp_fmnist", "--set", "tau", "--out", "{ws}/e"], 2, "KEY=VALUE"),
    (E, ["--env", "mlp_fmnist", "--set", "lr=1", "--out", "{ws}/e"], 2, "--set accepts"),
    (E, ["--env", "nope_x", "--out", "{ws}/e"], 2, "unknown env"),
    (E, ["--methods", "constant", "--out", "{ws}/e"], 2, "--env is required"),
    (E, ["--env", "mlp_fmnist", "--out", "{ws}/taken"], 2, "already exists"),
    (E, ["--env", "mlp_fmnist", "--out", "{ws}/file/e"], 2, "cannot write --out"),
    (E, ["--ckpt", "{ws}/nothing", "--out", "{ws}/e"], 2, "does not exist"),
    (E, ["--ckpt", "{ws}/taken", "--out", "{ws}/e"], 2, "holds no checkpoint"),
    (E, ["--ckpt", "{ws}/file", "--out", "{ws}/e"], 2, "not a readable policy file"),
    (E, ["--env", "mlp_fmnist", "--benchmark", "--out", "{ws}/e"], 2, "--benchmark needs --ckpt"),
    (E, ["--ckpt", "{ws}/run", "--methods", "xu2019", "--out", "{ws}/e"], 2, "holds a 'ganno' agent"),
    # The policy files, the scheduler and the distributed runtime.
    (E, ["--env", "mlp_fmnist", "--methods", "random,constant", "--greedy", "--out", "{ws}/e"], 2,
     "--greedy applies to an agent"),
    (T, SMOKE + ["--distributed", "--coordinator", "127.0.0.1:notaport", "--num-processes", "2",
                 "--process-id", "0", "--out", "{ws}/new"], 2, "port in 1..65535"),
    (T, SMOKE + ["--distributed", "--coordinator", "127.0.0.1:99999", "--num-processes", "2",
                 "--process-id", "0", "--out", "{ws}/new"], 2, "port in 1..65535"),
    # Nothing lost, nothing silently wrong: refused runs leave no parent folders they made, and
    # grids that would repeat cells or train nothing are refused.
    (T, SMOKE + ["--set", "tau=-1", "--out", "{ws}/p/q/run"], 2, "tau must be"),
    (E, ["--env", "nope_x", "--out", "{ws}/p/q/e"], 2, "unknown env"),
    (E, ["--env", "mlp_fmnist", "--init-lrs", "1e-3,3e-3,1e-3", "--out", "{ws}/e"], 2, "more than once"),
    (E, ["--env", "mlp_fmnist", "--wds", "0.1,0.1", "--out", "{ws}/e"], 2, "more than once"),
    (E, ["--env", "mlp_fmnist", "--methods", "constant", "--init-lrs", "0", "--out", "{ws}/e"], 2,
     "would train nothing"),
    (E, ["--env", "mlp_fmnist", "--init-lrs", ",".join(["1e-3"] * 300 + ["x"]), "--out", "{ws}/e"], 2,
     "'x' is not one"),
    # A warm start from a policy that does not fit this run.
    (T, SMOKE + ["--set", "init_from={ws}/nothing", "--out", "{ws}/new"], 2, "does not exist"),
    (T, SMOKE + ["--agent", "ganno-lr-only", "--set", "init_from={ws}/run", "--out", "{ws}/new"], 2,
     "observation layout"),
    (T, SMOKE + ["--set", "action_set=log", "--set", "init_from={ws}/run", "--out", "{ws}/new"], 2,
     "action set"),
    (T, SMOKE + ["--set", "base=velo", "--out", "{ws}/new"], 2, "unknown base"),
]


# Evaluations at the smoke episode size: the default (cpu) episode needs more data than the tiny files.
ROWS = [(c, a + ["--preset", "smoke"] if c == E else a, code, w) for c, a, code, w in ROWS]


@pytest.mark.parametrize("cli,argv,code,words", ROWS, ids=[f"{c}-{i}" for i, (c, *_) in enumerate(ROWS)])
def test_bad_input_is_refused_in_one_line_and_changes_nothing(workspace, capsys, cli, argv, code, words):
    before = tree_hash(workspace)
    main = train.main if cli == T else evaluate.main
    assert main([a.replace("{ws}", str(workspace)) for a in argv]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert len(err[0].encode()) <= 600  # one readable line, not a dump
    assert tree_hash(workspace) == before
    assert not os.path.exists("/proc/ganno_run")


def _flip(path, offset=64, n=64):
    data = bytearray(open(path, "rb").read())
    for i in range(offset, min(offset + n, len(data))):
        data[i] ^= 0xFF
    open(path, "wb").write(bytes(data))


def _largest_array_file(step_dir, item):
    files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(step_dir, item)) for f in fs]
    return max(files, key=os.path.getsize)


@pytest.mark.parametrize("item,cli", [("agent", E), ("runner", T), ("runner", E)])
def test_a_checkpoint_with_flipped_bytes_is_refused_naming_the_file(workspace, tmp_path, capsys, item, cli):
    """64 bytes flipped inside an array file (same size): restore refuses it, naming the file."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(workspace / "run", run)
    victim = _largest_array_file(str(run / "checkpoints" / "2"), item)
    size = os.path.getsize(victim)
    _flip(victim)
    assert os.path.getsize(victim) == size
    before = tree_hash(tmp_path)
    if cli == E:
        code = evaluate.main(["--ckpt", str(run), "--methods", "ganno", "--out", str(tmp_path / "e")])
    else:
        code = train.main(["--out", str(run), "--resume", "--set", "total_env_steps=48"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is corrupt" in err[0] and os.path.basename(victim) in err[0]
    assert tree_hash(tmp_path) == before


def test_a_data_file_corrupted_in_place_is_caught_despite_the_cache(tmp_path, monkeypatch, capsys):
    """Same size and modification time, other bytes: the cache must not hide it."""
    from conftest import write_tiny_mnist

    write_tiny_mnist(str(tmp_path / "data"), "mnist")
    monkeypatch.setenv("GANNO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GANNO_SKIP_CHECKSUMS", raising=False)
    lines = []
    for f in sorted(os.listdir(tmp_path / "data" / "mnist")):
        from ganno_jax.data import formats
        lines.append(f"{formats.file_digest(str(tmp_path / 'data' / 'mnist' / f), 'sha256')}  mnist/{f}\n")
    (tmp_path / "data" / "SHA256SUMS").write_text("".join(lines))
    from ganno_jax.data import datasets

    datasets.load_dataset("mnist", n_val=100)  # fills the cache
    path = tmp_path / "data" / "mnist" / "train-labels-idx1-ubyte.gz"
    st = os.stat(path)
    _flip(str(path), offset=20, n=4)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(datasets.DataError, match="fails verification"):
        datasets.load_dataset("mnist", n_val=100)


def test_a_process_whose_coordinator_never_appears_stops_in_one_line(workspace, capsys, monkeypatch):
    """Process 1 with no process 0: it used to wait in XLA and abort after ~129 s (exit 134)."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("GANNO_COORDINATOR_TIMEOUT", "1")
    before = tree_hash(workspace)
    code = train.main(SMOKE + ["--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                               "--process-id", "1", "--out", str(workspace / "new")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no coordinator answered" in err[0], err
    assert tree_hash(workspace) == before


def test_a_policy_file_with_flipped_bytes_is_refused(tmp_path):
    """Format 1 had no checksum: 64 flipped bytes loaded silently with changed actor weights."""
    import shutil

    import ganno_jax
    from ganno_jax.deploy.policy import PRETRAINED_DIR

    path = str(tmp_path / "default.policy")
    shutil.copy(os.path.join(PRETRAINED_DIR, "default.policy"), path)
    ganno_jax.load_policy(path)  # intact: loads
    for offset in (64, 100_000, os.path.getsize(path) - 70):  # header, weights, tail
        bad = str(tmp_path / f"bad{offset}.policy")
        shutil.copy(path, bad)
        _flip(bad, offset=offset)
        with pytest.raises(ganno_jax.errors.CheckpointError, match="corrupt|not a readable policy"):
            ganno_jax.load_policy(bad)
    assert evaluate.main(["--ckpt", bad, "--env", "mlp_fmnist", "--preset", "smoke",
                          "--out", str(tmp_path / "e")]) == 2
    assert not os.path.exists(tmp_path / "e")


def test_policy_functions_refuse_what_is_not_a_policy_or_a_path(tmp_path):
    import ganno_jax

    with pytest.raises(ganno_jax.errors.UserInputError, match="load_policy takes a path"):
        ganno_jax.load_policy(None)
    with pytest.raises(ganno_jax.errors.UserInputError, match="save_policy takes a ganno_jax Policy"):
        ganno_jax.save_policy({}, str(tmp_path / "x.policy"))
    assert not os.path.exists(tmp_path / "x.policy")


@pytest.mark.parametrize("damage", ["csv_tail", "npz_tail", "csv_tail_old_folder"])
def test_baselines_from_a_damaged_evaluation_is_refused_and_leaves_no_out(workspace, tmp_path, capsys, damage):
    """results.csv less its last 40 bytes, or a truncated curves.npz: exit 2, one line, no --out
    left behind (was: exit 1, a traceback, an empty folder). A folder written before the digests
    were recorded is still caught by the row count."""
    import json
    import shutil

    base = ["--env", "mlp_fmnist", "--methods", "random,constant", "--preset", "smoke", "--seeds", "2",
            "--init-lrs", "1e-3,3e-3"]
    src = workspace.parent / "eval_src"
    if not src.exists():
        assert evaluate.main(base + ["--out", str(src)]) == 0
    old = tmp_path / "old"
    shutil.copytree(src, old)
    name = "curves.npz" if damage == "npz_tail" else "results.csv"
    data = (old / name).read_bytes()
    (old / name).write_bytes(data[:-40] if name == "results.csv" else data[: len(data) // 2])
    if damage == "csv_tail_old_folder":
        command = json.loads((old / "command.json").read_text())
        del command["sha256"]
        (old / "command.json").write_text(json.dumps(command))
    capsys.readouterr()
    code = evaluate.main(base + ["--baselines-from", str(old), "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--baselines-from" in err[0], err
    assert not os.path.exists(tmp_path / "e")
