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
from orchestrator.report.recall_points import RecallSeries

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")  # fmt: skip
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


def loss_compute_figure(section: LawSection, metric: str, at_compute: float | None) -> Any:
    """Runs as points; each architecture's fitted law of compute (chinchilla: the compute-optimal
    frontier L*(C)) as a line with its 95% bootstrap band, dashed beyond the largest run."""
    import plotly.graph_objects as go

    fig = go.Figure()
    columns = section.runs.columns
    palette = colors(section.runs.groups)
    for group in section.runs.groups:
        keep = [i for i, g in enumerate(columns["group"]) if g == group]
        fig.add_scatter(
            x=[columns["compute"][i] for i in keep],
            y=[columns[metric][i] for i in keep],
            customdata=[columns["run_id"][i][:8] for i in keep],
            mode="markers",
            name=f"{group} runs",
            legendgroup=group,
            marker={"color": palette[group], "size": 8},
            hovertemplate="run %{customdata}<br>%{x:.3s} FLOPs: %{y:.4g}<extra></extra>",
        )
        fit = section.fits.get(group)
        if fit is None:
            continue
        lo = min(columns["compute"][i] for i in keep)
        measured = max(columns["compute"][i] for i in keep)
        hi = max(measured * EXTRAPOLATE, at_compute or 0.0)
        grid = np.geomspace(lo, hi, GRID_POINTS)
        prediction = fit.predict(compute=grid)
        keep_band = np.isfinite(prediction.lo) & np.isfinite(prediction.hi)
        fig.add_scatter(
            x=np.concatenate([grid[keep_band], grid[keep_band][::-1]]),
            y=np.concatenate([prediction.hi[keep_band], prediction.lo[keep_band][::-1]]),
            fill="toself",
            fillcolor=_rgba(palette[group], 0.18),
            line={"width": 0},
            hoverinfo="skip",
            name=f"{group} 95% CI",
            legendgroup=group,
            showlegend=False,
        )
        inside = grid <= measured * (1 + 1e-9)
        for part, dash, label in (
            (inside, "solid", "law"),
            (~inside | (grid == grid[inside][-1]), "dash", ""),
        ):
            fig.add_scatter(
                x=grid[part],
                y=prediction.value[part],
                mode="lines",
                name=f"{group} {label or 'extrapolated'}",
                legendgroup=group,
                showlegend=bool(label),
                line={"color": palette[group], "width": 2.5, "dash": dash},
                hovertemplate="%{x:.3s} FLOPs: %{y:.4g}<extra>" + group + "</extra>",
            )
    if at_compute:
        fig.add_vline(x=at_compute, line_dash="dot", line_color="gray")
    return _layout(fig, x_title="training compute (FLOPs, 6ND)", y_title=metric, log_x=True)


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
            line={"color": palette.get(entry.label, PALETTE[-3]), "width": 2},
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
        color = palette.get(choice.get("arch"), PALETTE[-3])
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
