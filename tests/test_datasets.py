"""Dataset loading: real files (when present) and tiny files in the official formats."""

import os

import numpy as np
import pytest

from ganno_jax.data import datasets, formats
from ganno_jax.errors import DataError


def test_real_fashion_mnist_splits(real_data):
    ds = datasets.load_dataset("fashion_mnist")
    assert ds.x_train.shape == (50_000, 28, 28, 1) and ds.x_val.shape == (10_000, 28, 28, 1)
    assert ds.x_test.shape == (10_000, 28, 28, 1) and ds.x_train.dtype == np.float32
    counts = np.bincount(np.concatenate([ds.y_train, ds.y_val]), minlength=10)
    np.testing.assert_array_equal(counts, 6000)  # 6000 per class in official train
    assert ds.info.official and ds.info.label == "Fashion-MNIST"
    # Standardised with train statistics: train is ~N(0,1) per channel, val close to it.
    assert abs(ds.x_train.mean()) < 1e-3 and abs(ds.x_train.std() - 1) < 1e-3
    assert abs(ds.x_val.mean()) < 0.05


def test_train_and_validation_are_disjoint_and_fixed(tiny_data):
    raw, _ = datasets.load_raw("fashion_mnist")
    a = datasets.load_dataset("fashion_mnist", n_val=100)
    b = datasets.load_dataset("fashion_mnist", n_val=100)
    np.testing.assert_array_equal(a.x_val, b.x_val)  # fixed seed: the same split every time
    x = raw["train_images"].reshape(len(raw["train_images"]), -1)
    rows = {r.tobytes(): i for i, r in enumerate(x)}
    def originals(split_x):
        back = np.round((split_x * a.std + a.mean) * 255).astype(np.uint8)
        return {rows[r.tobytes()] for r in back.reshape(len(back), -1)}
    tr, va = originals(a.x_train), originals(a.x_val)
    assert len(tr) == 500 and len(va) == 100 and not tr & va
    c = datasets.load_dataset("fashion_mnist", split_seed=1, n_val=100)
    assert not np.array_equal(a.x_val, c.x_val)


def test_tiny_cifar_binary_tar_and_extracted_folder(tiny_data):
    ds = datasets.load_dataset("cifar10", n_val=50)
    assert ds.x_train.shape == (450, 32, 32, 3) and ds.x_test.shape == (100, 32, 32, 3)
    assert ds.mean.shape == (3,)
    # The same images from an extracted cifar-10-batches-bin/ folder.
    folder = tiny_data / "cifar10"
    import tarfile
    with tarfile.open(folder / "cifar-10-binary.tar.gz") as tar:
        tar.extractall(folder, filter="data")
    os.remove(folder / "cifar-10-binary.tar.gz")
    again = datasets.load_dataset("cifar10", n_val=50)
    np.testing.assert_array_equal(ds.x_train, again.x_train)


def test_cifar_record_layout_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(12) % 10
    path = str(tmp_path / "c.tar.gz")
    formats.write_cifar_tar(path, {"train": (images[:10], labels[:10]), "test": (images[10:], labels[10:])})
    out = formats.read_cifar_binary(path)
    np.testing.assert_array_equal(out["train"][0], images[:10])
    np.testing.assert_array_equal(out["test"][1], labels[10:])
    # Red plane first in each record: the byte after the label is pixel (0, 0) red.
    raw = formats.decode_cifar_records(bytes([3]) + images[0].transpose(2, 0, 1).tobytes(), "x")
    assert raw[1][0] == 3 and np.array_equal(raw[0][0], images[0])


def test_missing_files_name_what_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("GANNO_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as e:
        datasets.load_dataset("mnist")
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "mnist") in msg
    assert "GANNO_DATA_DIR" in msg


def test_checksum_mismatch_is_an_error_unless_opted_out(tiny_data, monkeypatch):
    monkeypatch.delenv("GANNO_SKIP_CHECKSUMS")
    with pytest.raises(DataError, match="fails verification"):
        datasets.load_dataset("mnist", n_val=100)
    # A SHA256SUMS manifest in the data folder vouches for a documented copy.
    lines = []
    for f in sorted(os.listdir(tiny_data / "mnist")):
        digest = formats.file_digest(str(tiny_data / "mnist" / f), "sha256")
        lines.append(f"{digest}  mnist/{f}\n")
    (tiny_data / "SHA256SUMS").write_text("".join(lines))
    ds = datasets.load_dataset("mnist", n_val=100)
    assert not ds.info.official and "unofficial" in ds.info.label


def test_corrupt_file_is_a_data_error(tiny_data):
    path = tiny_data / "fashion_mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])  # truncated gzip stream
    with pytest.raises(DataError):
        datasets.load_dataset("fashion_mnist", n_val=100)


def test_decoded_arrays_are_cached(tiny_data, monkeypatch):
    datasets.load_dataset("mnist", n_val=100)
    calls = []
    monkeypatch.setattr(formats, "read_idx", lambda p: calls.append(p))
    ds = datasets.load_dataset("mnist", n_val=100)  # served from the .npz cache
    assert calls == [] and ds.x_train.shape == (500, 28, 28, 1)


def test_real_cifar_copy_is_labelled(real_data):
    """CIFAR-10 is not among the datasets `make data` fetches (170 MB the fast tier does not need):
    checked where a copy exists. A copy listed in SHA256SUMS is labelled as such, never official."""
    path = os.path.join(real_data, "cifar10", "cifar-10-binary.tar.gz")
    if not os.path.exists(path):
        pytest.skip(f"no CIFAR-10 copy at {path}")
    raw, info = datasets.load_raw("cifar10")
    assert raw["train_images"].shape == (50_000, 32, 32, 3)
    listed = os.path.exists(os.path.join(real_data, "SHA256SUMS")) and "cifar10/cifar-10-binary.tar.gz" in open(
        os.path.join(real_data, "SHA256SUMS")).read()
    if listed and not info.official:
        assert info.label == "CIFAR-10 (JPEG-75 copy)"
    else:
        assert info.official and info.label == "CIFAR-10"
