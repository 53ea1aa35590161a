"""Human output of `ceiling fit | laws | predict | compare`: every number beside its fit's health.

Works on the Fit JSON documents (the same ones `--json` prints), so what a person reads and what a
machine reads come from one source.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

HEALTH_STYLE = {"healthy": "green", "weak": "yellow", "degenerate": "bold red"}


def health_of(fit_json: dict[str, Any]) -> dict[str, Any]:
    return fit_json.get("health") or {"status": "unknown", "reasons": []}


def health_label(fit_json: dict[str, Any]) -> str:
    """`healthy` | `weak` | `degenerate`, for captions and table cells."""
    return str(health_of(fit_json)["status"])


def params_table(fit_json: dict[str, Any], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("parameter", "value", "95% CI"):
        table.add_column(column, justify="left" if column == "parameter" else "right")
    for name, value in fit_json["params"].items():
        lo, hi = fit_json.get("ci95", {}).get(name, [None, None])
        table.add_row(name, _num(value), _interval(lo, hi))
    for name, value in (fit_json.get("derived") or {}).items():
        if isinstance(value, (int, float)):
            lo, hi = fit_json.get("ci95", {}).get(name, [None, None])
            table.add_row(f"{name} (derived)", _num(value), _interval(lo, hi))
    status = health_label(fit_json)
    table.caption = f"{fit_json.get('n_runs')} runs, form {fit_json.get('form')}, health: {status}"
    return table


def print_fit(console: Console, fit_json: dict[str, Any], title: str) -> None:
    """The parameter table, then the form choice (for --form auto) and the health with its reasons."""
    console.print(params_table(fit_json, title))
    choice = (fit_json.get("fit") or {}).get("form_choice")
    if choice:
        console.print(f"  form auto -> {choice['chosen']}: {choice['why']}", highlight=False, markup=False)
    print_health(console, fit_json)


def print_health(console: Console, fit_json: dict[str, Any], indent: str = "  ") -> None:
    health = health_of(fit_json)
    status = health["status"]
    style = HEALTH_STYLE.get(status, "")
    console.print(f"{indent}health: {status}", style=style, highlight=False, markup=False)
    for reason in health.get("reasons", []):
        console.print(f"{indent}  - {reason}", style=style, highlight=False, soft_wrap=True, markup=False)
    if status == "degenerate":
        console.print(
            f"{indent}  numbers from this fit are not estimates: add the sizes/budgets the reasons name",
            style=style,
            highlight=False,
        )


def not_an_estimate_note(fit_json: dict[str, Any]) -> str | None:
    """The plain sentence `predict` prints under a number from a degenerate fit."""
    health = health_of(fit_json)
    if health["status"] != "degenerate":
        return None
    first = health["reasons"][0] if health.get("reasons") else "the data do not identify the law"
    return f"NOT AN ESTIMATE: the {fit_json.get('form')} fit is degenerate ({first})"


def prediction_line(metric: str, value: Any, ci: Any, where: str) -> str:
    """`val_loss at 1M params, 20M tokens: 3.12 (95% CI 3.05 to 3.20)`."""
    lo, hi = ci if ci else (None, None)
    return f"{metric} at {where}: {_num(value)} (95% CI {_num(lo)} to {_num(hi)})"


def backtest_table(fits: dict[str, dict[str, Any]]) -> Table:
    """One row per architecture: each hold-out's mean error and how many held-out runs fell in the band."""
    table = Table(title="backtest: fit without the largest size (budget), predict it", title_justify="left")
    for column in (
        "architecture",
        "form",
        "size out: error",
        "in 95% band",
        "budget out: error",
        "in 95% band",
    ):
        table.add_column(column, justify="left" if column in ("architecture", "form") else "right")
    for group, fit_json in fits.items():
        backtest = health_of(fit_json).get("backtest") or {}
        cells: list[str] = []
        for key in ("largest_size", "largest_budget"):
            result = backtest.get(key) or {}
            if "abs_rel_error_mean" in result:
                cells += [
                    f"{result['abs_rel_error_mean']:.2%}",
                    f"{result.get('inside_band', '?')}/{result['n_test_runs']}",
                ]
            else:
                cells += ["-", result.get("error", "not computed")[:40]]
        table.add_row(group, str(fit_json.get("form")), *cells)
    return table


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _interval(lo: Any, hi: Any) -> str:
    return "" if lo is None or hi is None else f"[{lo:.4g}, {hi:.4g}]"
