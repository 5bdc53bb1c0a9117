"""Readers and writers for the original distribution formats (IDX and CIFAR-10 binary).

The writers exist so that tests can produce tiny files in the official formats and run them
through exactly the same reading code as the real datasets.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import tarfile

import numpy as np

from ganno_jax.errors import DataError

_IDX_DTYPES = {0x08: np.uint8}
CIFAR_RECORD_BYTES = 1 + 32 * 32 * 3
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_FILES = ("test_batch.bin",)
CIFAR_RECORDS_PER_FILE = 10_000  # every official batch file holds exactly this many records


def file_digest(path: str, algorithm: str) -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_idx(path: str) -> np.ndarray:
    """Decodes a (gzipped) IDX file into a uint8 array; raises DataError if it is malformed."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read {path}: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated inside its IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(
            f"{path} holds {len(raw) - header} data bytes, its header promises {expected} "
            f"(shape {shape}): the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: str, array: np.ndarray) -> None:
    """Writes a uint8 array as a gzipped IDX file (the official MNIST layout)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def decode_cifar_records(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Splits CIFAR-10 binary records into NHWC uint8 images and int labels."""
    if len(raw) % CIFAR_RECORD_BYTES or not raw:
        raise DataError(f"{name}: {len(raw)} bytes is not a whole, non-zero number of CIFAR-10 records")
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD_BYTES)
    labels = rec[:, 0].astype(np.int32)
    if labels.max(initial=0) > 9:
        raise DataError(f"{name}: label byte above 9, not a CIFAR-10 batch")
    images = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # CHW planes -> NHWC
    return images, labels


def read_cifar_binary(folder_or_tar: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads CIFAR-10 from `cifar-10-binary.tar.gz` or an extracted `cifar-10-batches-bin/`.

    Returns:
      {"train": (images (50000, 32, 32, 3) uint8, labels (50000,)), "test": (...)}.
    """
    blobs: dict[str, bytes] = {}
    wanted = CIFAR_TRAIN_FILES + CIFAR_TEST_FILES
    if os.path.isdir(folder_or_tar):
        for fname in wanted:
            path = os.path.join(folder_or_tar, fname)
            if not os.path.exists(path):
                raise DataError(f"{folder_or_tar} lacks {fname} (expected {', '.join(wanted)})")
            with open(path, "rb") as f:
                blobs[fname] = f.read()
    else:
        try:
            with tarfile.open(folder_or_tar, "r:gz") as tar:
                for member in tar.getmembers():
                    base = os.path.basename(member.name)
                    if base in wanted and member.isfile():
                        blobs[base] = tar.extractfile(member).read()
        except (OSError, EOFError, tarfile.TarError) as e:
            raise DataError(f"cannot read {folder_or_tar}: {e}") from e
        missing = [f for f in wanted if f not in blobs]
        if missing:
            raise DataError(f"{folder_or_tar} lacks {', '.join(missing)}")
    out = {}
    for split, files in (("train", CIFAR_TRAIN_FILES), ("test", CIFAR_TEST_FILES)):
        parts = [decode_cifar_records(blobs[f], f) for f in files]
        out[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return out


def write_cifar_tar(path: str, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Writes NHWC uint8 images and labels as an official-layout `cifar-10-binary.tar.gz`."""

    def records(images: np.ndarray, labels: np.ndarray) -> bytes:
        planes = np.asarray(images, np.uint8).transpose(0, 3, 1, 2).reshape(len(images), -1)
        return np.concatenate([np.asarray(labels, np.uint8)[:, None], planes], axis=1).tobytes()

    train_x, train_y = splits["train"]
    chunks = np.array_split(np.arange(len(train_x)), len(CIFAR_TRAIN_FILES))
    members = {f: records(train_x[i], train_y[i]) for f, i in zip(CIFAR_TRAIN_FILES, chunks)}
    members["test_batch.bin"] = records(*splits["test"])
    with tarfile.open(path, "w:gz") as tar:
        for fname, blob in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{fname}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
