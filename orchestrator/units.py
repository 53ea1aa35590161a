"""Human-friendly counts: ``50k``, ``1.2M``, ``3B``, ``1e15``.

Sizes, token budgets and FLOP budgets are all written this way in sweep files, so one parser
serves them all and every error says what a valid value looks like.
"""

from __future__ import annotations

import math
import re

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12, "p": 10**15}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgtp]?)\s*$", re.IGNORECASE)


def parse_count(value: object, *, what: str = "value") -> float:
    """Parse ``50k`` / ``1.2M`` / ``3e9`` / ``1_000`` / a number into a positive float.

    Raises ``ValueError`` naming ``what`` and the accepted forms; zero, negative, NaN and
    infinite values are rejected because no size or budget can be any of those.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number like 50000, '50k', '1.2M' or '1e15', not {value!r}")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int past ~1.8e308 has no float; no real count is that large
            digits = int(value.bit_length() * math.log10(2)) + 1  # str() of it may itself be refused
            raise ValueError(
                f"{what} (an integer of about {digits} digits) is too large; a count must be below 1e308"
            ) from None
    elif isinstance(value, str):
        match = _PATTERN.match(value.replace("_", ""))
        if not match:
            raise ValueError(
                f"{what} {value!r} is not a count; write a number with an optional suffix k, M, B, T "
                "(e.g. '50k', '1.2M', '3B') or scientific notation ('1e15')"
            )
        number = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    else:
        raise ValueError(
            f"{what} must be a number like 50000, '50k', '1.2M' or '1e15', not {type(value).__name__}"
        )
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{what} must be finite, got {value!r}")
    if number <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return number


def format_count(value: float) -> str:
    """Short human form used in tables: 1234567 -> '1.23M'."""
    for suffix, scale in (("P", 1e15), ("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"
