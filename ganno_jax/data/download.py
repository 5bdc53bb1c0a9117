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
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request

from ganno_jax.errors import DataError

URL_ENV_VAR = "GANNO_DATA_URL"
OFFLINE_ENV_VAR = "GANNO_OFFLINE"
DEFAULT_DOWNLOAD_DIR = os.path.join("~", ".cache", "ganno_jax", "data")

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
    return os.environ.get(OFFLINE_ENV_VAR) == "1"


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
    tried: list[str] = []
    for role, fname in spec.files.items():
        final = os.path.join(folder, fname)
        if os.path.exists(final):
            continue
        if offline():
            raise DataError(_manual(spec, folder, tried, f"{OFFLINE_ENV_VAR}=1: not downloading"))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise DataError(f"cannot create the data folder {folder}: {e.strerror or e}; set GANNO_DATA_DIR "
                            f"to a writable folder") from None
        errors = []
        for url in candidate_urls(spec.name, fname):
            tried.append(url)
            why = _fetch_verified(url, final, spec.md5[role])
            if why is None:
                break
            errors.append(why)
        else:
            raise DataError(_manual(spec, folder, tried, "; ".join(errors) or "no source"))


def _fetch_verified(url: str, final: str, md5: str) -> str | None:
    """Fetches `url` to `final` if its MD5 is `md5`; returns None on success, else why not."""
    tmp = f"{final}.{os.getpid()}.part"
    try:
        digest = _download(url, tmp, os.path.basename(final))
        if digest != md5:
            return f"{url}: MD5 {digest}, not the official {md5}"
        os.replace(tmp, final)  # atomic: only a verified file ever has the final name
        return None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        return f"{url}: {e.__class__.__name__} ({str(reason)[:80]})"
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _download(url: str, path: str, label: str) -> str:
    """Streams `url` into `path` with a progress bar; returns the MD5 of what was written. A
    transfer shorter than its Content-Length raises ValueError."""
    from tqdm import tqdm

    timeout = float(os.environ.get("GANNO_DOWNLOAD_TIMEOUT", "30"))
    h = hashlib.md5()
    with urllib.request.urlopen(url, timeout=timeout) as response, open(path, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"download {label}", leave=False,
                   disable=os.environ.get("GANNO_NO_PROGRESS") == "1")
        size = 0
        try:
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                out.write(block)
                h.update(block)
                size += len(block)
                bar.update(len(block))
        except http.client.IncompleteRead as e:
            raise ValueError(f"transfer cut after {size + len(e.partial)} bytes") from None
        finally:
            bar.close()
        if total is not None and size != total:
            raise ValueError(f"transfer cut after {size} of {total} bytes")
    return h.hexdigest()


def _manual(spec, folder: str, tried: list[str], why: str) -> str:
    names = ", ".join(spec.files.values())
    urls = ", ".join(tried) if tried else "none"
    return (f"dataset {spec.name!r} could not be downloaded into {folder} ({why}); URLs tried: {urls}. "
            f"Place the official files ({names}) in {folder} by hand, point GANNO_DATA_DIR at a folder "
            f"holding {spec.name}/, or GANNO_DATA_URL at a mirror laid out like it")
