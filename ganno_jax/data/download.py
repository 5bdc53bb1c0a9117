"""Fetching a dataset's original files on first use, verified and atomic.

When `load_raw` finds a dataset in no data folder (and no prepared tensorflow-datasets copy), the
original distribution files are downloaded into the download folder (`$GANNO_DATA_DIR` when set,
else `~/.cache/ganno_jax/data`), each verified against the official MD5 that `datasets.SPECS`
holds. Every file is written to a temporary name in the target folder and renamed only once its
checksum matches, so an interrupted, truncated or corrupted transfer leaves nothing a later load
would trust. Sources, tried in order for each file:
  1. `$GANNO_DATA_URL/<dataset>/<file name>`, a mirror of the user's own laid out like the data
     folder (a local folder served over HTTP works);
  2. the dataset's official locations (`MIRRORS`).
`GANNO_OFFLINE=1` never touches the network. A dataset that cannot be fetched is one DataError
naming the folder, the URLs tried and how to place the files by hand (CLIs: exit status 2).

Limits, so that no server can hang a run or fill a disk (the official Fashion-MNIST location is
plain http): each read waits at most `$GANNO_DOWNLOAD_TIMEOUT` seconds (default 30), each file
takes at most `$GANNO_DOWNLOAD_DEADLINE` seconds in all (default 900), and a transfer stops as
soon as it exceeds the file's official size (`datasets.DatasetSpec.sizes`, with 5 % to spare).
Credentials inside `$GANNO_DATA_URL` (`https://user:secret@host/`) are never printed.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request

from ganno_jax import envvars
from ganno_jax.errors import DataError
from ganno_jax.files import temporary_beside

URL_ENV_VAR = "GANNO_DATA_URL"
OFFLINE_ENV_VAR = "GANNO_OFFLINE"
TIMEOUT_ENV_VAR = "GANNO_DOWNLOAD_TIMEOUT"
DEADLINE_ENV_VAR = "GANNO_DOWNLOAD_DEADLINE"
DEFAULT_DOWNLOAD_DIR = os.path.join("~", ".cache", "ganno_jax", "data")
PART_SUFFIX = ".part"

# The official distribution locations (file names as in `datasets.SPECS`).
MIRRORS: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}


def download_dir() -> str:
    """Where fetched files go: `$GANNO_DATA_DIR` if set, else the per-user cache folder."""
    return os.environ.get("GANNO_DATA_DIR") or os.path.expanduser(DEFAULT_DOWNLOAD_DIR)


def offline() -> bool:
    """`$GANNO_OFFLINE` is on (1/true/yes/on, any case)."""
    return envvars.flag(OFFLINE_ENV_VAR)


def redact(url: str) -> str:
    """`url` without the user name and password it may carry."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def candidate_urls(name: str, fname: str) -> list[str]:
    """URLs of one file, in the order they are tried."""
    urls = []
    if os.environ.get(URL_ENV_VAR):
        urls.append(f"{os.environ[URL_ENV_VAR].rstrip('/')}/{name}/{fname}")
    return urls + [base + fname for base in MIRRORS.get(name, ())]


def fetch_dataset(spec, data_dir: str) -> None:
    """Downloads every missing original file of `spec` into `data_dir/<name>/`, verified.

    Raises DataError (one line) when offline or when no source yields a file with the official
    MD5; files already fetched stay (each is verified), nothing unverified is kept.
    """
    folder = os.path.join(data_dir, spec.name)
    if offline():
        missing = [f for f in spec.files.values() if not os.path.exists(os.path.join(folder, f))]
        if missing:
            raise DataError(_manual(spec, folder, f"{OFFLINE_ENV_VAR} is on: not downloading"))
        return
    timeout = envvars.number(TIMEOUT_ENV_VAR, 30.0)
    deadline = envvars.number(DEADLINE_ENV_VAR, 900.0)
    for role, fname in spec.files.items():
        final = os.path.join(folder, fname)
        if os.path.exists(final):
            continue
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise DataError(f"cannot create the data folder {folder}: {e.strerror or e}; set GANNO_DATA_DIR "
                            f"to a writable folder") from None
        remove_orphans(final, older_than=deadline)
        errors = []
        for url in candidate_urls(spec.name, fname):
            why = _fetch_verified(url, final, spec.md5[role], spec.sizes[role], timeout, deadline)
            if why is None:
                break
            errors.append(f"{redact(url)}: {why}")
        else:
            raise DataError(_manual(spec, folder, "; ".join(errors) or "no source"))


def remove_orphans(final: str, older_than: float) -> None:
    """Removes partial downloads of `final` left by killed processes: temporary files of the
    same name last written longer ago than any live download may take (`older_than` seconds)."""
    folder, name = os.path.dirname(final), os.path.basename(final)
    patterns = (f".{glob.escape(name)}.*{PART_SUFFIX}", f"{glob.escape(name)}.*{PART_SUFFIX}")
    now = time.time()
    for pattern in patterns:
        for path in glob.glob(os.path.join(glob.escape(folder), pattern)):
            with contextlib.suppress(OSError):
                if now - os.path.getmtime(path) > older_than:
                    os.remove(path)


def _fetch_verified(url: str, final: str, md5: str, size: int, timeout: float, deadline: float) -> str | None:
    """Fetches `url` to `final` if its MD5 is `md5`; returns None on success, else why not."""
    try:
        with temporary_beside(final, suffix=PART_SUFFIX) as tmp:
            digest = _download(url, tmp, os.path.basename(final), size, timeout, deadline)
            if digest != md5:
                return f"MD5 {digest}, not the official {md5}"
            os.replace(tmp, final)  # atomic: only a verified file ever has the final name
        return None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        return f"{e.__class__.__name__} ({redact(str(reason))[:80]})"


def max_bytes(size: int) -> int:
    """The most bytes accepted for a file whose official size is `size`."""
    return int(size * 1.05) + (64 << 10)


def _download(url: str, path: str, label: str, size: int, timeout: float, deadline: float) -> str:
    """Streams `url` into `path` with a progress bar; returns the MD5 of what was written.
    ValueError for a transfer shorter than its Content-Length, longer than the official size
    allows (`max_bytes`), or slower than `deadline` seconds in all."""
    from tqdm import tqdm

    start, cap = time.monotonic(), max_bytes(size)
    h = hashlib.md5()
    with urllib.request.urlopen(url, timeout=timeout) as response, open(path, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        if total is not None and total > cap:
            raise ValueError(f"the server announces {total} bytes, the file has {size}")
        bar = tqdm(total=total or size, unit="B", unit_scale=True, desc=f"download {label}", leave=False,
                   disable=envvars.flag("GANNO_NO_PROGRESS"))
        got = 0
        try:
            while True:
                block = response.read1(1 << 16)  # what has arrived: a drip cannot block past the deadline
                if not block:
                    break
                got += len(block)
                if got > cap:
                    raise ValueError(f"more than {cap} bytes sent for a file of {size}")
                if time.monotonic() - start > deadline:
                    raise ValueError(f"slower than ${DEADLINE_ENV_VAR}={deadline:g} s for the whole file")
                out.write(block)
                h.update(block)
                bar.update(len(block))
        except http.client.IncompleteRead as e:
            raise ValueError(f"transfer cut after {got + len(e.partial)} bytes") from None
        finally:
            bar.close()
        if total is not None and got != total:
            raise ValueError(f"transfer cut after {got} of {total} bytes")
    return h.hexdigest()


def _manual(spec, folder: str, why: str) -> str:
    names = ", ".join(spec.files.values())
    return (f"dataset {spec.name!r} could not be downloaded into {folder} ({why}). "
            f"Place the official files ({names}) there by hand, point GANNO_DATA_DIR at a folder "
            f"holding {spec.name}/, or GANNO_DATA_URL at a mirror laid out like it")
