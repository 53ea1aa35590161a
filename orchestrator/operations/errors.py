"""The errors an operation raises for input the user must fix; each front door maps them its own way.

The CLI prints the message and exits with code 2; the HTTP API answers 422 (404 for an unknown sweep).
"""

from __future__ import annotations

from typing import Any


class BadInput(Exception):
    """A problem the user must fix (CLI exit code 2, HTTP 422). The message names the field and the fix."""


class SweepNotFound(BadInput):
    """A sweep name that is not in the store (CLI exit code 2, HTTP 404)."""

    def __init__(
        self, sweep: str, known: list[str], known_label: str = "known sweeps", none: str = "none yet"
    ):
        self.sweep, self.known = sweep, known
        super().__init__(f"sweep {sweep!r} is not in the store; {known_label}: {', '.join(known) or none}")


def require_sweep(
    store: Any, sweep: str | None, known_label: str = "known sweeps", none: str = "none yet"
) -> None:
    """Raise :class:`SweepNotFound` when ``sweep`` is given and not stored (None means every sweep)."""
    if sweep is not None and store.get_sweep(sweep) is None:
        raise SweepNotFound(sweep, [s.name for s in store.sweeps()], known_label, none)
