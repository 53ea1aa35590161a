"""Plotly figures for the report: collected data in, figures out (no HTML, no store).

Log axes where the scaling-law literature uses them (compute, parameters, width, learning rate). One
colour per architecture across every figure, from its position in the sorted list of architectures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from laws.isoflop_profiles import BudgetProfile
from orchestrator.report.collect import LawSection
from orchestrator.report.notices import panel_title
from orchestrator.report.panels import Curve, Points, band_trace, law_panels, line_parts, y_range
from orchestrator.report.recall_points import RecallSeries

# plotly's ten less its grey (the small multiples draw the baseline in grey), then three from d3's
# category20b: the twelve registered architectures get twelve distinct colours
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#7b4173")  # fmt: skip
FALLBACK = "#7f7f7f"  # a label outside the palette's list
HEIGHT = 460
GRID_POINTS = 80
EXTRAPOLATE = 4.0  # without a target compute, the law is drawn this far past the largest run (dashed)


def colors(labels: Sequence[str]) -> dict[str, str]:
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(sorted(set(labels)))}


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _layout(fig: Any, *, x_title: str, y_title: str, log_x: bool, log_y: bool = False) -> Any:
    fig.update_layout(
        height=HEIGHT,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        hovermode="closest",
        template="plotly_white",
    )
    fig.update_xaxes(title_text=x_title, type="log" if log_x else "-", exponentformat="power")
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "-")
    return fig


def law_curves(section: LawSection, at_compute: float | None) -> dict[str, Curve]:
    """Each fitted architecture's law of compute from its smallest run to EXTRAPOLATE x its largest (or
    the target compute), with its 95% band; the part beyond its largest run is flagged."""
    columns = section.runs.columns
    out: dict[str, Curve] = {}
    for group, fit in section.fits.items():
        compute = [c for c, g in zip(columns["compute"], columns["group"], strict=True) if g == group]
        if not compute:
            continue
        measured = max(compute)
        grid = np.geomspace(min(compute), max(measured * EXTRAPOLATE, at_compute or 0.0), GRID_POINTS)
        prediction = fit.predict(compute=grid)
        out[group] = Curve(grid, prediction.value, prediction.lo, prediction.hi, grid > measured * (1 + 1e-9))
    return out


def run_points(section: LawSection, metric: str) -> dict[str, Points]:
    columns = section.runs.columns
    out: dict[str, Points] = {}
    for group in section.runs.groups:
        keep = [i for i, g in enumerate(columns["group"]) if g == group]
        out[group] = Points(
            np.array([columns["compute"][i] for i in keep], dtype=float),
            np.array([columns[metric][i] for i in keep], dtype=float),
            [columns["run_id"][i][:8] for i in keep],
        )
    return out


def _band_toggle(bands: list[int]) -> dict[str, Any]:
    """Two buttons that hide / show the band traces (hidden at first: twelve overlapping bands hide the
    lines; the small multiples show each band on its own)."""
    return {
        "type": "buttons",
        "direction": "right",
        "active": 0,
        "x": 0.0,
        "xanchor": "left",
        "y": 1.02,
        "yanchor": "bottom",
        "showactive": True,
        "buttons": [
            {"label": "95% bands off", "method": "restyle", "args": [{"visible": False}, bands]},
            {"label": "95% bands on", "method": "restyle", "args": [{"visible": True}, bands]},
        ],
    }


def loss_compute_figure(section: LawSection, metric: str, at_compute: float | None) -> Any:
    """Runs as points; each architecture's fitted law of compute (chinchilla: the compute-optimal
    frontier L*(C)) as a line, dashed beyond the largest run. Its 95% bootstrap band is drawn but hidden
    (a button shows the bands); one legend entry per architecture toggles its points and law."""
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = colors(section.runs.groups)
    points = run_points(section, metric)
    curves = law_curves(section, at_compute)
    bands: list[int] = []
    for group in section.runs.groups:
        mine, curve = points[group], curves.get(group)
        fig.add_scatter(
            x=mine.x,
            y=mine.y,
            customdata=mine.ids,
            mode="markers",
            name=f"{group} runs" if curve is None else group,
            legendgroup=group,
            marker={"color": palette[group], "size": 8},
            hovertemplate="run %{customdata}<br>%{x:.3s} FLOPs: %{y:.4g}<extra>" + group + "</extra>",
        )
        if curve is None:
            continue
        bands.append(len(fig.data))
        fig.add_scatter(**band_trace(curve, _rgba(palette[group], 0.18), f"{group} 95% CI", legendgroup=group,
                                     visible=False))  # fmt: skip
        for x, value, dash in line_parts(curve):
            fig.add_scatter(
                x=x,
                y=value,
                mode="lines",
                name=f"{group} {'law' if dash == 'solid' else 'extrapolated'}",
                legendgroup=group,
                showlegend=False,
                line={"color": palette[group], "width": 2.5, "dash": dash},
                hovertemplate="%{x:.3s} FLOPs: %{y:.4g}<extra>" + group + "</extra>",
            )
    if at_compute:
        fig.add_vline(x=at_compute, line_dash="dot", line_color="gray")
    _layout(fig, x_title="training compute (FLOPs, 6ND)", y_title=metric, log_x=True)
    if bands:
        fig.update_layout(updatemenus=[_band_toggle(bands)], margin={"t": 50})
    # the runs and laws set the range, not the bands (one degenerate band can span decades)
    fig.update_yaxes(range=y_range(points, curves, log=False), autorange=False)
    fig.update_layout(legend={"groupclick": "togglegroup"})
    return fig


def law_panels_figure(
    section: LawSection, metric: str, at_compute: float | None, *, baseline: str, form: str
) -> Any:
    """Small multiples: one panel per architecture (the baseline first) over the baseline's law and band,
    on shared axes; each title names the form and the fit's health."""
    groups = section.runs.groups
    titles = {g: panel_title(g, section.fits.get(g), form, baseline=g == baseline) for g in groups}
    return law_panels(
        groups,
        baseline if baseline in section.fits else None,
        run_points(section, metric),
        law_curves(section, at_compute),
        titles=titles,
        colors=colors(groups),
        x_title="training compute (FLOPs, 6ND)",
        y_title=metric,
    )


def isoflop_figure(profiles: list[BudgetProfile], metric: str, labels: Sequence[str]) -> Any:
    """One panel per architecture: the metric against size per budget (darker = more compute), the
    parabola through the runs and its minimum (a star; hollow when the best run stands in for it)."""
    from plotly.colors import sample_colorscale
    from plotly.subplots import make_subplots

    groups = sorted({p.group for p in profiles})
    cols = min(3, max(1, len(groups)))
    rows_n = max(1, int(np.ceil(len(groups) / cols)))
    fig = make_subplots(rows=rows_n, cols=cols, subplot_titles=groups)
    for i, group in enumerate(groups):
        row, col = i // cols + 1, i % cols + 1
        mine = sorted((p for p in profiles if p.group == group), key=lambda p: p.budget)
        shades = sample_colorscale("Viridis", list(np.linspace(0.85, 0.1, len(mine))))
        for profile, color in zip(mine, shades, strict=True):
            name = f"{group} {profile.budget:.2g} FLOPs"
            fig.add_scatter(
                x=profile.params, y=profile.values, mode="markers", name=name, legendgroup=name,
                marker={"color": color, "size": 8}, row=row, col=col,
            )  # fmt: skip
            fig.add_scatter(
                x=profile.curve_params, y=profile.curve_values, mode="lines", name=name, legendgroup=name,
                showlegend=False, line={"color": color}, row=row, col=col,
            )  # fmt: skip
            fig.add_scatter(
                x=[profile.params_opt],
                y=[profile.value_opt],
                mode="markers",
                name=f"{name} minimum",
                legendgroup=name,
                showlegend=False,
                marker={"symbol": "star" if profile.interior else "star-open", "size": 14, "color": "black"},
                hovertemplate="N* %{x:.3s}: %{y:.4g}<extra>" + name + "</extra>",
                row=row,
                col=col,
            )
    fig.update_layout(height=max(HEIGHT, 340 * rows_n), margin={"l": 60, "r": 20, "t": 50, "b": 50})
    fig.update_layout(template="plotly_white")
    fig.update_xaxes(type="log", title_text="non-embedding parameters", exponentformat="power")
    fig.update_yaxes(title_text=metric)
    return fig


def recall_figure(series: list[RecallSeries], metric: str, labels: Sequence[str]) -> Any:
    """Accuracy against width per architecture (best learning rate, mean over seeds; bars: min to max)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = colors(labels)
    for entry in series:
        if entry.metric != metric:
            continue
        mean = np.asarray(entry.mean)
        fig.add_scatter(
            x=entry.width,
            y=entry.mean,
            customdata=np.stack([entry.lr, entry.n_seeds], axis=1),
            mode="lines+markers",
            name=entry.label,
            line={"color": palette.get(entry.label, FALLBACK), "width": 2},
            marker={"size": 9},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": np.asarray(entry.high) - mean,
                "arrayminus": mean - np.asarray(entry.low),
            },
            hovertemplate="width %{x}: %{y:.3f} (lr %{customdata[0]:.2g}, %{customdata[1]} seeds)"
            "<extra>" + entry.label + "</extra>",
        )
    return _layout(fig, x_title="model width (d_model)", y_title=metric, log_x=True)


def choice_name(choice: dict[str, Any]) -> str:
    """A tuning choice is per (architecture, size label); say both unless they are the same word."""
    arch, label = str(choice.get("arch") or ""), str(choice.get("label") or "")
    return arch if label in ("", arch) else f"{arch} {label}"


def tuning_figure(choices: list[dict[str, Any]], labels: Sequence[str]) -> Any | None:
    """Short-budget loss against learning rate for every searched (architecture, size); the chosen
    learning rate is a diamond. None when no choice was made by a search."""
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = colors(labels)
    drawn = False
    dashes = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
    seen: dict[str, int] = {}  # sizes of one architecture share its colour; the dash tells them apart
    for choice in choices:
        candidates = sorted(
            (c for c in (choice.get("details") or {}).get("candidates") or [] if c.get("loss") is not None),
            key=lambda c: c["lr"],
        )
        if not candidates:
            continue
        drawn = True
        color = palette.get(choice.get("arch"), FALLBACK)
        name = choice_name(choice)
        nth = seen[str(choice.get("arch"))] = seen.get(str(choice.get("arch")), -1) + 1
        fig.add_scatter(
            x=[c["lr"] for c in candidates],
            y=[c["loss"] for c in candidates],
            mode="lines+markers",
            name=name,
            legendgroup=name,
            line={"color": color, "dash": dashes[nth % len(dashes)]},
        )
        chosen = [c for c in candidates if np.isclose(c["lr"], choice.get("lr") or np.nan)]
        if chosen:
            fig.add_scatter(
                x=[chosen[0]["lr"]],
                y=[chosen[0]["loss"]],
                mode="markers",
                name=f"{name} chosen",
                legendgroup=name,
                showlegend=False,
                marker={
                    "symbol": "diamond",
                    "size": 13,
                    "color": color,
                    "line": {"color": "black", "width": 1},
                },
            )
    if not drawn:
        return None
    return _layout(fig, x_title="learning rate", y_title="short-budget loss", log_x=True)
