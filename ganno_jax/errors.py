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
