"""Sizes with binary or decimal units, stored in bytes."""

from __future__ import annotations

import re
from typing import Any

_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4, "p": 1000**5, "pb": 1000**5,
    "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3, "gib": 1024**3,
    "ti": 1024**4, "tib": 1024**4, "pi": 1024**5, "pib": 1024**5,
}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_size(value: Any) -> Any:
    """'2GiB' -> 2147483648, '20G' -> 20000000000, 512 -> 512; bad text raises ValueError."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, float):
        if value < 0 or value != int(value):
            raise ValueError(f"a size in bytes must be a whole number, not {value}")
        return int(value)
    if not isinstance(value, str):
        raise ValueError("a size is a number of bytes or text such as 512MiB or 2GiB")
    match = _SIZE.match(value)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(
            f"invalid size {value!r}: use a number with a unit such as 512MiB, 2GiB or 20G"
        )
    number, unit = match.groups()
    total = float(number) * _UNITS[unit.lower()]
    if total != int(total):
        raise ValueError(f"invalid size {value!r}: not a whole number of bytes")
    return int(total)


def format_size(value: int) -> str:
    """Bytes as the shortest exact binary unit: 2147483648 -> '2GiB'."""
    for unit, factor in (("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3),
                         ("MiB", 1024**2), ("KiB", 1024)):
        if value >= factor and value % factor == 0:
            return f"{value // factor}{unit}"
    return f"{value}B"
