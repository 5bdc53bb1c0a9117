"""Nothing lost, nothing silently wrong: refused runs, damaged data and caches, temporary files,
downloads that never end, tables that cannot be compared. Each test failed before its fix."""

import json
import os
import socket
import threading
import time
import warnings

import numpy as np
import pytest

from ganno_jax import evaluate, train
from ganno_jax.data import datasets, download, formats
from ganno_jax.errors import DataError, UserInputError, create_out_dir, remove_created

SMOKE = ["--env", "mlp_fmnist", "--preset", "smoke", "--set", "n_val=32"]


# --- a refused run removes only what it created ------------------------------------------------
def test_remove_created_keeps_a_parent_that_a_sibling_run_wrote_into(tmp_path):
    created = create_out_dir(str(tmp_path / "sweep" / "s0"))
    assert created == [str(tmp_path / "sweep"), str(tmp_path / "sweep" / "s0")]
    (tmp_path / "sweep" / "s1").mkdir()
    (tmp_path / "sweep" / "s1" / "keep").write_text("sibling")
    remove_created(created)
    assert not (tmp_path / "sweep" / "s0").exists()
    assert (tmp_path / "sweep" / "s1" / "keep").read_text() == "sibling"


def test_remove_created_removes_empty_parents_it_made(tmp_path):
    remove_created(create_out_dir(str(tmp_path / "a" / "b" / "run")))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("cli", ["train", "evaluate"])
def test_a_refused_run_does_not_delete_a_sibling_run_started_meanwhile(tmp_path, monkeypatch, capsys, cli):
    """Issue's repro: two runs into sweep/s0 and sweep/s1 with no sweep/ yet; s0 is refused (no
    data, offline) after s1 started. s1 and what it wrote survive; s0 leaves nothing."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("GANNO_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("GANNO_NO_PROGRESS", "1")
    original = datasets.load_raw

    def sibling_starts_then_load(name):
        (tmp_path / "sweep" / "s1").mkdir()
        (tmp_path / "sweep" / "s1" / "keep").write_text("sibling")
        return original(name)

    monkeypatch.setattr(datasets, "load_raw", sibling_starts_then_load)
    out = str(tmp_path / "sweep" / "s0")
    if cli == "train":
        code = train.main(SMOKE + ["--out", out])
    else:
        code = evaluate.main(["--env", "mlp_fmnist", "--preset", "smoke", "--methods", "constant", "--out", out])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "could not be downloaded" in err[0]
    assert (tmp_path / "sweep" / "s1" / "keep").read_text() == "sibling"
    assert not os.path.exists(out)


@pytest.mark.parametrize("cli", ["train", "evaluate"])
def test_ctrl_c_before_anything_resumable_leaves_no_folder_blocking_a_rerun(tiny_data, tmp_path, monkeypatch,
                                                                          capsys, cli):
    monkeypatch.setenv("GANNO_NO_PROGRESS", "1")
    out = tmp_path / "runs" / "x"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if cli == "train":
        import ganno_jax.trainer.anakin as anakin

        monkeypatch.setattr(anakin, "make_trainer", interrupted)
        code = train.main(SMOKE + ["--out", str(out)])
    else:
        import ganno_jax.evaluation.rollout as rollout

        monkeypatch.setattr(rollout, "run_grid", interrupted)
        code = evaluate.main(["--env", "mlp_fmnist", "--preset", "smoke", "--methods", "constant",
                              "--out", str(out)])
    assert code == 130 and capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
    assert not out.exists() and not (tmp_path / "runs").exists()


# --- data files, archive or extracted, are verified; a copy is never called the original ----------
def _extracted_cifar(root, n=20):
    folder = root / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in formats.CIFAR_TRAIN_FILES + formats.CIFAR_TEST_FILES:
        labels = (np.arange(n) % 10).astype(np.uint8)
        planes = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        (folder / name).write_bytes(np.concatenate([labels[:, None], planes], 1).tobytes())
    return folder


def _list_in_sha256sums(root, folder):
    lines = [f"{formats.file_digest(str(folder / f), 'sha256')}  cifar10/cifar-10-batches-bin/{f}\n"
             for f in sorted(os.listdir(folder))]
    (root / "SHA256SUMS").write_text("".join(lines))


def test_a_zero_byte_extracted_cifar_batch_is_refused(tmp_path, monkeypatch):
    folder = _extracted_cifar(tmp_path)
    (folder / "test_batch.bin").write_bytes(b"")
    monkeypatch.setenv("GANNO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GANNO_SKIP_CHECKSUMS", raising=False)
    with pytest.raises(DataError, match="test_batch.bin|data_batch_1.bin"):
        datasets.load_dataset("cifar10")
    monkeypatch.setenv("GANNO_SKIP_CHECKSUMS", "1")  # even unverified: an empty batch is no dataset
    with pytest.raises(DataError, match="test_batch.bin: 0 bytes"):
        datasets.load_dataset("cifar10")


def test_a_partial_extracted_cifar_folder_is_refused_naming_what_is_missing(tmp_path, monkeypatch):
    folder = _extracted_cifar(tmp_path)
    os.remove(folder / "data_batch_3.bin")
    monkeypatch.setenv("GANNO_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="lacks data_batch_3.bin"):
        datasets.load_dataset("cifar10")


def test_extracted_cifar_listed_in_sha256sums_loads_but_is_never_labelled_official(tmp_path, monkeypatch):
    folder = _extracted_cifar(tmp_path)
    _list_in_sha256sums(tmp_path, folder)
    monkeypatch.setenv("GANNO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GANNO_SKIP_CHECKSUMS", raising=False)
    ds = datasets.load_dataset("cifar10", n_val=20)
    assert not ds.info.official and "not checksum-verified" in ds.info.label
    data = bytearray((folder / "data_batch_2.bin").read_bytes())
    data[100] ^= 0xFF
    (folder / "data_batch_2.bin").write_bytes(bytes(data))
    with pytest.raises(DataError, match="data_batch_2.bin fails verification"):
        datasets.load_dataset("cifar10", n_val=20)


# --- a damaged cache is rebuilt; a cache that cannot be written costs only speed ----------------------
def _cache_files(root):
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def test_a_truncated_decoded_data_cache_is_rebuilt(tiny_data, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("GANNO_CACHE_DIR", str(cache_dir))
    first = datasets.load_dataset("mnist", n_val=100)
    (cache,) = _cache_files(cache_dir)
    data = (cache_dir / cache).read_bytes()
    (cache_dir / cache).write_bytes(data[: len(data) // 3])
    with pytest.warns(UserWarning, match="unreadable.*rebuilding"):
        again = datasets.load_dataset("mnist", n_val=100)
    np.testing.assert_array_equal(again.x_train, first.x_train)
    assert _cache_files(cache_dir) == [cache] and (cache_dir / cache).stat().st_size == len(data)


def test_a_cache_that_cannot_be_written_leaves_no_partial_file(tiny_data, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    monkeypatch.setenv("GANNO_CACHE_DIR", str(cache_dir))
    real_savez = np.savez

    def disk_full(f, **arrays):
        real_savez(f, **{k: v[:10] for k, v in arrays.items()})  # some bytes reach the disk, then:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.warns(UserWarning, match="not caching decoded data.*No space left"):
        ds = datasets.load_dataset("mnist", n_val=100)
    assert ds.x_train.shape[0] == 500 and _cache_files(cache_dir) == []


# --- temporary files: unique, in the target folder, gone on any error ------------------------------
def test_save_policy_never_touches_a_users_tmp_file_and_refuses_bad_targets(tmp_path, monkeypatch):
    import ganno_jax

    policy = ganno_jax.pretrained()
    (tmp_path / "X.tmp").write_text("the user's own file")
    ganno_jax.save_policy(policy, str(tmp_path / "X"))
    assert (tmp_path / "X.tmp").read_text() == "the user's own file"
    assert ganno_jax.load_policy(str(tmp_path / "X")).num_actions == policy.num_actions
    for bad, words in (("", "not a file name"), (str(tmp_path), "is a folder"),
                       (str(tmp_path / "nowhere" / "p.policy"), "does not exist")):
        with pytest.raises(UserInputError, match=words):
            ganno_jax.save_policy(policy, bad)
    before = (tmp_path / "X").read_bytes()

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserInputError, match="No space left"):
        ganno_jax.save_policy(policy, str(tmp_path / "X"))
    assert (tmp_path / "X").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["X", "X.tmp"]  # no temporary file left behind


# --- downloads: an overall deadline, a size cap, no secrets echoed, switches read as written -------------
class _Server:
    """A 127.0.0.1 server whose GET handler is `respond(handler)`."""

    def __init__(self, respond):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                try:
                    respond(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    monkeypatch.delenv("GANNO_OFFLINE", raising=False)
    monkeypatch.setenv("GANNO_NO_PROGRESS", "1")
    monkeypatch.setattr(download, "MIRRORS", {})
    monkeypatch.setenv("GANNO_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _drip(handler):
    handler.send_response(200)
    handler.send_header("Content-Length", "9912422")
    handler.end_headers()
    for _ in range(100):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.3)


def _endless(handler):
    handler.send_response(200)  # no Content-Length: the body goes on until the client stops
    handler.end_headers()
    block = b"\0" * (1 << 16)
    for _ in range(1 << 14):  # 1 GiB at most, should the client never stop
        handler.wfile.write(block)


def _announces_too_much(handler):
    handler.send_response(200)
    handler.send_header("Content-Length", str(1 << 40))
    handler.end_headers()


@pytest.mark.parametrize("respond,words", [(_drip, "GANNO_DOWNLOAD_DEADLINE=1 s"),
                                           (_endless, "more than"), (_announces_too_much, "announces")])
def test_a_download_that_never_ends_is_stopped_and_leaves_nothing(fresh, monkeypatch, respond, words):
    server = _Server(respond)
    monkeypatch.setenv("GANNO_DATA_URL", server.url)
    monkeypatch.setenv("GANNO_DOWNLOAD_DEADLINE", "1")
    t0 = time.monotonic()
    try:
        with pytest.raises(DataError, match="could not be downloaded") as e:
            datasets.load_dataset("mnist")
    finally:
        server.close()
    assert words in str(e.value) and time.monotonic() - t0 < 20
    assert os.listdir(fresh / "mnist") == []  # no .part left
    if respond is _endless:
        assert download.max_bytes(9_912_422) < 11_000_000  # the cap that stopped it


def test_a_password_in_the_mirror_url_is_never_printed(fresh, monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("GANNO_DATA_URL", f"http://alice:s3cret@127.0.0.1:{port}")
    assert train.main(["--env", "mlp_mnist", "--preset", "smoke", "--out", str(fresh.parent / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "s3cret" not in err[0] and "alice" not in err[0]
    assert f"***@127.0.0.1:{port}/mnist/train-images-idx3-ubyte.gz" in err[0]
    assert len(err[0].encode()) <= 600 and err[0].count(f"127.0.0.1:{port}/mnist") == 1  # each URL once


@pytest.mark.parametrize("value,on", [("1", True), ("true", True), ("Yes", True), ("ON", True),
                                      ("0", False), ("false", False), ("", False)])
def test_switches_read_as_users_write_them(monkeypatch, value, on):
    monkeypatch.setenv("GANNO_OFFLINE", value)
    assert download.offline() is on


def test_a_bad_switch_or_timeout_is_named(fresh, monkeypatch):
    monkeypatch.setenv("GANNO_OFFLINE", "maybe")
    with pytest.raises(UserInputError, match=r"\$GANNO_OFFLINE='maybe' is not a switch"):
        datasets.load_dataset("mnist")
    monkeypatch.setenv("GANNO_OFFLINE", "0")
    monkeypatch.setenv("GANNO_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(UserInputError, match=r"\$GANNO_DOWNLOAD_TIMEOUT='soon' must be a number"):
        datasets.load_dataset("mnist")


def test_orphan_partial_downloads_are_cleaned_and_fresh_ones_kept(tmp_path):
    final = tmp_path / "train-images-idx3-ubyte.gz"
    old, new = tmp_path / ".train-images-idx3-ubyte.gz.k1.part", tmp_path / ".train-images-idx3-ubyte.gz.k2.part"
    legacy = tmp_path / "train-images-idx3-ubyte.gz.4242.part"
    for p in (old, new, legacy):
        p.write_bytes(b"partial")
    long_ago = time.time() - 7200
    os.utime(old, (long_ago, long_ago))
    os.utime(legacy, (long_ago, long_ago))
    download.remove_orphans(str(final), older_than=900)
    assert sorted(os.listdir(tmp_path)) == [new.name]


# --- tables refuse what they cannot compare ------------------------------------------------------
def _summary(folder, agent="ganno", rivals=("constant", "cosine")):
    folder.mkdir(parents=True)
    p = {"mean_diff": 0.1, "ci95": [0.0, 0.2]}
    methods = {m: {"untuned_mean": 80.0, "tuned_mean": 81.0} for m in (agent, *rivals) if m}
    s = {"agent": agent, "methods": methods, "untuned": {m: p for m in rivals} if agent else {},
         "tuned": {m: p for m in rivals} if agent else {}}
    (folder / "summary.json").write_text(json.dumps(s))
    return str(folder)


def _broken_summary(folder):
    folder.mkdir()
    (folder / "summary.json").write_text("{")
    return str(folder)


def _questions(argv, capsys, monkeypatch):
    from conftest import run_experiment

    code = run_experiment("questions", argv, monkeypatch)
    return code, capsys.readouterr()


@pytest.mark.parametrize("case,words", [
    ("no_agent", "has no agent"), ("other_rivals", "different rivals (cosine, wsd)"),
    ("missing", "not a benchmark's summary"), ("bad_json", "not a benchmark's summary"),
    ("other_agent", "different agents")])
def test_questions_table_refuses_inputs_it_cannot_compare(tmp_path, capsys, monkeypatch, case, words):
    a = _summary(tmp_path / "a")
    b = {"no_agent": lambda: _summary(tmp_path / "b", agent=None),
         "other_rivals": lambda: _summary(tmp_path / "b", rivals=("constant", "wsd")),
         "missing": lambda: str(tmp_path / "nowhere"),
         "bad_json": lambda: _broken_summary(tmp_path / "b"),
         "other_agent": lambda: _summary(tmp_path / "b", agent="xu2019")}[case]()
    code, out = _questions([a, b], capsys, monkeypatch)
    err = out.err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0] and out.out == ""


def test_questions_table_of_comparable_benchmarks(tmp_path, capsys, monkeypatch):
    code, out = _questions([_summary(tmp_path / "s0"), _summary(tmp_path / "s1")], capsys, monkeypatch)
    assert code == 0 and "| untuned: vs cosine | +0.10 [+0.00, +0.20] | +0.10 [+0.00, +0.20] | no |" in out.out


# --- evaluation arguments ---------------------------------------------------------------------------
@pytest.mark.parametrize("lrs,words", [("1e-3,3e-3,1e-3", "lists 0.001 more than once"),
                                       ("0,1e-3", "would train nothing with constant"),
                                       (",".join(["1e-3"] * 299 + ["x"]), "comma list of numbers")])
def test_evaluation_refuses_repeated_zero_or_long_lists_of_lrs_in_a_short_line(tmp_path, capsys, lrs, words):
    code = evaluate.main(["--env", "mlp_fmnist", "--preset", "smoke", "--methods", "constant",
                          "--init-lrs", lrs, "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0] and len(err[0].encode()) <= 600
    assert not (tmp_path / "e").exists()


# --- the scheduler on models and params it cannot drive -------------------------------------------------
def test_scheduler_refuses_models_whose_output_is_not_one_array_of_logits():
    import flax.linen as nn
    import jax.numpy as jnp

    import ganno_jax

    class Returns(nn.Module):
        kind: str

        @nn.compact
        def __call__(self, x):
            h = nn.Dense(10)(x.reshape((x.shape[0], -1)))
            return {"tuple": (h, h), "dict": {"logits": h}, "scalar": h.sum()}[self.kind]

    for kind in ("tuple", "dict", "scalar"):
        with pytest.raises(UserInputError, match="one array of logits"):
            ganno_jax.scheduler(ganno_jax.pretrained(), Returns(kind), jnp.zeros((2, 4)), init_lr=1e-3,
                                weight_decay=0.0, total_steps=100)


def test_scheduler_refuses_integer_params_and_says_when_updates_outrun_total_steps():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    import ganno_jax

    model = nn.Dense(10)
    x = jnp.ones((4, 3))
    params = model.init(jax.random.PRNGKey(0), x)["params"]
    tx = ganno_jax.scheduler(ganno_jax.pretrained(), model, x, init_lr=1e-3, weight_decay=0.0, total_steps=25)
    with pytest.raises(UserInputError, match="floating point"):
        tx.init(jax.tree.map(lambda p: p.astype(jnp.int32), params))
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean(model.apply({"params": p}, x) ** 2))(params)
        updates, state = tx.update(grads, state, params, loss=loss, accuracy=0.5)
        return optax.apply_updates(params, updates), state

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(25):
            params, state = step(params, state)
        jax.effects_barrier()
        assert not [w for w in caught if "total_steps" in str(w.message)]
        lrs = ganno_jax.scheduler_learning_rates(state)
        for _ in range(3):
            params, state = step(params, state)
        jax.effects_barrier()
    assert len([w for w in caught if "more updates than total_steps=25" in str(w.message)]) == 1
    np.testing.assert_array_equal(ganno_jax.scheduler_learning_rates(state), lrs)  # no decision past the end
