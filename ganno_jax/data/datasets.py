"""Dataset loading: original files first, tensorflow-datasets second, one clear error otherwise.

Choices (SPEC §2, written down here):
- The official train split is split once with `split_seed` (default 0) into train and validation:
  the *last* `n_val` examples of a fixed permutation are validation (10k MNIST family, 5k CIFAR-10).
- Images become float32 in [0, 1], then are standardised per channel with train-split statistics.
- Checksums: a file must match the official MD5, or be listed with a matching SHA-256 in a
  `SHA256SUMS` manifest in the data folder (a documented copy such as the CIFAR-10 JPEG-75
  reconstruction; `DatasetInfo.official` is then False), or the user opts out with
  `GANNO_SKIP_CHECKSUMS=1`. Anything else is a `DataError`.
- Files found nowhere (no data folder holds them, no prepared tensorflow-datasets copy) are
  downloaded on first use, verified against the official MD5 and stored atomically
  (`ganno_jax.data.download`): into `$GANNO_DATA_DIR` when set, else `~/.cache/ganno_jax/data`,
  which is then also searched. `GANNO_OFFLINE=1` never downloads.
- Decoded uint8 arrays are cached as `.npz` under `$GANNO_CACHE_DIR` (default
  `~/.cache/ganno_jax`), keyed by the files' content digests: files are verified on every load
  (0.1 s for the MNIST family), so a file corrupted in place is caught even when a cache exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import warnings

import numpy as np

from ganno_jax import envvars
from ganno_jax.data import download, formats
from ganno_jax.errors import DataError, UserInputError
from ganno_jax.files import atomic_write

DATA_ENV_VAR = "GANNO_DATA_DIR"
SKIP_CHECKSUMS_ENV_VAR = "GANNO_SKIP_CHECKSUMS"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a dataset's original files are called and what they must contain."""

    name: str
    files: dict[str, str]  # role -> file name inside <data_dir>/<name>/
    md5: dict[str, str]  # role -> official MD5
    sizes: dict[str, int]  # role -> official size in bytes (caps a download)
    image_shape: tuple[int, int, int]
    num_classes: int
    n_val: int
    tfds_name: str


_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

SPECS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec(
        "fashion_mnist",
        _MNIST_FILES,
        {
            "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
            "test_images": "bef4ecab320f06d8554ea6380940ec79",
            "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        {"train_images": 26_421_880, "train_labels": 29_515, "test_images": 4_422_102, "test_labels": 5_148},
        (28, 28, 1),
        10,
        10_000,
        "fashion_mnist",
    ),
    "mnist": DatasetSpec(
        "mnist",
        _MNIST_FILES,
        {
            "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
            "test_images": "9fb629c4189551a2d022fa330f9573f3",
            "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        {"train_images": 9_912_422, "train_labels": 28_881, "test_images": 1_648_877, "test_labels": 4_542},
        (28, 28, 1),
        10,
        10_000,
        "mnist",
    ),
    "cifar10": DatasetSpec(
        "cifar10",
        {"archive": "cifar-10-binary.tar.gz"},
        {"archive": "c32a1d4ab5d03f1284b67883e8d87530"},
        {"archive": 170_052_171},
        (32, 32, 3),
        10,
        5_000,
        "cifar10",
    ),
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Where a loaded dataset came from; `label` is what figures should call it."""

    name: str
    source: str  # "files:<folder>" or "tfds"
    official: bool
    label: str


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Host-side splits, standardised float32 NHWC images and int32 labels."""

    x_train: np.ndarray  # (n_train, H, W, C) float32
    y_train: np.ndarray  # (n_train,) int32
    x_val: np.ndarray  # (n_val, H, W, C)
    y_val: np.ndarray  # (n_val,)
    x_test: np.ndarray  # (n_test, H, W, C)
    y_test: np.ndarray  # (n_test,)
    mean: np.ndarray  # (C,) per-channel train mean of [0,1] pixels
    std: np.ndarray  # (C,)
    info: DatasetInfo


def data_dirs() -> list[str]:
    """Folders searched for original files: `$GANNO_DATA_DIR` when set, else the download folder."""
    return [os.environ.get(DATA_ENV_VAR) or download.download_dir()]


def _manifest_sha256(data_dir: str) -> dict[str, str]:
    path = os.path.join(data_dir, "SHA256SUMS")
    if not os.path.exists(path):
        return {}
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                out[os.path.normpath(parts[1].lstrip("*"))] = parts[0]
    return out


def verify_file(path: str, official_md5: str, data_dir: str, rel: str, file_md5: str | None = None) -> bool:
    """Checks one file; returns True if it is the official file, False for a documented copy."""
    file_md5 = file_md5 or formats.file_digest(path, "md5")
    if file_md5 == official_md5:
        return True
    listed = _manifest_sha256(data_dir).get(os.path.normpath(rel))
    if listed is not None and formats.file_digest(path, "sha256") == listed:
        return False
    if envvars.flag(SKIP_CHECKSUMS_ENV_VAR):
        warnings.warn(f"{path}: checksum not verified ({SKIP_CHECKSUMS_ENV_VAR}=1)", stacklevel=2)
        return False
    why = "its SHA256SUMS entry does not match" if listed else f"MD5 {file_md5}"
    raise DataError(
        f"{path} fails verification ({why}; official MD5 {official_md5}): the file is corrupt or "
        f"not the official one. Replace it, list it in {data_dir}/SHA256SUMS, or set "
        f"{SKIP_CHECKSUMS_ENV_VAR}=1 to accept it unverified"
    )


def _cache_path(spec: DatasetSpec, digests: list[str]) -> str:
    root = os.environ.get("GANNO_CACHE_DIR", os.path.expanduser("~/.cache/ganno_jax"))
    key = hashlib.sha1(spec.name.encode())
    for d in digests:
        key.update(d.encode())
    return os.path.join(root, f"{spec.name}-{key.hexdigest()[:16]}.npz")


def _verify_extracted_cifar(paths: list[str], data_dir: str) -> list[str]:
    """Verifies extracted CIFAR-10 batch files, for which no official checksum is published:
    each must be listed with a matching SHA-256 in the data folder's SHA256SUMS (a documented
    copy), or, unlisted, hold exactly the official 10,000 records (a damaged or truncated file is
    refused). Returns their MD5s. Extracted files are never labelled the official dataset."""
    listed = _manifest_sha256(data_dir)
    skip = envvars.flag(SKIP_CHECKSUMS_ENV_VAR)
    digests = []
    for path in paths:
        rel = os.path.normpath(os.path.join("cifar10", "cifar-10-batches-bin", os.path.basename(path)))
        want = listed.get(rel)
        if want is not None and formats.file_digest(path, "sha256") != want:
            raise DataError(f"{path} fails verification (its SHA256SUMS entry does not match): the "
                            f"file is corrupt; replace it or the whole cifar-10-batches-bin folder")
        size = os.path.getsize(path)
        if want is None and not skip and size != formats.CIFAR_RECORDS_PER_FILE * formats.CIFAR_RECORD_BYTES:
            raise DataError(
                f"{path} holds {size} bytes, not the {formats.CIFAR_RECORDS_PER_FILE} records "
                f"({formats.CIFAR_RECORDS_PER_FILE * formats.CIFAR_RECORD_BYTES} bytes) of an official "
                f"CIFAR-10 batch: the file is damaged. Replace it, use the official "
                f"{SPECS['cifar10'].files['archive']}, or set {SKIP_CHECKSUMS_ENV_VAR}=1")
        digests.append(formats.file_digest(path, "md5"))
    return digests


def _verify_present(spec: DatasetSpec, folder: str, data_dir: str, paths: list[str]) -> tuple[list[str], bool]:
    """Verifies the original files before anything is read from them or from the cache; returns
    (their MD5s, whether all are the official files)."""
    if spec.name == "cifar10" and not paths[0].endswith(spec.files["archive"]):
        return _verify_extracted_cifar(paths, data_dir), False
    official, digests = True, []
    for role, fname in spec.files.items():
        path = os.path.join(folder, fname)
        digests.append(formats.file_digest(path, "md5"))
        official &= verify_file(path, spec.md5[role], data_dir, os.path.join(spec.name, fname), digests[-1])
    return digests, official


def _decode_files(spec: DatasetSpec, folder: str) -> dict:
    """Decodes the (already verified) original files in `folder` into raw uint8 arrays."""
    if spec.name == "cifar10":
        archive = os.path.join(folder, spec.files["archive"])
        extracted = os.path.join(folder, "cifar-10-batches-bin")
        if os.path.exists(archive):
            splits = formats.read_cifar_binary(archive)
        else:  # no checksum is published for the extracted batch files
            splits = formats.read_cifar_binary(extracted)
        raw = {
            "train_images": splits["train"][0],
            "train_labels": splits["train"][1],
            "test_images": splits["test"][0],
            "test_labels": splits["test"][1],
        }
    else:
        raw = {}
        for role, fname in spec.files.items():
            raw[role] = formats.read_idx(os.path.join(folder, fname))
        for split in ("train", "test"):
            if len(raw[f"{split}_images"]) != len(raw[f"{split}_labels"]):
                raise DataError(f"{folder}: {split} images and labels differ in count")
        raw = {k: (v[..., None] if v.ndim == 3 else v) for k, v in raw.items()}
    if raw["train_images"].shape[1:] != spec.image_shape:
        raise DataError(
            f"{folder}: images have shape {raw['train_images'].shape[1:]}, "
            f"{spec.name} needs {spec.image_shape}"
        )
    return raw


def _files_present(spec: DatasetSpec, folder: str) -> list[str] | None:
    """Paths of the original files if all of them are in `folder`, else None."""
    if spec.name == "cifar10":
        archive = os.path.join(folder, spec.files["archive"])
        extracted = os.path.join(folder, "cifar-10-batches-bin")
        if os.path.exists(archive):
            return [archive]
        if os.path.isdir(extracted):
            names = formats.CIFAR_TRAIN_FILES + formats.CIFAR_TEST_FILES
            missing = [f for f in names if not os.path.isfile(os.path.join(extracted, f))]
            if missing:  # a partial folder is not a dataset: say so rather than load what is there
                raise DataError(f"{extracted} lacks {', '.join(missing)} (a CIFAR-10 folder holds "
                                f"{', '.join(names)}); complete it or remove it")
            return [os.path.join(extracted, f) for f in names]
        return None
    paths = [os.path.join(folder, f) for f in spec.files.values()]
    return paths if all(os.path.exists(p) for p in paths) else None


def _load_tfds(spec: DatasetSpec) -> dict | None:
    """Reads a prepared tfds dataset (array_record; needs no TensorFlow), or None if unavailable."""
    try:
        import absl.logging
        import tensorflow_datasets as tfds

        absl.logging.set_verbosity(absl.logging.ERROR)  # "no dataset_info.json" is not the user's news

        raw = {}
        for split in ("train", "test"):
            source = tfds.data_source(spec.tfds_name, split=split, download=False)
            records = [source[i] for i in range(len(source))]
            raw[f"{split}_images"] = np.stack([np.asarray(r["image"], np.uint8) for r in records])
            raw[f"{split}_labels"] = np.asarray([r["label"] for r in records], np.int32)
        return raw
    except Exception:  # noqa: BLE001 - any failure of the second source means "not available"
        return None


def load_raw(name: str) -> tuple[dict, DatasetInfo]:
    """Decoded uint8 arrays of the official train and test splits, from files, cache or tfds."""
    if name not in SPECS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(SPECS)}")
    spec = SPECS[name]
    for data_dir in data_dirs():
        found = _load_folder(spec, data_dir)
        if found is not None:
            return found
    raw = _load_tfds(spec)
    if raw is not None:
        return raw, _info(spec, "tfds", True)
    target = download.download_dir()
    download.fetch_dataset(spec, target)  # a DataError saying how to place the files by hand
    found = _load_folder(spec, target)
    if found is None:  # cannot happen after a successful fetch; kept as a clear error
        raise DataError(f"dataset {name!r}: files fetched into {target}/{name} but not found there")
    return found


def _load_folder(spec: DatasetSpec, data_dir: str) -> tuple[dict, DatasetInfo] | None:
    """The dataset from `data_dir/<name>/` (verified; through the decoded cache), or None."""
    folder = os.path.join(data_dir, spec.name)
    paths = _files_present(spec, folder)
    if paths is None:
        return None
    digests, official = _verify_present(spec, folder, data_dir, paths)
    extracted = spec.name == "cifar10" and not paths[0].endswith(spec.files["archive"])
    info = _info(spec, f"files:{folder}", official, extracted)
    cache = _cache_path(spec, digests)
    raw = _read_cache(cache)
    if raw is None:
        raw = _decode_files(spec, folder)
        _write_cache(cache, raw)
    return raw, info


RAW_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


def _read_cache(cache: str) -> dict | None:
    """The decoded arrays in `cache`, or None when there is none or it cannot be read whole (a
    truncated, damaged or foreign file, whatever the reader raises): it is then removed and
    rebuilt from the verified files."""
    if not os.path.exists(cache):
        return None
    try:
        with np.load(cache) as z:
            raw = {k: np.asarray(z[k]) for k in RAW_KEYS}
        if len(raw["train_images"]) != len(raw["train_labels"]) or len(raw["test_images"]) != len(raw["test_labels"]):
            raise ValueError("images and labels differ in count")
        return raw
    except Exception as e:  # noqa: BLE001 - zip, npy and pickle readers raise many types
        warnings.warn(f"decoded-data cache {cache} is unreadable ({e.__class__.__name__}); rebuilding it",
                      stacklevel=3)
        with contextlib.suppress(OSError):
            os.remove(cache)
        return None


def _write_cache(cache: str, raw: dict) -> None:
    """Stores the decoded arrays atomically (a unique temporary name, then one rename: concurrent
    loaders never see half a file). A cache that cannot be written (a full disk, a read-only
    folder) costs only speed: a warning, nothing left behind."""
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        atomic_write(cache, lambda f: np.savez(f, **raw), "decoded-data cache")
    except (OSError, UserInputError) as e:
        warnings.warn(f"not caching decoded data: {e}", stacklevel=3)


def _info(spec: DatasetSpec, source: str, official: bool, extracted: bool = False) -> DatasetInfo:
    label = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST", "cifar10": "CIFAR-10"}[spec.name]
    if extracted:  # no checksum is published for the extracted batches: never called the original
        label = "CIFAR-10 (extracted batch files, not checksum-verified)"
    elif spec.name == "cifar10" and not official:
        label = "CIFAR-10 (JPEG-75 copy)"
    elif not official:
        label += " (unofficial copy)"
    return DatasetInfo(spec.name, source, official, label)


def load_dataset(name: str, split_seed: int = 0, n_val: int | None = None) -> Dataset:
    """Loads `name` and returns standardised train/validation/test splits (host arrays).

    Args:
      name: "fashion_mnist", "mnist" or "cifar10".
      split_seed: seed of the fixed permutation that carves validation out of official train.
      n_val: validation size; defaults to the dataset's (10k MNIST family, 5k CIFAR-10), or a
        sixth of the train split for smaller (test-made) files.
    """
    raw, info = load_raw(name)
    spec = SPECS[name]
    x, y = raw["train_images"], raw["train_labels"].astype(np.int32)
    n_val = min(spec.n_val, len(x) // 6) if n_val is None else n_val
    if not 0 < n_val < len(x):
        raise DataError(f"n_val={n_val} must be in (0, {len(x)}) for {name}")
    perm = np.random.default_rng(split_seed).permutation(len(x))
    tr, va = perm[:-n_val], perm[-n_val:]
    x_train = x[tr].astype(np.float32) / 255.0
    mean = x_train.mean(axis=(0, 1, 2))
    std = x_train.std(axis=(0, 1, 2)) + 1e-8

    def standardise(images: np.ndarray) -> np.ndarray:
        return ((images.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)

    return Dataset(
        x_train=((x_train - mean) / std).astype(np.float32),
        y_train=y[tr],
        x_val=standardise(x[va]),
        y_val=y[va],
        x_test=standardise(raw["test_images"]),
        y_test=raw["test_labels"].astype(np.int32),
        mean=mean.astype(np.float32),
        std=std.astype(np.float32),
        info=info,
    )
