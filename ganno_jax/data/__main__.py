"""Find or fetch datasets: `python -m ganno_jax.data fashion_mnist mnist` (what `make test` runs first).

Each dataset is looked for where loading looks (`$GANNO_DATA_DIR`, else the download folder
`~/.cache/ganno_jax/data`, then a prepared tensorflow-datasets copy) and, where absent, downloaded
and verified (`ganno_jax.data.download`: `$GANNO_DATA_URL` first, then the official locations).
Prints one line per dataset; a dataset that cannot be found or fetched is one line on stderr and
exit status 2, saying how to provide the files.
"""

from __future__ import annotations

import argparse
import sys

from ganno_jax.errors import cli_main


def _run(args: argparse.Namespace) -> str:
    from ganno_jax.data import datasets

    lines = []
    for name in args.names:
        _, info = datasets.load_raw(name)
        lines.append(f"{name}: {info.label} ({info.source})")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ganno_jax.data", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="+", help="fashion_mnist, mnist, cifar10")
    return cli_main(_run, ap.parse_args(argv), "{}")


if __name__ == "__main__":
    sys.exit(main())
