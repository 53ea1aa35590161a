"""One row per architecture's law: its form (and how `auto` chose it), health, reasons, backtest.

Shared by the report's "Fit health and backtests" section and the dashboard's Scaling laws page, so
both say the same thing in the same words. Plain values only (no HTML): each caller formats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COLUMNS = (
    "architecture",
    "form",
    "health",
    "reasons",
    "largest size held out: error",
    "inside 95% band",
    "largest budget held out: error",
    "inside 95% band ",  # a trailing space keeps the two band columns distinct in a DataFrame
)
EXPLANATION = (
    "healthy: every exponent identified (95% CI within 10x, away from zero), the floor E and each term "
    "identified, residual scale under 2%, backtest error under 5%; weak: identified but with a warning "
    "for extrapolation; degenerate: the runs do not identify the law, and its numbers are not estimates "
    "(compare states no trend from it). Backtest: the law refitted without the runs at the largest size "
    "(and, separately, the largest budget) predicts them."
)


def _backtest_cells(result: Mapping[str, Any] | None) -> list[str]:
    if not result:
        return ["not computed", ""]
    if "abs_rel_error_mean" not in result:
        return [str(result.get("error", "not computed")), ""]
    inside = result.get("inside_band")
    return [
        f"{result['abs_rel_error_mean']:.2%} (max {result['abs_rel_error_max']:.2%})",
        "" if inside is None else f"{inside} of {result['n_test_runs']}",
    ]


def form_text(document: Mapping[str, Any]) -> str:
    """The fit's form, and for --form auto why it was chosen and what the richer forms lacked."""
    form = str(document["form"])
    choice = (document.get("fit") or {}).get("form_choice")
    if not choice:
        return form
    passed_over = "; ".join(f"{t['form']}: {t['reason']}" for t in choice["tried"] if t["form"] != form)
    return f"{form} (auto: {choice['why']}{'; ' + passed_over if passed_over else ''})"


def health_rows(fits: Mapping[str, Any]) -> list[list[str]]:
    """Rows in COLUMNS order for {architecture: laws.FitResult}."""
    rows = []
    for group, fit in sorted(fits.items()):
        document = fit.to_json()
        health = document.get("health") or {"status": "unknown", "reasons": []}
        backtest = health.get("backtest") or {}
        rows.append(
            [
                group,
                form_text(document),
                health["status"],
                "; ".join(health["reasons"]) or "-",
                *_backtest_cells(backtest.get("largest_size")),
                *_backtest_cells(backtest.get("largest_budget")),
            ]
        )
    return rows
