"""`ceiling report`: one self-contained HTML file per sweep (settings, laws, verdicts, recall, tuning,
excluded trials), or its numbers as Markdown. ``collect`` reads and fits, ``figures`` draws, ``render``
writes the page, ``markdown`` the summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.report.collect import ReportData, ReportSettings, collect
from orchestrator.store import Store

__all__ = ["ReportData", "ReportSettings", "collect", "write_report"]


def write_report(
    store: Store,
    sweep: str,
    out: Path,
    settings: ReportSettings | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> ReportData:
    """Collect, render and write the report (atomically: a reader never sees half a file). An output
    ending in .md gets the Markdown summary (same numbers, no figures) instead of the HTML page."""
    data = collect(store, sweep, settings or ReportSettings(), progress)
    progress("rendering")
    if out.suffix.lower() == ".md":
        from orchestrator.report.markdown import render_markdown

        page = render_markdown(data)
    else:
        from orchestrator.report.render import render_html

        page = render_html(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(out)
    return data
