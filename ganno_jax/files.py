"""Writing files so that nothing half-written is ever left under a name someone reads.

Every file the package writes for later reading (policy files, the decoded-data cache, downloads)
goes through `atomic_write`: the content is written to a temporary file with a unique name in the
target folder (`tempfile.mkstemp`, so two writers never share one, and a user's `X.tmp` is never
touched), then renamed over the target in one step. On any error, a full disk included, the
temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ganno_jax.errors import UserInputError


def check_target(path, what: str) -> str:
    """`path` as a string if a file can be written there, else UserInputError naming `what`: an
    empty name, a folder, or a parent folder that does not exist."""
    if not isinstance(path, (str, os.PathLike)):
        raise UserInputError(f"{what}: the path must be a file path, got {type(path).__name__}")
    path = os.fspath(path)
    if not path or not os.path.basename(path):
        raise UserInputError(f"{what}: {path!r} is not a file name")
    if os.path.isdir(path):
        raise UserInputError(f"{what}: {path} is a folder; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserInputError(f"{what}: the folder {parent} does not exist")
    return path


@contextlib.contextmanager
def temporary_beside(path: str, suffix: str = ".tmp") -> Iterator[str]:
    """A unique temporary file name in `path`'s folder (the file exists, empty); removed on exit
    unless it was renamed away."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def atomic_write(path, write: Callable[[BinaryIO], None], what: str) -> None:
    """Writes `path` through `write(file)` atomically (see the module docstring).

    Raises:
      UserInputError: the target is not writable (`check_target`), or writing failed (a full
        disk, a read-only folder); the message names `what` and the OS's reason.
    """
    path = check_target(path, what)
    try:
        with temporary_beside(path) as tmp:
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except OSError as e:
        raise UserInputError(f"{what}: cannot write {path} ({e.strerror or e})") from None
