"""The report of a sweep: the page ``ceiling report`` writes, as HTML or as the Markdown summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.operations.errors import BadInput, require_sweep
from orchestrator.operations.laws import parse_count_option


def report_metric(value: str) -> str:
    """``final_val_loss`` (the trial column) and ``val_loss`` (the law metric) name the same thing."""
    from orchestrator.store.law_inputs import METRICS

    metric = value.removeprefix("final_")
    if metric not in METRICS:
        raise BadInput(f"--metric: unknown metric {value!r}; known: {', '.join(METRICS)}")
    return metric


def report_settings(
    *,
    metric: str = "val_loss",
    form: str = "auto",
    baseline: str = "transformer",
    at: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Any:
    """The report's settings from the option values of ``ceiling report``, each checked (BadInput)."""
    from orchestrator.report import ReportSettings
    from orchestrator.report.collect import FRONTIER_FORMS

    if form != "auto" and form not in FRONTIER_FORMS:
        raise BadInput(
            f"--form: the report compares laws of compute; use auto or one of {', '.join(FRONTIER_FORMS)} "
            f"(got {form!r})"
        )
    if n_boot < 2:
        raise BadInput("--n-boot: needs at least 2 resamples for the intervals and verdicts")
    return ReportSettings(
        metric=report_metric(metric),
        form=form,
        baseline=baseline,
        at_compute=parse_count_option(at, "--at"),
        n_boot=n_boot,
        seed=seed,
    )


def _collect(store: Any, sweep: str, settings: Any, progress: Callable[[str], None]) -> Any:
    from orchestrator.report import collect

    require_sweep(store, sweep, known_label="known", none="none")
    return collect(store, sweep, settings, progress)


def report_html(
    store: Any, sweep: str, settings: Any = None, progress: Callable[[str], None] = lambda _: None
) -> str:
    """The self-contained HTML page of ``ceiling report SWEEP``."""
    from orchestrator.report import ReportSettings
    from orchestrator.report.render import render_html

    data = _collect(store, sweep, settings or ReportSettings(), progress)
    progress("rendering")
    return render_html(data)


def report_markdown(
    store: Any, sweep: str, settings: Any = None, progress: Callable[[str], None] = lambda _: None
) -> str:
    """The Markdown summary of ``ceiling report SWEEP --out x.md`` (the same numbers, no figures)."""
    from orchestrator.report import ReportSettings
    from orchestrator.report.markdown import render_markdown

    data = _collect(store, sweep, settings or ReportSettings(), progress)
    progress("rendering")
    return render_markdown(data)


def write_report_file(
    store: Any, sweep: str, out: Path, settings: Any = None, progress: Callable[[str], None] = lambda _: None
) -> None:
    """Write the report to ``out`` (Markdown for a ``.md`` name, else HTML) atomically: a reader never
    sees half a file."""
    render = report_markdown if out.suffix.lower() == ".md" else report_html
    page = render(store, sweep, settings, progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(out)
