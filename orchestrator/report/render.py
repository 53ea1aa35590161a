"""The report as one self-contained HTML page: plotly.js inlined once, every figure a div beside it.

Nothing is fetched when the page opens (no CDN, no fonts, no MathJax), so the file can be mailed,
archived next to the results, or opened on an air-gapped cluster. Every section says why it is empty
when it is. Text from the store (labels, errors, the spec) is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from orchestrator.report import figures, health_table
from orchestrator.report.collect import ReportData
from orchestrator.report.notices import grouped_notices

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 0 24px 48px; color: #222; }
h1 { margin-top: 28px; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 36px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; padding: 12px; overflow-x: auto; font-size: 13px; }
.note { color: #8a5a00; background: #fff7e6; padding: 6px 10px; border-left: 3px solid #f0a000; }
.muted { color: #666; } nav a { margin-right: 12px; }
"""
SECTIONS = (
    ("settings", "Study settings"),
    ("loss-compute", "Loss against compute"),
    ("isoflop", "IsoFLOP profiles"),
    ("parameters", "Fitted parameters"),
    ("health", "Fit health and backtests"),
    ("comparison", "Comparison with the baseline"),
    ("recall", "Recall"),
    ("efficiency", "Efficiency"),
    ("tuning", "Tuning"),
    ("excluded", "Excluded, failed and diverged trials"),
)


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}g}"
    return esc(value)


def interval(pair: Sequence[Any] | None) -> str:
    if not pair or pair[0] is None or pair[1] is None:
        return "–"
    return f"[{number(pair[0])}, {number(pair[1])}]"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """An HTML table; cells are escaped unless they are already markup (wrapped in ``Markup``)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell.html if isinstance(cell, Markup) else esc(cell)
            cells.append(f'<td class="num">{text}</td>' if i in numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class Markup:
    def __init__(self, html_text: str):
        self.html = html_text


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def figure_html(fig: Any, div_id: str) -> str:
    """A figure's div and its newPlot call; the library itself is inlined once in <head>."""
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )


def render_html(data: ReportData) -> str:
    from plotly.offline import get_plotlyjs

    body = [
        f"<h1>ceiling report: {esc(data.sweep)}</h1>",
        f'<p class="muted">generated {esc(datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))} '
        f"by {esc(data.report_version)}; metric {esc(data.settings.metric)}, law {esc(data.settings.form)}, "
        f"{data.settings.n_boot} bootstrap resamples over whole runs (seed {data.settings.seed})</p>",
        "<nav>" + "".join(f'<a href="#{key}">{esc(title)}</a>' for key, title in SECTIONS) + "</nav>",
        _settings(data),
        _loss_compute(data),
        _isoflop(data),
        _parameters(data),
        _health(data),
        _comparison(data),
        _recall(data),
        _efficiency(data),
        _tuning(data),
        _excluded(data),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>ceiling report: {esc(data.sweep)}</title><style>{STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>\n<body>\n'
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _heading(key: str) -> str:
    return f'<h2 id="{key}">{esc(dict(SECTIONS)[key])}</h2>'


def _settings(data: ReportData) -> str:
    import yaml

    counts = ", ".join(f"{status} {n}" for status, n in sorted(data.status_counts.items())) or "no trials"
    roles = ", ".join(f"{role} {n}" for role, n in sorted(data.roles.items())) or "–"
    rows = [
        ("sweep", data.sweep),
        ("code version (sweep)", data.code_version or "unknown"),
        ("code versions (trials)", ", ".join(data.trial_code_versions) or "–"),
        ("corpus fingerprints", ", ".join(data.corpus_fingerprints) or "–"),
        ("submitted", data.created_at),
        ("trials by status", counts),
        ("trials by role", roles),
        ("baseline", data.settings.baseline),
        (
            "target compute",
            number(data.settings.at_compute) if data.settings.at_compute else "largest measured",
        ),
    ]
    spec_yaml = yaml.safe_dump(data.spec, sort_keys=False, default_flow_style=None) if data.spec else "{}"
    return (
        _heading("settings")
        + table(("setting", "value"), rows)
        + "<h3>Sweep spec</h3>"
        + f'<pre id="spec-yaml">{esc(spec_yaml)}</pre>'
    )


def _law_words(form: str) -> str:
    """How a notice names the law: "chinchilla law", or "law (form auto)" when each architecture's
    form was chosen from its runs."""
    return "law (form auto)" if form == "auto" else f"{form} law"


def _missing_notes(missing: dict[str, str], what: str) -> str:
    """One note per distinct reason, naming every architecture it applies to (not one note each)."""
    return "".join(note(text) for text in grouped_notices(missing, what))


def _loss_compute(data: ReportData) -> str:
    section, metric, form = data.laws, data.settings.metric, data.settings.form
    out = _heading("loss-compute")
    if not len(section.runs):
        return out + _missing_notes(section.missing, _law_words(form))
    fig = figures.loss_compute_figure(section, metric, data.settings.at_compute)
    caption = (
        "Points are finished runs; lines are each architecture's fitted law of compute "
        + ("(the compute-optimal frontier L*(C) of the Chinchilla fit)" if form == "chinchilla" else "")
        + ", dashed beyond the largest run. The 95% bootstrap bands are hidden: the buttons above the "
        "chart show them; a legend entry hides or shows one architecture."
    )
    return (
        out
        + figure_html(fig, "fig-loss-compute")
        + f'<p class="muted">{esc(caption)}</p>'
        + _missing_notes(section.missing, _law_words(form))
        + _law_panels(data)
    )


def _law_panels(data: ReportData) -> str:
    """The same laws as small multiples, each against the baseline's, when there is more than one."""
    section, baseline = data.laws, data.settings.baseline
    if len(section.runs.groups) < 2:
        return ""
    fig = figures.law_panels_figure(
        section, data.settings.metric, data.settings.at_compute, baseline=baseline, form=data.settings.form
    )
    has_baseline = baseline in section.fits
    caption = (
        "One panel per architecture, on shared axes: its runs, its law and its 95% bootstrap band"
        + (
            f", over the baseline {baseline}'s law (dark grey) and band (grey): whether the gap to "
            f"{baseline} grows or shrinks with compute is read off each panel."
            if has_baseline
            else f"; the baseline {baseline} has no fit, so the panels have no reference law."
        )
        + " Titles give the law form and, where the fit reports it, its health."
    )
    return (
        f'<h3 id="loss-compute-panels">Each architecture against {esc(baseline)}</h3>'
        + figure_html(fig, "fig-law-panels")
        + f'<p class="muted">{esc(caption)}</p>'
    )


def _isoflop(data: ReportData) -> str:
    section = data.laws
    out = _heading("isoflop")
    if section.profiles:
        fig = figures.isoflop_figure(section.profiles, data.settings.metric, section.runs.groups)
        out += figure_html(fig, "fig-isoflop")
        out += (
            '<p class="muted">One parabola in log N per compute budget with at least 3 model sizes; '
            "stars mark the minima (hollow: the best run, the vertex lies outside the sizes tried).</p>"
        )
    else:
        out += note(
            "no isoFLOP profile: no compute budget has runs of at least 3 model sizes "
            "(plan the sweep with budgets: {isoflop: ...} to get them)"
        )
    return out + _missing_notes(section.isoflop_missing, "isoFLOP law")


def _fit_rows(group: str, fit: Any) -> list[list[Any]]:
    document = fit.to_json()
    scalars = dict(document["params"])
    scalars.update({k: v for k, v in document["derived"].items() if isinstance(v, (int, float))})
    health = (document.get("health") or {}).get("status", "unknown")
    return [
        [group, document["form"], health, name, Markup(number(value)),
         Markup(interval(document["ci95"].get(name))), document["n_runs"]]
        for name, value in scalars.items()
    ]  # fmt: skip


def _parameters(data: ReportData) -> str:
    section = data.laws
    rows: list[list[Any]] = []
    for fits in (section.fits, section.isoflop_fits):
        for group, fit in sorted(fits.items()):
            rows.extend(_fit_rows(group, fit))
    out = _heading("parameters")
    if rows:
        out += table(
            ("architecture", "form", "health", "parameter", "value", "95% CI", "runs"),
            rows,
            numeric=(4, 5, 6),
        )
        out += (
            '<p class="muted">chinchilla: L(N, D) = E + A/N^alpha + B/D^beta; isoflop: N* = k_N C^a, '
            "D* = k_D C^b. Intervals are bootstrap percentiles over whole runs.</p>"
        )
    return (
        out
        + _missing_notes(section.missing, _law_words(data.settings.form))
        + _missing_notes(section.isoflop_missing, "isoFLOP law")
    )


def _health(data: ReportData) -> str:
    """Each law's health (healthy / weak / degenerate and why), how its form was chosen, and whether it
    extrapolates: fitted without the largest size (budget), the held-out runs against its 95% band."""
    rows = health_table.health_rows(data.laws.fits)
    out = _heading("health")
    if rows:
        out += table([c.strip() for c in health_table.COLUMNS], rows)
        out += f'<p class="muted">{esc(health_table.EXPLANATION)}</p>'
    return out


def _comparison(data: ReportData) -> str:
    section = data.laws
    rows = []
    verdicts = []
    for group, result in sorted(section.comparisons.items()):
        document = result.to_json()
        for key, verdict in document["verdicts"].items():
            advantage = verdict["advantage"]
            rows.append(
                [
                    group,
                    result.name_base,
                    "target" if key == "target" else "largest measured",
                    Markup(number(verdict["compute"], 3)),
                    Markup(number(advantage["value"])),
                    Markup(interval(advantage["ci95"])),
                    "; ".join(
                        f"{name} {number(diff['value'][0])} {interval([diff['ci95'][0][0], diff['ci95'][1][0]])}"
                        for name, diff in document["exponent_diff"].items()
                    ),
                    document["crossover"]["text"],
                    verdict["kind"],
                ]
            )
        verdicts.append(f'<li class="verdict">{esc(result.verdict)}</li>')
    out = _heading("comparison")
    if rows:
        out += table(
            ("architecture", "baseline", "at", "compute (FLOPs)", "advantage", "95% CI", "exponent difference",
             "crossover", "verdict"),
            rows,
            numeric=(3, 4, 5),
        )  # fmt: skip
        out += (
            "<p class=\"muted\">Advantage: the baseline's metric minus the architecture's on the "
            "compute-optimal frontier (for higher-is-better metrics the reverse); above zero the "
            "architecture is better. Verdicts, as <code>ceiling compare</code> prints them:</p>"
            f"<ul>{''.join(verdicts)}</ul>"
        )
    return out + _missing_notes(section.comparison_missing, "comparison")


def _recall(data: ReportData) -> str:
    out = _heading("recall")
    metrics = sorted({s.metric for s in data.recall})
    if not metrics:
        return out + note(
            "no recall results in this sweep (no done trial recorded recall_accuracy or copy_score)"
        )
    labels = sorted({s.label for s in data.recall})
    for metric in metrics:
        out += f"<h3>{esc(metric)}</h3>" + figure_html(
            figures.recall_figure(data.recall, metric, labels), f"fig-recall-{metric}"
        )
    return out + (
        '<p class="muted">Per architecture and width: the best learning rate\'s mean over seeds '
        "(bars: min to max); of several token budgets, the largest.</p>"
    )


def _efficiency(data: ReportData) -> str:
    from orchestrator.report.efficiency_section import efficiency_html

    return efficiency_html(data.efficiency, _heading("efficiency"))


def _tuning(data: ReportData) -> str:
    out = _heading("tuning")
    if not data.tuning:
        return out + note("no tuning in this study (every trial used the spec's learning rate)")
    labels = sorted({str(c.get("arch")) for c in data.tuning})
    rows = []
    for choice in data.tuning:
        details = choice.get("details") or {}
        candidates = details.get("candidates") or []
        searched = ", ".join(
            f"{number(c.get('lr'), 3)}: {number(c.get('loss'))}"
            for c in sorted(candidates, key=lambda c: c["lr"])
        )
        rule = details.get("rule") or {}
        rows.append(
            [
                choice.get("arch"),
                choice.get("label"),
                choice.get("method"),
                Markup(number(choice.get("lr"), 3)),
                Markup(number(choice.get("beta2"), 3)),
                searched or "–",
                ", ".join(f"{k}={number(v)}" for k, v in rule.items()) or "–",
            ]
        )
    out += table(
        ("architecture", "label", "method", "chosen lr", "beta2", "searched (lr: loss)", "rule"), rows, (3, 4)
    )
    fig = figures.tuning_figure(data.tuning, labels)
    if fig is not None:
        out += figure_html(fig, "fig-tuning")
    return out


def _excluded(data: ReportData) -> str:
    out = _heading("excluded")
    if not data.problems:
        return out + "<p>None: every trial finished and is in the fits.</p>"
    rows = [
        [p["trial"][:12], p["label"], p["role"], Markup(p["size"]), Markup(p["tokens"]), p["status"], p["reason"],
         p["error"]]
        for p in data.problems
    ]  # fmt: skip
    return out + table(
        ("trial", "architecture", "role", "params", "tokens", "status", "reason", "error (last lines)"),
        rows,
        numeric=(3, 4),
    )
