"""The `ceiling` command line (typer + rich)."""

from orchestrator.cli.app import app, main

__all__ = ["app", "main"]
