"""First-use download of the original dataset files, against a local HTTP server on 127.0.0.1
(no internet): verified and atomic; corrupted, truncated and dead sources refused, nothing kept."""

import functools
import http.server
import os
import shutil
import socket
import threading

import pytest

from ganno_jax import train
from ganno_jax.data import datasets, download
from ganno_jax.errors import DataError

FILES = tuple(datasets.SPECS["mnist"].files.values())


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the mirror folder; `mode` "flip" flips one byte of every file, "cut" sends half of
    it under the full Content-Length and closes."""

    mode = "ok"

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.translate_path(self.path)
        if self.mode == "ok" or not os.path.isfile(path):
            return super().do_GET()
        data = bytearray(open(path, "rb").read())
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.mode == "flip":
            data[len(data) // 2] ^= 0xFF
            self.wfile.write(bytes(data))
        else:
            self.wfile.write(bytes(data[: len(data) // 2]))
        self.close_connection = True


@pytest.fixture
def mirror(real_data, tmp_path):
    """A mirror of the real MNIST files laid out like the data folder (`<url>/mnist/<file>`)."""
    root = tmp_path / "mirror"
    shutil.copytree(os.path.join(real_data, "mnist"), root / "mnist")
    servers = []

    def serve(mode="ok"):
        handler = type("H", (_Handler,), {"mode": mode})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """An empty data folder, downloads allowed, the official mirrors switched off (127.0.0.1 only)."""
    monkeypatch.delenv("GANNO_OFFLINE", raising=False)
    monkeypatch.setenv("GANNO_NO_PROGRESS", "1")
    monkeypatch.setattr(download, "MIRRORS", {})
    folder = tmp_path / "data"
    monkeypatch.setenv("GANNO_DATA_DIR", str(folder))
    return folder


def test_a_fresh_data_folder_gets_the_files_verified(mirror, fresh, monkeypatch):
    monkeypatch.setenv("GANNO_DATA_URL", mirror())
    ds = datasets.load_dataset("mnist")
    assert ds.info.official and ds.x_train.shape == (50_000, 28, 28, 1)
    assert sorted(os.listdir(fresh / "mnist")) == sorted(FILES)  # no temporary file left


@pytest.mark.parametrize("mode", ["flip", "cut"])
def test_a_corrupted_or_truncated_transfer_is_refused_and_nothing_is_kept(mirror, fresh, monkeypatch, mode):
    monkeypatch.setenv("GANNO_DATA_URL", mirror(mode))
    with pytest.raises(DataError, match="could not be downloaded") as e:
        datasets.load_dataset("mnist")
    assert ("not the official" if mode == "flip" else "transfer cut") in str(e.value)
    assert not os.path.exists(fresh / "mnist") or os.listdir(fresh / "mnist") == []


def test_a_dead_server_gives_the_offline_message_with_exit_2(fresh, monkeypatch, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("GANNO_DATA_URL", f"http://127.0.0.1:{port}")
    out = fresh.parent / "run"
    assert train.main(["--env", "mlp_mnist", "--preset", "smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"127.0.0.1:{port}/mnist/train-images-idx3-ubyte.gz" in err[0]
    assert "by hand" in err[0] and not out.exists()
    assert not (fresh / "mnist").exists() or os.listdir(fresh / "mnist") == []


def test_offline_never_touches_the_network(mirror, fresh, monkeypatch):
    monkeypatch.setenv("GANNO_DATA_URL", mirror())
    monkeypatch.setenv("GANNO_OFFLINE", "1")
    with pytest.raises(DataError, match=r"GANNO_OFFLINE is on: not downloading\)"):
        datasets.load_dataset("mnist")


@pytest.mark.slow  # ~2 min: installs the package and trains the smoke preset in a subprocess
def test_installed_package_trains_and_evaluates_outside_the_checkout_with_fetched_data(mirror, tmp_path):
    """`pip install <checkout>` (not editable; the venv's dependencies), then from another folder
    `python -m ganno_jax.train` and `ganno-evaluate`, data fetched from the local mirror."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), root],
                   check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("GANNO_DATA_DIR", "GANNO_OFFLINE")}
    env.update(PYTHONPATH=str(target), HOME=str(tmp_path / "home"), GANNO_DATA_URL=mirror(),
               GANNO_NO_PROGRESS="1")
    run = lambda *argv: subprocess.run(list(argv), cwd=elsewhere, env=env, capture_output=True,  # noqa: E731
                                       text=True, timeout=600)
    where = run(sys.executable, "-c", "import ganno_jax; print(ganno_jax.__file__)")
    assert where.stdout.startswith(str(target)), where
    trained = run(sys.executable, "-m", "ganno_jax.train", "--env", "mlp_mnist", "--preset", "smoke",
                  "--out", "runs/x")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "home" / ".cache" / "ganno_jax" / "data" / "mnist")) == sorted(FILES)
    evaluated = run(str(target / "bin" / "ganno-evaluate"), "--ckpt", "runs/x", "--preset", "smoke",
                    "--methods", "ganno,constant", "--seeds", "1", "--init-lrs", "1e-3", "--out", "runs/e")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert (elsewhere / "runs" / "e" / "summary.json").exists()


def test_make_data_in_a_clone_with_nothing_beside_it_fetches_what_the_tests_read(real_data, tmp_path, monkeypatch):
    """`make test`'s data step (`make data`) where there is no shared data folder beside the clone
    and an empty cache: the datasets come from GANNO_DATA_URL into ~/.cache/ganno_jax/data, where
    the tests then find them; offline, it stops in one line saying how to provide the files."""
    import subprocess
    import sys

    import conftest

    mirror_root = tmp_path / "mirror"
    for name in ("fashion_mnist", "mnist"):
        shutil.copytree(os.path.join(real_data, name), mirror_root / name)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(mirror_root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    clone = tmp_path / "work" / "clone"  # nothing beside it: tmp_path/work holds no shared/
    clone.mkdir(parents=True)
    for f in ("Makefile", "pyproject.toml"):
        shutil.copy(os.path.join(root, f), clone / f)
    (clone / ".venv").mkdir()
    (clone / ".venv" / ".installed").touch()  # the venv is this one (PY below): no reinstall
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANNO_")}
    env.update(HOME=str(tmp_path / "home"), GANNO_NO_PROGRESS="1")
    make = ["make", "-s", "-C", str(clone), "data", f"PY={sys.executable}"]
    try:
        offline = subprocess.run(make, env=dict(env, GANNO_OFFLINE="1"), capture_output=True, text=True,
                                 timeout=120)
        assert offline.returncode == 2
        err = [line for line in offline.stderr.splitlines() if line.startswith("error:")]
        assert len(err) == 1 and "by hand" in err[0] and "GANNO_DATA_URL" in err[0]
        done = subprocess.run(make, env=dict(env, GANNO_DATA_URL=f"http://127.0.0.1:{server.server_address[1]}"),
                              capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fashion_mnist: Fashion-MNIST" in done.stdout and "mnist: MNIST" in done.stdout
    fetched = tmp_path / "home" / ".cache" / "ganno_jax" / "data"
    assert sorted(os.listdir(fetched / "mnist")) == sorted(FILES)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GANNO_DATA_DIR", raising=False)
    monkeypatch.setattr(conftest, "SHARED_DATA", str(tmp_path / "no-shared"))
    assert conftest.real_data_dir() == str(fetched)  # where the real-data tests look
