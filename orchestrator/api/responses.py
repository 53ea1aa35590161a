"""Responses whose JSON is byte for byte what the CLI prints with ``--json`` (orchestrator/cli/common.py)."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse


class CliJSONResponse(JSONResponse):
    """``json.dumps(document, indent=2, default=str)``, as ``ceiling ... --json`` prints it (dates as
    text; no failure on a value JSON cannot hold, where FastAPI's default would answer 500)."""

    def render(self, content: Any) -> bytes:
        return (json.dumps(content, indent=2, default=str) + "\n").encode("utf-8")
