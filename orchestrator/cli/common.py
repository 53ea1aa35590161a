"""Shared CLI plumbing: exit codes, error reporting, JSON output, store options."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console, ConsoleDimensions

# BadInput: raised by commands and by the shared operations for problems the user must fix (exit code 2)
from orchestrator.operations.errors import BadInput as BadInput

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
T = TypeVar("T")
NOT_A_TERMINAL_WIDTH = 400  # columns: more than any of our tables needs


class WideWhenNotTerminal(Console):
    """A rich Console that is as wide as its output needs when it is not writing to a terminal.

    Rich gives a log file, CI or a pipe 80 columns and cuts table cells to ``tran…``; with no screen
    to fit there is no reason to (tables still take only the width their cells need). An explicit
    ``COLUMNS`` is honoured, and a terminal keeps its own width.
    """

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)  # type: ignore[attr-defined]
        if self.is_terminal or "COLUMNS" in os.environ:
            return size
        return ConsoleDimensions(max(size.width, NOT_A_TERMINAL_WIDTH), size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


# Progress, tables for humans and logs go to stderr when --json owns stdout.
err_console = WideWhenNotTerminal(stderr=True)


def out_console(json_mode: bool) -> Console:
    return err_console if json_mode else WideWhenNotTerminal()


def bad_input_types() -> tuple[type[BaseException], ...]:
    from orchestrator.data.corpus import CorpusError
    from orchestrator.spec import SpecError
    from orchestrator.trial import PlanError

    types: list[type[BaseException]] = [BadInput, SpecError, PlanError, CorpusError]
    try:
        from orchestrator.scheduling.runner import ResourceError

        types.append(ResourceError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def guarded(action: Callable[[], T]) -> T:
    """Run a command body, mapping bad input to exit 2 and failures to exit 1 with a readable message."""
    try:
        return action()
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]")
        raise typer.Exit(130) from None
    except Exception as exc:
        if isinstance(exc, bad_input_types()) or _is_laws_input_error(exc):
            err_console.print(f"error: {exc}", style="red", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        if os.environ.get("CEILING_DEBUG"):
            raise
        err_console.print(f"failed: {type(exc).__name__}: {exc}", style="red", highlight=False, markup=False)
        err_console.print("(set CEILING_DEBUG=1 for the full traceback)", style="dim")
        raise typer.Exit(EXIT_FAILURE) from None


def _is_laws_input_error(exc: BaseException) -> bool:
    laws = sys.modules.get("laws")
    error_type = getattr(laws, "LawInputError", None) if laws else None
    return error_type is not None and isinstance(exc, error_type)


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def workdir_path(workdir: Path | None) -> Path:
    """The work folder (not created here: nothing is written before a sweep validates and plans)."""
    return Path(workdir or os.environ.get("CEILING_WORKDIR", "ceiling-runs")).expanduser().resolve()


def db_url(db: str | None, workdir: Path) -> str:
    from orchestrator.store import resolve_url

    return resolve_url(db, workdir)


def open_store(db: str | None, workdir: Path | None):
    """Open an existing store for reading commands; a missing default SQLite store is bad input."""
    from orchestrator.store import Store

    work = workdir_path(workdir)
    url = db_url(db, work)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise BadInput(
            f"no store at {url.removeprefix('sqlite:///')}; run a sweep first "
            "(ceiling run examples/quickstart.yaml) or point --workdir / --db at an existing one"
        )
    return Store.open(url)
