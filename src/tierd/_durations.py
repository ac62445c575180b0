"""Durations written for people (``30d``, ``2h``, ``90s``), read as float seconds."""

from __future__ import annotations

import math
import re
from typing import Final

_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(value: str | float) -> float:
    """Seconds in ``value``: a number of seconds, or a number with a unit (s, m, h, d, w).

    Raises:
        ValueError: anything else, or a negative or infinite number.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"not a duration: {value!r}; write e.g. 90s, 15m, 2h, 30d or 1w")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {value!r}; it must be >= 0")
    return seconds
