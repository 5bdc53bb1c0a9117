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
    """Runs a CLI body: `done.format(out)` on success (0), one stderr line on bad input (2), one
    line and status 130 on Ctrl-C (the body cleans up what it created before re-raising)."""
    import sys

    try:
        out = run(args)
    except UserInputError as e:
        print(one_line("error: " + str(e)), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(done.format(out))
    return 0


MAX_MESSAGE = 600  # bytes: a message longer than this is cut (a user reads one line, not a page)


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` on one line, whitespace collapsed, at most `limit` bytes of UTF-8 (cut with "...")."""
    text = " ".join(str(text).split())
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "..."


def create_out_dir(path: str, flag: str = "--out") -> list[str]:
    """Creates an output folder that must not exist yet (and its missing parents) and checks that
    it is writable; returns the folders it created, outermost first (the last is `path` itself),
    for `remove_created`. An unwritable place is a UserInputError, found before any data is
    loaded, and leaves nothing behind."""
    import os

    missing, p = [], os.path.abspath(path)
    while not os.path.exists(p):
        missing.append(p)
        p = os.path.dirname(p)
    created = missing[::-1]
    try:
        os.makedirs(path)
        probe = os.path.join(path, ".write_probe")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        remove_created([d for d in created if os.path.isdir(d)])
        raise UserInputError(f"cannot write {flag} {path}: {e.strerror or e}") from None
    return created


def remove_created(created: list[str]) -> None:
    """Undoes `create_out_dir`: removes the output folder itself (the command's own, which did not
    exist before it) with what the command wrote into it, then each parent it created, innermost
    first, only while that parent is empty. A parent into which anything else was written since
    (another run started beside this one) is left as it is, with all it holds."""
    import os
    import shutil

    if not created:
        return
    shutil.rmtree(created[-1], ignore_errors=True)
    for d in reversed(created[:-1]):
        try:
            os.rmdir(d)  # fails on a folder that is not empty: never delete what is not ours
        except OSError:
            return
