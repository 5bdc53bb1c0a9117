"""Errors that mean "the user gave us something we cannot use".

Every CLI catches :class:`UserInputError` and turns it into one line on stderr and exit status 2
(SPEC §8); anything else is a bug and keeps its traceback.
"""


class UserInputError(Exception):
    """Bad input from the user: unknown name, out-of-range number, missing or corrupt file."""


class DataError(UserInputError):
    """A dataset is missing, unreadable or fails its checksum."""


class CheckpointError(UserInputError):
    """A checkpoint is missing, corrupt or incompatible with the requested environment."""


def cli_main(run, args, done: str) -> int:
    """Runs a CLI body: `done.format(out)` on success (0), one stderr line on bad input (2)."""
    import sys

    try:
        out = run(args)
    except UserInputError as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)  # always one line
        return 2
    print(done.format(out))
    return 0


def create_out_dir(path: str, flag: str = "--out") -> list[str]:
    """Creates an output folder that must not exist yet (and its missing parents) and checks that
    it is writable; returns the folders it created, outermost first, so a run refused later can
    remove exactly those (`remove_created`). An unwritable place is a UserInputError, found before
    any data is loaded."""
    import os
    import shutil

    missing, p = [], os.path.abspath(path)
    while not os.path.exists(p):
        missing.append(p)
        p = os.path.dirname(p)
    try:
        os.makedirs(path)
        probe = os.path.join(path, ".write_probe")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        for d in missing:
            shutil.rmtree(d, ignore_errors=True)
        raise UserInputError(f"cannot write {flag} {path}: {e.strerror or e}") from None
    return missing[::-1]


def remove_created(created: list[str]) -> None:
    """Removes what `create_out_dir` created (a refused run leaves nothing behind)."""
    import shutil

    if created:
        shutil.rmtree(created[0], ignore_errors=True)
