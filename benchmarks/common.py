"""Timing helpers shared by the benchmark scripts: medians over repeats, compile time apart."""

from __future__ import annotations

import datetime
import json
import platform
import statistics
import time

import jax


def time_fn(fn, *args, repeats: int = 5) -> dict:
    """Compiles `fn` (jitted) once, then times `repeats` calls; returns seconds."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"compile_s": max(first - median, 0.0), "median_s": median, "repeats": repeats}


def device_info() -> dict:
    """The device and software the figures were measured on."""
    d = jax.devices()[0]
    return {
        "platform": d.platform,
        "device_kind": d.device_kind,
        "num_devices": jax.device_count(),
        "cpu": platform.processor() or platform.machine(),
        "jax": jax.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def emit_json(result: dict, out: str | None) -> None:
    """Prints the result and writes it to `out` if given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
