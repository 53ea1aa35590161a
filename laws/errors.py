"""The two ways a law fit can refuse to give numbers.

Callers (the CLI, the dashboard) map `LawInputError` to exit code 2 ("fix your input") and
`FitDidNotConverge` to exit code 1 ("the work failed"), so the two must stay distinct.
"""

from __future__ import annotations


class LawInputError(ValueError):
    """The runs handed to a fit cannot support it; the message says what is needed."""


class FitDidNotConverge(RuntimeError):
    """The optimiser found no acceptable optimum; raised instead of returning numbers."""
