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
