"""Plotly figure builders: frames in, figures out. Pure functions, so tests can check them without a browser.

Colours: one hue family per architecture (Blues, Oranges, ...) and, within it, darker for bigger models,
so "architecture" and "size" read off one line colour. Log axes wherever the scaling-law literature uses
them: compute, tokens, parameters and state size; loss goes on log too on law plots (power laws are lines).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, sample_colorscale, unlabel_rgb
from plotly.subplots import make_subplots

from orchestrator.report import panels

# Twelve hue families, one per registered architecture; no grey, which the law panels give the baseline.
SCALES = ("Blues", "Oranges", "Greens", "Reds", "Purples", "Teal", "YlOrBr", "PuRd", "BuGn", "RdPu", "turbid",
          "Magenta")  # fmt: skip
STATUS_COLORS = {
    "done": "#2ca02c",
    "running": "#1f77b4",
    "pending": "#c7c7c7",
    "failed": "#d62728",
    "diverged": "#ff7f0e",
}
HEIGHT = 460
FALLBACK = "rgb(128, 128, 128)"  # an architecture missing from the palette


def palette(labels: Sequence[str]) -> dict[str, str]:
    """A stable colour per architecture: the index in the full (sorted) list, so filters don't recolour."""
    return {label: shade(label, labels, 0.75) for label in labels}


def shade(label: str, labels: Sequence[str], depth: float) -> str:
    """``depth`` in [0, 1]: 0 light, 1 dark, within the architecture's hue family."""
    ordered = sorted(labels)
    scale = SCALES[ordered.index(label) % len(SCALES)] if label in ordered else "Greys"
    return sample_colorscale(scale, [0.35 + 0.6 * float(np.clip(depth, 0, 1))])[0]


def with_alpha(color: str, alpha: float) -> str:
    r, g, b = hex_to_rgb(color) if color.startswith("#") else unlabel_rgb(color)[:3]
    return f"rgba({int(r)}, {int(g)}, {int(b)}, {alpha})"


def _layout(fig: go.Figure, *, x_title: str, y_title: str, log_x: bool, log_y: bool, title: str) -> go.Figure:
    fig.update_layout(
        title={"text": title},
        height=HEIGHT,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"groupclick": "togglegroup"},
        hovermode="closest",
    )
    # "-" lets plotly pick (a category axis for sweep names); "power" writes 10^9, not 1B (billion FLOPs?)
    fig.update_xaxes(
        title_text=x_title, type="log" if log_x else "-", exponentformat="power" if log_x else "B"
    )
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "-")
    return fig


def _band(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, color: str, group: str) -> go.Scatter:
    """A filled polygon between lo and hi (one trace, so it toggles with its line in the legend)."""
    keep = np.isfinite(lo) & np.isfinite(hi)
    x, lo, hi = x[keep], lo[keep], hi[keep]
    return go.Scatter(
        x=np.concatenate([x, x[::-1]]),
        y=np.concatenate([hi, lo[::-1]]),
        fill="toself",
        fillcolor=with_alpha(color, 0.18),
        line={"width": 0},
        hoverinfo="skip",
        showlegend=False,
        legendgroup=group,
        name=f"{group} 95% CI",
    )


def status_figure(progress: pd.DataFrame) -> go.Figure:
    """Stacked bars: trials per status for each sweep."""
    fig = go.Figure()
    for status, color in STATUS_COLORS.items():
        fig.add_bar(
            y=progress["sweep"],
            x=progress[status],
            name=status,
            orientation="h",
            marker_color=color,
            hovertemplate="%{y}: %{x} " + status + "<extra></extra>",
        )
    _layout(fig, x_title="trials", y_title="", log_x=False, log_y=False, title="Trials by status")
    fig.update_layout(barmode="stack", height=max(220, 120 + 40 * len(progress)))
    return fig


def curves_figure(
    curves: pd.DataFrame,
    *,
    x: str,
    x_title: str,
    y_title: str,
    colors: Mapping[tuple[str, float], str],
    log_x: bool,
    log_y: bool,
) -> go.Figure:
    """One trace per (architecture, size): its trials' curves joined with gaps, so thousands of curves
    cost a handful of traces. ``curves`` has trial_id, label, size, size_name, x, value."""
    fig = go.Figure()
    data = curves[curves[x] > 0] if log_x else curves
    for (label, size), rows in data.groupby(["label", "size"], sort=True):
        xs, ys, ids = [], [], []
        for trial_id, trial_rows in rows.groupby("trial_id", sort=False):
            xs += [*trial_rows[x].tolist(), None]
            ys += [*trial_rows["value"].tolist(), None]
            ids += [trial_id] * len(trial_rows) + [None]
        fig.add_scatter(
            x=xs,
            y=ys,
            customdata=ids,
            mode="lines",
            name=f"{label} {rows['size_name'].iloc[0]}",
            legendgroup=label,
            legendgrouptitle_text=label,
            line={"color": colors.get((label, size), FALLBACK), "width": 1.5},
            connectgaps=False,
            hovertemplate="trial %{customdata}<br>%{x:.3s}: %{y:.4g}<extra>%{fullData.name}</extra>",
        )
    return _layout(fig, x_title=x_title, y_title=y_title, log_x=log_x, log_y=log_y, title="")


def law_figure(
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    targets: pd.DataFrame,
    *,
    x: str,
    x_title: str,
    y_title: str,
    colors: Mapping[str, str],
    log_y: bool,
    bands: bool = True,
) -> go.Figure:
    """Runs as points, the fitted law as a line (dashed where extrapolated) with its bootstrap band
    (``bands``; off, a dozen overlapping bands hide the lines), and the prediction at the target compute
    with its interval. ``curves`` has group, x, value, ci95_lo/hi, extrapolated; ``targets`` group,
    compute, value, ci95_lo/hi."""
    fig = go.Figure()
    for group, rows in runs.groupby("group", sort=True):
        color = colors.get(group, FALLBACK)
        fig.add_scatter(
            x=rows[x],
            y=rows["value"],
            mode="markers",
            name=group,  # one legend entry per architecture: it toggles the runs and the law together
            legendgroup=group,
            marker={"color": color, "size": 8, "line": {"width": 0.5, "color": "white"}},
            customdata=rows["run_id"],
            hovertemplate="run %{customdata}<br>%{x:.3s}: %{y:.4g}<extra>" + str(group) + "</extra>",
        )
    for group, rows in curves.groupby("group", sort=True):
        color = colors.get(group, FALLBACK)
        xs = rows[x].to_numpy()
        if bands:
            fig.add_trace(_band(xs, rows["ci95_lo"].to_numpy(), rows["ci95_hi"].to_numpy(), color, group))
        measured = rows[~rows["extrapolated"]]
        # the extrapolated segment starts at the last measured point so the line is continuous
        beyond = rows[rows["extrapolated"] | (rows[x] == measured[x].max())] if len(measured) else rows
        fig.add_scatter(
            x=measured[x],
            y=measured["value"],
            mode="lines",
            name=f"{group} law",
            legendgroup=group,
            showlegend=False,
            line={"color": color, "width": 2.5},
        )
        if rows["extrapolated"].any():
            fig.add_scatter(
                x=beyond[x],
                y=beyond["value"],
                mode="lines",
                name=f"{group} extrapolated",
                legendgroup=group,
                showlegend=False,
                line={"color": color, "width": 2, "dash": "dash"},
            )
    for _, row in targets.iterrows():
        color = colors.get(row["group"], FALLBACK)
        fig.add_scatter(
            x=[row["compute"]],
            y=[row["value"]],
            mode="markers",
            name=f"{row['group']} at target",
            legendgroup=row["group"],
            showlegend=False,
            marker={"color": color, "size": 12, "symbol": "diamond"},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [row["ci95_hi"] - row["value"]],
                "arrayminus": [row["value"] - row["ci95_lo"]],
                "color": color,
            },
            hovertemplate=f"{row['group']} at %{{x:.3s}} FLOPs: %{{y:.4g}} "
            f"(95% CI {row['ci95_lo']:.4g} to {row['ci95_hi']:.4g})<extra></extra>",
        )
    if len(targets):
        fig.add_vline(x=float(targets["compute"].iloc[0]), line_dash="dot", line_color="gray")
    return _layout(fig, x_title=x_title, y_title=y_title, log_x=True, log_y=log_y, title="")


def law_panels_figure(
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    *,
    x: str,
    baseline: str | None,
    titles: Mapping[str, str],
    colors: Mapping[str, str],
    x_title: str,
    y_title: str,
    log_y: bool,
) -> go.Figure:
    """Small multiples, as the report draws them (``orchestrator.report.panels``): one panel per
    architecture over the baseline's law and band. Frames as for ``law_figure``."""
    points = {
        str(g): panels.Points(rows[x].to_numpy(float), rows["value"].to_numpy(float), rows["run_id"].tolist())
        for g, rows in runs.groupby("group", sort=True)
    }
    laws_drawn = {
        str(g): panels.Curve(*(rows[c].to_numpy() for c in (x, "value", "ci95_lo", "ci95_hi", "extrapolated")))
        for g, rows in curves.groupby("group", sort=True)
    } if len(curves) else {}  # fmt: skip
    return panels.law_panels(
        sorted(points), baseline, points, laws_drawn, titles=titles, colors=colors, x_title=x_title,
        y_title=y_title, log_y=log_y,
    )  # fmt: skip


def frontier_figure(
    frontier: pd.DataFrame, optima: pd.DataFrame, *, colors: Mapping[str, str], target: float | None
) -> go.Figure:
    """Compute-optimal model size N*(C) per architecture with its band; isoFLOP minima as stars."""
    fig = go.Figure()
    for group, rows in frontier.groupby("group", sort=True):
        color = colors.get(group, FALLBACK)
        xs = rows["compute"].to_numpy()
        fig.add_trace(
            _band(xs, rows["N_opt_ci95_lo"].to_numpy(), rows["N_opt_ci95_hi"].to_numpy(), color, group)
        )
        fig.add_scatter(
            x=xs,
            y=rows["N_opt"],
            mode="lines",
            name=f"{group} N*(C)",
            legendgroup=group,
            line={"color": color, "width": 2.5},
            hovertemplate="%{x:.3s} FLOPs: N* %{y:.3s}<extra>" + group + "</extra>",
        )
    for group, rows in optima.groupby("group", sort=True):
        fig.add_scatter(
            x=rows["budget"],
            y=rows["params_opt"],
            mode="markers",
            name=f"{group} isoFLOP minima",
            legendgroup=group,
            marker={"color": colors.get(group, FALLBACK), "size": 12, "symbol": "star"},
            hovertemplate="budget %{x:.3s}: N* %{y:.3s}<extra>" + group + "</extra>",
        )
    if target:
        fig.add_vline(x=target, line_dash="dot", line_color="gray")
    return _layout(
        fig,
        x_title="training compute (FLOPs)",
        y_title="optimal non-embedding parameters N*",
        log_x=True,
        log_y=True,
        title="",
    )


def isoflop_figure(
    profile: pd.DataFrame, optima: pd.DataFrame, *, labels: Sequence[str], y_title: str, log_y: bool
) -> go.Figure:
    """One panel per architecture: the metric against size at each compute budget (darker = more compute),
    the parabola through the runs and its minimum."""
    groups = sorted(profile["group"].unique())
    cols = min(3, max(1, len(groups)))
    rows_n = int(np.ceil(len(groups) / cols)) if groups else 1
    fig = make_subplots(rows=rows_n, cols=cols, subplot_titles=groups, shared_yaxes=False)
    for i, group in enumerate(groups):
        r, c = i // cols + 1, i % cols + 1
        mine = profile[profile["group"] == group]
        budgets = sorted(mine["budget"].unique())
        for j, budget in enumerate(budgets):
            color = shade(group, labels, j / max(1, len(budgets) - 1))
            name = f"{group} {budget:.2g} FLOPs"
            runs = mine[(mine["budget"] == budget) & (mine["kind"] == "run")]
            fit = mine[(mine["budget"] == budget) & (mine["kind"] == "parabola")]
            fig.add_scatter(
                x=runs["params"],
                y=runs["value"],
                mode="markers",
                name=name,
                legendgroup=name,
                marker={"color": color, "size": 8},
                row=r,
                col=c,
            )
            fig.add_scatter(
                x=fit["params"],
                y=fit["value"],
                mode="lines",
                name=name,
                legendgroup=name,
                showlegend=False,
                line={"color": color},
                row=r,
                col=c,
            )
        best = optima[optima["group"] == group]
        fig.add_scatter(
            x=best["params_opt"],
            y=best["value_opt"],
            mode="markers",
            name=f"{group} minima",
            marker={"symbol": "star", "size": 13, "color": "black"},
            row=r,
            col=c,
            customdata=best["interior"],
            hovertemplate="N* %{x:.3s}: %{y:.4g} (interior: %{customdata})<extra></extra>",
        )
    fig.update_layout(height=max(HEIGHT, 340 * rows_n), margin={"l": 60, "r": 20, "t": 50, "b": 50})
    fig.update_xaxes(type="log", title_text="non-embedding parameters", exponentformat="power")
    fig.update_yaxes(type="log" if log_y else "-", title_text=y_title)
    return fig


def gap_figure(
    gaps: pd.DataFrame,
    summary: pd.DataFrame,
    *,
    colors: Mapping[str, str],
    y_title: str,
    target: float | None,
) -> go.Figure:
    """Each architecture's advantage over the baseline along the compute-optimal frontier, with its
    bootstrap band; above zero the architecture is better. Crossovers are marked."""
    fig = go.Figure()
    for group, rows in gaps.groupby("architecture", sort=True):
        color = colors.get(group, FALLBACK)
        xs = rows["compute"].to_numpy()
        fig.add_trace(_band(xs, rows["ci95_lo"].to_numpy(), rows["ci95_hi"].to_numpy(), color, group))
        fig.add_scatter(
            x=xs,
            y=rows["advantage"],
            mode="lines",
            name=group,
            legendgroup=group,
            line={"color": color, "width": 2.5},
            hovertemplate="%{x:.3s} FLOPs: advantage %{y:+.4g}<extra>" + group + "</extra>",
        )
    for _, row in summary.iterrows():
        if row.get("crossover_compute"):
            fig.add_scatter(
                x=[row["crossover_compute"]],
                y=[0.0],
                mode="markers",
                name=f"{row['architecture']} crossover",
                legendgroup=row["architecture"],
                marker={"symbol": "x", "size": 14, "color": colors.get(row["architecture"], FALLBACK)},
            )
    fig.add_hline(y=0.0, line_color="black", line_width=1)
    if len(summary) and len(gaps) and gaps["compute"].max() > summary["largest_measured_compute"].max():
        # beyond the largest common measured compute the gap is an extrapolation of two laws: say so
        fig.add_vrect(
            x0=summary["largest_measured_compute"].max(),
            x1=gaps["compute"].max(),
            fillcolor="gray",
            opacity=0.08,
            line_width=0,
            annotation_text="extrapolated",
            annotation_position="top left",
        )
    if target:
        fig.add_vline(x=target, line_dash="dot", line_color="gray")
    return _layout(
        fig, x_title="training compute (FLOPs)", y_title=y_title, log_x=True, log_y=False, title=""
    )


def recall_figure(
    points: pd.DataFrame, *, x: str, x_title: str, y_title: str, colors: Mapping[str, str], log_x: bool
) -> go.Figure:
    """Accuracy against width or state size per architecture; bars span the seeds' min and max."""
    fig = go.Figure()
    for group, rows in points.sort_values(x).groupby("label", sort=True):
        color = colors.get(group, FALLBACK)
        fig.add_scatter(
            x=rows[x],
            y=rows["mean"],
            mode="lines+markers",
            name=group,
            line={"color": color, "width": 2},
            marker={"size": 9},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": rows["max"] - rows["mean"],
                "arrayminus": rows["mean"] - rows["min"],
            },
            hovertemplate="%{x:.3s}: %{y:.3f}<extra>" + group + "</extra>",
        )
    return _layout(fig, x_title=x_title, y_title=y_title, log_x=log_x, log_y=False, title="")
