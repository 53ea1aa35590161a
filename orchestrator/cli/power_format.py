"""Human output of the design-power analysis in `ceiling plan` (summary) and `ceiling plan --power`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _ci(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "n/a"
    return f"[{entry['lo']:.2f}, {entry['hi']:.2f}] ({entry['median_span']:.2g}x)"


def _pct(value: float | None) -> str:
    return (
        "n/a (too few runs without the largest size)" if value is None or value != value else f"~{value:.1%}"
    )


def _shares(result: dict[str, Any]) -> str:
    s = result["shares"]
    failed = f", fit failed {s['failed']:.0%}" if s.get("failed") else ""
    return f"healthy {s['healthy']:.0%}, weak {s['weak']:.0%}, degenerate {s['degenerate']:.0%}{failed}"


def _fix(result: dict[str, Any]) -> str | None:
    for row in result.get("suggestions", []):
        if row.get("fixes"):
            return (
                f"{row['change']} (+{row['added_fraction']:.0%} FLOPs): degenerate in "
                f"{row['degenerate_share']:.0%} of simulated studies, healthy in {row['healthy_share']:.0%}"
            )
    return None


def _grouped(document: dict[str, Any]) -> list[tuple[list[str], dict[str, Any]]]:
    """Architectures whose designs share one simulation, so twelve identical lines print once."""
    groups: list[tuple[list[str], dict[str, Any]]] = []
    for label, result in document["architectures"].items():
        for labels, other in groups:
            if other == result:
                labels.append(label)
                break
        else:
            groups.append(([label], result))
    return groups


def print_power_summary(console: Console, document: dict[str, Any]) -> None:
    first = next(iter(document["architectures"].values()))
    console.print(
        f"design power ({first['n_simulations']} simulated studies per design, fitted as `ceiling laws` "
        f"will: chinchilla, whole-run bootstrap, health); losses from {first['reference_law']['source']}; "
        f"noise {document['noise']:.2%} per run, {document['noise_source']}:",
        highlight=False,
        soft_wrap=True,
    )
    for labels, result in _grouped(document):
        who = ", ".join(labels) if len(labels) <= 3 else f"{len(labels)} architectures ({', '.join(labels)})"
        ci = result["exponent_ci95"]
        console.print(
            f"  {who}: {_shares(result)}; expected 95% CI alpha {_ci(ci.get('alpha'))}, beta {_ci(ci.get('beta'))}; "
            f"leave-largest-size-out error {_pct(result['backtest_largest_size_error'])}",
            highlight=False,
            soft_wrap=True,
        )
        if result["likely_degenerate"]:
            fix = _fix(result)
            console.print(
                f"  warning: this design is likely to give a degenerate law ({', '.join(result['top_reasons'])})"
                + (f"; cheapest fix: {fix}" if fix else "; no single simulated change fixes it"),
                style="bold yellow",
                highlight=False,
                soft_wrap=True,
            )


def power_table(document: dict[str, Any]) -> Table:
    table = Table(title="design power per architecture (simulated studies)", title_justify="left")
    for column in (
        "architecture",
        "sizes",
        "budgets",
        "seeds",
        "healthy",
        "weak",
        "degenerate",
        "alpha 95% CI",
        "beta 95% CI",
        "backtest err",
        "most common reason",
    ):
        table.add_column(
            column, justify="left" if column in ("architecture", "most common reason") else "right"
        )
    for label, r in document["architectures"].items():
        table.add_row(
            label,
            str(len(r["sizes"])),
            str(len(r["budgets"])),
            str(r["seeds"]),
            f"{r['shares']['healthy']:.0%}",
            f"{r['shares']['weak']:.0%}",
            f"{r['shares']['degenerate'] + r['shares']['failed']:.0%}",
            _ci(r["exponent_ci95"].get("alpha")),
            _ci(r["exponent_ci95"].get("beta")),
            _pct(r["backtest_largest_size_error"]),
            r["top_reasons"][0] if r["top_reasons"] else "",
        )
    return table


def suggestions_table(labels: list[str], result: dict[str, Any]) -> Table:
    table = Table(title=f"candidate changes for {', '.join(labels)} (cheapest first)", title_justify="left")
    for column in ("change", "added FLOPs", "degenerate", "healthy", "fixes"):
        table.add_column(column, justify="left" if column == "change" else "right")
    for row in result["suggestions"]:
        simulated = row.get("fixes") is not None
        table.add_row(
            row["change"],
            f"+{row['added_fraction']:.0%}",
            f"{row['degenerate_share']:.0%}" if simulated else "-",
            f"{row['healthy_share']:.0%}" if simulated else "-",
            ("yes" if row["fixes"] else "no") if simulated else "not simulated",
        )
    return table


def print_power_full(console: Console, document: dict[str, Any]) -> None:
    print_power_summary(console, document)
    console.print(power_table(document))
    for labels, result in _grouped(document):
        if result.get("suggestions"):
            console.print(suggestions_table(labels, result))
