"""Run logging without TensorFlow: metrics JSONL, TensorBoard event files, LR-schedule plots.

TensorBoard's event format is TFRecord framing (length, masked CRC32C, payload, masked CRC32C)
around `Event` protocol buffers; the few fields a scalar needs are encoded by hand here.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time

import numpy as np

from ganno_jax.plotting import plot_layer_lrs

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, wire: int, payload: bytes) -> bytes:
    return _varint(num << 3 | wire) + payload


def _bytes_field(num: int, data: bytes) -> bytes:
    return _field(num, 2, _varint(len(data)) + data)


def encode_scalar_event(tag: str, value: float, step: int, wall_time: float) -> bytes:
    """Event{wall_time=1:double, step=2:int64, summary=5:Summary{value=1:{tag=1, simple_value=2}}}."""
    value_msg = _bytes_field(1, tag.encode()) + _field(2, 5, struct.pack("<f", value))
    summary = _bytes_field(1, value_msg)
    return (_field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(step))
            + _bytes_field(5, summary))


def tfrecord(payload: bytes) -> bytes:
    header = struct.pack("<Q", len(payload))
    return (header + struct.pack("<I", _masked_crc(header)) + payload
            + struct.pack("<I", _masked_crc(payload)))


def read_tfrecords(path: str) -> list[bytes]:
    """Payloads of a TFRecord file, checking every CRC (used by tests)."""
    out = []
    with open(path, "rb") as f:
        while header := f.read(12):
            (length,), (hcrc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
            assert hcrc == _masked_crc(header[:8]), "bad length CRC"
            payload = f.read(length)
            (pcrc,) = struct.unpack("<I", f.read(4))
            assert pcrc == _masked_crc(payload), "bad payload CRC"
            out.append(payload)
    return out


def finite_or_none(row: dict) -> dict:
    """The row with non-finite floats as None, so `metrics.jsonl` stays valid JSON (no bare NaN)."""
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}


class RunLogger:
    """Appends metrics to `metrics.jsonl` and a TensorBoard event file in the run folder."""

    def __init__(self, run_dir: str):
        self.jsonl_path = os.path.join(run_dir, "metrics.jsonl")
        self.tb_dir = os.path.join(run_dir, "tensorboard")
        os.makedirs(self.tb_dir, exist_ok=True)
        self._tb = None

    def _events(self):
        if self._tb is None:
            name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
            self._tb = open(os.path.join(self.tb_dir, name), "ab")
            if self._tb.tell() == 0:  # file_version event first, as TensorBoard expects
                self._tb.write(tfrecord(_field(1, 1, struct.pack("<d", time.time()))
                                        + _bytes_field(3, b"brain.Event:2")))
        return self._tb

    def truncate_after(self, update: int) -> None:
        """Keeps only what updates 1..`update` wrote (a resume restarts after `update`): JSONL rows
        past it are dropped and the TensorBoard events are rewritten from the rows kept, so no
        update appears twice after a kill between writing metrics and checkpointing."""
        rows = []
        if os.path.exists(self.jsonl_path):
            with open(self.jsonl_path) as f:
                rows = [json.loads(line) for line in f if line.strip()]
        rows = [r for r in rows if r["update"] <= update]
        with open(self.jsonl_path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        for name in os.listdir(self.tb_dir):
            os.remove(os.path.join(self.tb_dir, name))
        for r in rows:
            self._write_events(r)
        self._events().flush()

    def write(self, row: dict) -> None:
        row = finite_or_none(row)
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        self._write_events(row)
        self._events().flush()

    def _write_events(self, row: dict) -> None:
        now = time.time()
        for k, v in row.items():
            if k != "update" and isinstance(v, (int, float)) and np.isfinite(v):
                self._events().write(tfrecord(encode_scalar_event(k, float(v), int(row["update"]), now)))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def plot_episode(path: str, lrs: np.ndarray, val_accuracy: np.ndarray, tau: int, title: str) -> None:
    """Per-layer LR schedule (log scale) and validation accuracy over one episode, as PNG.

    Args:
      lrs: (T, num_agents) learning rates in force after each env step.
      val_accuracy: (T,) validation accuracy after each env step.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = (np.arange(len(lrs)) + 1) * tau
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    plot_layer_lrs(ax1, steps, lrs, fontsize=8)
    ax1.set_ylabel("learning rate")
    ax1.set_title(title)
    ax2.plot(steps, val_accuracy, color="k")
    ax2.set_ylabel("validation accuracy")
    ax2.set_xlabel("inner steps")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
