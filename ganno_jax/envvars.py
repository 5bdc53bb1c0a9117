"""Settings read from environment variables, parsed as users write them.

A switch (`flag`) is on for 1, true, yes, on and off for 0, false, no, off or unset (any case);
a number (`number`) must parse and lie in range. Anything else is a UserInputError naming the
variable and what it accepts, never silently ignored. The variables are listed in the README
("Environment variables").
"""

from __future__ import annotations

import math
import os

from ganno_jax.errors import UserInputError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def flag(name: str) -> bool:
    """The switch `$name` (unset: off)."""
    raw = os.environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise UserInputError(f"${name}={os.environ[name]!r} is not a switch; use 1/true/yes/on or 0/false/no/off")


def number(name: str, default: float, low: float = 0.0, integer: bool = False) -> float:
    """The number `$name` (unset or empty: `default`), finite and > `low`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= low or (integer and not value.is_integer()):
        kind = "a whole number" if integer else "a number"
        raise UserInputError(f"${name}={raw!r} must be {kind} > {low:g}")
    return int(value) if integer else value
