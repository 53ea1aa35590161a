"""The operations the front doors share: each returns exactly the document the CLI prints with ``--json``.

``ceiling status/runs/laws/predict/compare/report`` and the HTTP API (``ceiling serve``) call these and
only parse arguments, format and map errors (:mod:`orchestrator.operations.errors`: exit code 2 or
HTTP 422/404). Names resolve lazily so that importing the errors (as the CLI does at start-up) loads
neither the laws nor the store.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "BadInput": "errors",
    "SweepNotFound": "errors",
    "require_sweep": "errors",
    "status_document": "sweeps",
    "runs_document": "sweeps",
    "runs_csv": "sweeps",
    "law_points_csv": "sweeps",
    "trial_dict": "sweeps",
    "laws_document": "laws",
    "predict_document": "laws",
    "compare_document": "laws",
    "parse_count_option": "laws",
    "ReportOptions": "report",
    "report_html": "report",
    "report_markdown": "report",
    "write_report_file": "report",
    "SubmitResult": "submit",
    "submit_sweep": "submit",
    "parse_spec_body": "submit",
    "spec_hash": "submit",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
