"""Byte sizes with units: ``500KB``, ``280MB``, ``1.5GiB`` or a plain integer."""

from __future__ import annotations

import re

_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
# the sign is matched so that "-10KB" is refused as negative, not as unreadable
_PATTERN = re.compile(r"^\s*([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_bytes(value: int | float | str) -> int:
    """Parse a byte size. Decimal units (KB, MB, GB) are powers of 10, binary ones (KiB, MiB) of 2,
    as in the SI/IEC convention; papers' "280 MB" budgets are decimal."""
    if isinstance(value, bool):
        raise ValueError(f"not a byte size: {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    elif not isinstance(value, str):
        raise ValueError(f"not a byte size: {value!r} (examples: 500KB, 280MB, 1.5GiB, 123456)")
    else:
        match = _PATTERN.match(str(value))
        if not match:
            raise ValueError(f"not a byte size: {value!r} (examples: 500KB, 280MB, 1.5GiB, 123456)")
        number, unit = float(match.group(1)), match.group(2).lower()
    if unit not in _UNITS:
        valid = "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"
        raise ValueError(f"unknown byte unit {unit!r} in {value!r}; valid units: {valid}")
    result = number * _UNITS[unit]
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite byte size: {value!r}")
    if result < 0:
        raise ValueError(f"byte size must not be negative: {value!r}")
    return int(round(result))


def format_bytes(n: int | float) -> str:
    """Human-readable decimal size, e.g. 1234567 -> '1.23 MB'."""
    n = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"
