"""Shared fixtures: tiny datasets written in the official formats, and the real data folder."""

import os

import numpy as np
import pytest

from ganno_jax.data import formats

SHARED_DATA = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


def real_data_dir() -> str | None:
    """The folder holding the real datasets, if this machine has it: `$GANNO_DATA_DIR`, the shared
    copy beside the checkout, or the download folder that `make data` (and `make train`) fill."""
    from ganno_jax.data import download

    default_download = os.path.expanduser(download.DEFAULT_DOWNLOAD_DIR)
    for d in (os.environ.get("GANNO_DATA_DIR"), SHARED_DATA, default_download):
        if d and os.path.exists(os.path.join(d, "fashion_mnist", "train-images-idx3-ubyte.gz")):
            return d
    return None


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session decodes into its own cache, so tests never depend on a user's cache."""
    monkeypatch.setenv("GANNO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    # No test reaches the internet: a missing dataset is refused, not fetched (test_download.py
    # lifts this for its local 127.0.0.1 server only).
    monkeypatch.setenv("GANNO_OFFLINE", "1")


@pytest.fixture
def real_data(monkeypatch):
    """The real data folder. Under `make test` (GANNO_REQUIRE_DATA=1, set by the Makefile) a
    missing folder fails the test naming it, so a run without data is never green; a bare
    `pytest` without data skips."""
    d = real_data_dir()
    if d is None:
        where = os.environ.get("GANNO_DATA_DIR") or SHARED_DATA
        msg = (f"real datasets not found in {where} or the download folder (fashion_mnist/"
               f"train-images-idx3-ubyte.gz); run `make data` or set GANNO_DATA_DIR")
        if os.environ.get("GANNO_REQUIRE_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    monkeypatch.setenv("GANNO_DATA_DIR", d)
    return d


def write_tiny_mnist(root, name="fashion_mnist", n_train=600, n_test=100, seed=0):
    """Writes IDX .gz files with class-dependent pixel patterns (learnable) under root/name."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, name)
    os.makedirs(folder, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        for i, lab in enumerate(labels):
            images[i, 2 * lab : 2 * lab + 4, 4:24] = 255  # a bar whose row encodes the class
        formats.write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), images)
        formats.write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), labels)
    return folder


@pytest.fixture
def tiny_data(tmp_path, monkeypatch):
    """A data folder with tiny Fashion-MNIST/MNIST/CIFAR-10 files; checksums skipped (not official)."""
    write_tiny_mnist(tmp_path, "fashion_mnist")
    write_tiny_mnist(tmp_path, "mnist", seed=1)
    rng = np.random.default_rng(2)
    os.makedirs(tmp_path / "cifar10")
    splits = {}
    for split, n in (("train", 500), ("test", 100)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        splits[split] = (images, labels)
    formats.write_cifar_tar(str(tmp_path / "cifar10" / "cifar-10-binary.tar.gz"), splits)
    monkeypatch.setenv("GANNO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GANNO_SKIP_CHECKSUMS", "1")
    return tmp_path


def run_experiment(name: str, args: list[str], monkeypatch) -> int:
    """Runs `experiments/<name>.py args...` in this process; returns its exit status."""
    import runpy
    import sys

    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "experiments")
    script = os.path.join(folder, f"{name}.py")
    monkeypatch.setattr(sys, "argv", [script, *args])
    monkeypatch.syspath_prepend(folder)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        return int(e.code or 0)
    return 0
