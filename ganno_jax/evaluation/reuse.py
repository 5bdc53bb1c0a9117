"""Reusing rivals' rows: rivals are deterministic given the protocol, so their rows and curves from
an earlier evaluation stand in for running them again.

`--baselines-from DIR` names such an evaluation explicitly (a protocol that differs is refused);
`--benchmark` looks for the rows committed for its env under `benchmarks/rivals/<env>/` (in a
checkout) and uses them when the protocol matches, else computes every rival. Either way the files
must match the SHA-256 digests their `command.json` recorded, every reused rival must hold the
whole grid, and a rival whose definition changed since (`baselines.RIVAL_VERSIONS`) is run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

from ganno_jax.errors import UserInputError, one_line

REUSED_FILES = ("results.csv", "curves.npz")
# The rivals' rows of the benchmark protocol, computed once per env and committed with their digests
# (`make benchmark` reuses them when the protocol matches: benchmarking a new agent then runs the
# agent alone). Only present in a checkout; an installed package computes every rival.
COMMITTED_ROWS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "benchmarks", "rivals")


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def committed_rows(env_id: str, protocol: dict, methods: list[str], grid_size: int) -> dict:
    """The committed rivals' rows for `env_id` when their protocol is this one; {} (every rival
    computed) when there are none or the protocol differs (said in one line on stderr)."""
    folder = os.path.join(COMMITTED_ROWS, env_id)
    if not os.path.exists(os.path.join(folder, "command.json")):
        return {}
    try:
        return reuse_rows(folder, protocol, methods, grid_size)
    except UserInputError as e:
        print(f"note: not reusing the committed rivals' rows ({one_line(str(e), 300)}); computing them",
              file=sys.stderr)
        return {}


def reuse_rows(folder: str, protocol: dict, methods: list[str], grid_size: int) -> dict:
    """{method: (rows, curves, the folder that computed them)} of `methods` found in the earlier
    evaluation `folder` whose protocol equals this one (UserInputError naming the first difference
    otherwise, or a damaged or truncated file)."""
    from ganno_jax.evaluation import report
    from ganno_jax.evaluation.baselines import RIVAL_VERSIONS

    try:
        with open(os.path.join(folder, "command.json")) as f:
            command = json.load(f)
        theirs = command["protocol"]
        for name, digest in command.get("sha256", {}).items():
            if name in REUSED_FILES and sha256(os.path.join(folder, name)) != digest:
                raise UserInputError(f"--baselines-from {folder}: {name} is corrupt (its SHA-256 differs "
                                     f"from command.json's)")
        old_rows = report.read_csv(os.path.join(folder, "results.csv"))
        old_curves = report.load_curves(os.path.join(folder, "curves.npz"))
    except UserInputError:
        raise
    except Exception as e:  # noqa: BLE001 - csv, zip and npy readers raise many types for a damaged file
        raise UserInputError(f"--baselines-from {folder}: not a readable evaluation "
                             f"({e.__class__.__name__}: {str(e)[:120]})") from None
    for key, value in protocol.items():
        if theirs.get(key) != value:
            raise UserInputError(f"--baselines-from {folder}: its {key} is {theirs.get(key)!r}, this "
                                 f"evaluation's is {value!r}; only the same protocol can be reused")
    versions = command.get("rival_versions", {})
    current = [m for m in methods if versions.get(m, 1) == RIVAL_VERSIONS.get(m, 1)]
    out = {m: ([r for r in old_rows if r["method"] == m], {k: v for k, v in old_curves.items() if k[0] == m},
               command.get("reused_from", {}).get(m, folder))
           for m in current if any(r["method"] == m for r in old_rows)}
    for m, (rows, _, _) in out.items():
        if len(rows) != grid_size:
            raise UserInputError(f"--baselines-from {folder}: results.csv holds {len(rows)} rows of {m!r}, "
                                 f"the grid has {grid_size} (a truncated or edited file)")
    return out
