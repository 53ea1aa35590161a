"""Small multiples of fitted laws: one panel per architecture, each over the baseline's law and band.

With a dozen architectures on one chart the bands cover each other; in a panel of its own an
architecture's points, law and band sit over the baseline's (grey), on axes shared by every panel, so
"does X's gap to the baseline grow or shrink" is read off one panel. Arrays in, a plotly figure out:
the report and the dashboard both draw it (numpy and plotly only, no store, no streamlit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

COLS = 3  # ~370 px per panel in the report's 1200 px page: titles with a health reason fit on a line
ROW_HEIGHT = 260  # one panel's plot area, px
GAP_ONE_LINE, GAP_TWO_LINES = 50, 70  # px between rows: the titles of the row below sit in the gap
BASELINE_LINE = "#222222"
BASELINE_BAND = "rgba(120, 120, 120, 0.22)"
PAD = 0.06  # of the y span, above and below the runs and laws
TITLE_CHARS = 44  # a longer title breaks after its health status ("mamba — chinchilla, weak:<br>...")
MARGIN_TOP, MARGIN_BOTTOM = 100, 50


@dataclass(frozen=True)
class Points:
    """One architecture's runs."""

    x: np.ndarray
    y: np.ndarray
    ids: Sequence[str]


@dataclass(frozen=True)
class Curve:
    """One architecture's fitted law on a grid, with its 95% band; ``extrapolated`` marks the grid
    beyond its largest run."""

    x: np.ndarray
    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    extrapolated: np.ndarray


def rgba(color: str, alpha: float) -> str:
    """``#rrggbb`` or ``rgb(r, g, b)`` (the report's and the dashboard's palettes) with transparency."""
    if color.startswith("#"):
        r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    else:
        r, g, b = (int(float(v)) for v in color[color.index("(") + 1 : color.index(")")].split(",")[:3])
    return f"rgba({r}, {g}, {b}, {alpha})"


def wrap_title(title: str, width: int = TITLE_CHARS) -> str:
    """Two lines when one would run into the next panel: after the status, or else at a space."""
    if len(title) <= width:
        return title
    head, sep, tail = title.partition(": ")
    if sep:
        return f"{head}:<br>{tail}"
    cut = title.rfind(" ", 0, width)
    return title if cut <= 0 else f"{title[:cut]}<br>{title[cut + 1 :]}"


def band_trace(curve: Curve, fill: str, name: str, **extra: Any) -> dict[str, Any]:
    """The band as one closed polygon (hi forward, lo back); points without a finite interval dropped."""
    keep = np.isfinite(curve.lo) & np.isfinite(curve.hi)
    x = np.asarray(curve.x)[keep]
    return {
        "x": np.concatenate([x, x[::-1]]),
        "y": np.concatenate([np.asarray(curve.hi)[keep], np.asarray(curve.lo)[keep][::-1]]),
        "fill": "toself",
        "fillcolor": fill,
        "line": {"width": 0},
        "hoverinfo": "skip",
        "name": name,
        "showlegend": False,
        **extra,
    }


def line_parts(curve: Curve) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(x, value, dash) for the measured part (solid) and the extrapolation (dashed, starting at the last
    measured point so the line is continuous)."""
    x, value = np.asarray(curve.x), np.asarray(curve.value)
    beyond = np.asarray(curve.extrapolated, dtype=bool)
    inside = ~beyond
    parts = []
    if inside.any():
        parts.append((x[inside], value[inside], "solid"))
    if beyond.any():
        start = np.flatnonzero(inside)[-1:] if inside.any() else np.array([], dtype=int)
        idx = np.concatenate([start, np.flatnonzero(beyond)])
        parts.append((x[idx], value[idx], "dash"))
    return parts


def y_range(points: Mapping[str, Points], curves: Mapping[str, Curve], *, log: bool) -> list[float] | None:
    """A y range that holds every run and every law line but not the bands: one degenerate fit's band
    (a CI spanning decades) would otherwise squash every other panel flat. Log axes take log10 bounds."""
    values = [np.asarray(p.y, dtype=float) for p in points.values()]
    values += [np.asarray(c.value, dtype=float) for c in curves.values()]
    flat = np.concatenate(values) if values else np.array([])
    flat = flat[np.isfinite(flat) & ((flat > 0) if log else True)]
    if not flat.size:
        return None
    lo, hi = (np.log10(flat.min()), np.log10(flat.max())) if log else (flat.min(), flat.max())
    pad = PAD * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1e-3)
    return [float(lo - pad), float(hi + pad)]


def law_panels(
    groups: Sequence[str],
    baseline: str | None,
    points: Mapping[str, Points],
    curves: Mapping[str, Curve],
    *,
    titles: Mapping[str, str],
    colors: Mapping[str, str],
    x_title: str,
    y_title: str,
    log_y: bool = False,
    cols: int = COLS,
) -> Any:
    """One panel per group (the baseline's first) with shared log-x and y axes. Every other panel
    also draws the baseline's law and band in grey."""
    from plotly.subplots import make_subplots

    order = [baseline] if baseline in groups else []
    order += [g for g in groups if g != baseline]
    cols = max(1, min(cols, len(order)))
    rows = max(1, math.ceil(len(order) / cols))
    # cells past the last group get no axes at all (None), instead of an empty grid
    specs = [[{} if r * cols + c < len(order) else None for c in range(cols)] for r in range(rows)]
    wrapped = [wrap_title(titles.get(g, g)) for g in order]
    gap = GAP_TWO_LINES if any("<br>" in t for t in wrapped) else GAP_ONE_LINE
    plot_height = ROW_HEIGHT * rows + gap * (rows - 1)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        specs=specs,
        shared_xaxes="all",
        shared_yaxes="all",
        subplot_titles=wrapped,
        horizontal_spacing=0.04,
        vertical_spacing=gap / plot_height,
    )
    base_curve = curves.get(baseline) if baseline else None
    for i, group in enumerate(order):
        row, col = i // cols + 1, i % cols + 1
        color = colors.get(group, "#7f7f7f")
        if base_curve is not None and group != baseline:
            fig.add_scatter(**band_trace(base_curve, BASELINE_BAND, f"{baseline} 95% CI"), row=row, col=col)
            for x, value, dash in line_parts(base_curve):
                fig.add_scatter(
                    x=x, y=value, mode="lines", name=f"{baseline} (baseline): law and 95% band",
                    legendgroup="baseline", showlegend=i == 1 and dash == "solid",
                    line={"color": BASELINE_LINE, "width": 1.5, "dash": dash},
                    hovertemplate="%{x:.3s}: %{y:.4g}<extra>" + f"{baseline} (baseline)</extra>",
                    row=row, col=col,
                )  # fmt: skip
        curve = curves.get(group)
        if curve is not None:
            fig.add_scatter(**band_trace(curve, rgba(color, 0.25), f"{group} 95% CI"), row=row, col=col)
        mine = points.get(group)
        if mine is not None:
            fig.add_scatter(
                x=mine.x, y=mine.y, customdata=list(mine.ids), mode="markers", name=f"{group} runs",
                showlegend=False, marker={"color": color, "size": 7, "line": {"width": 0.5, "color": "white"}},
                hovertemplate="run %{customdata}<br>%{x:.3s}: %{y:.4g}<extra>" + group + "</extra>",
                row=row, col=col,
            )  # fmt: skip
        for x, value, dash in line_parts(curve) if curve is not None else []:
            fig.add_scatter(
                x=x, y=value, mode="lines", name=f"{group} law", showlegend=False,
                line={"color": color, "width": 2.5 if dash == "solid" else 2, "dash": dash},
                hovertemplate="%{x:.3s}: %{y:.4g}<extra>" + group + "</extra>",
                row=row, col=col,
            )  # fmt: skip
    _axes(fig, order, cols, x_title, y_title, log_y, y_range(points, curves, log=log_y))
    fig.update_layout(
        height=plot_height + MARGIN_TOP + MARGIN_BOTTOM,
        margin={"l": 60, "r": 20, "t": MARGIN_TOP, "b": MARGIN_BOTTOM},
        template="plotly_white",
        hovermode="closest",
        # one line above the first row's titles
        legend={"orientation": "h", "yanchor": "bottom", "x": 0, "y": 1 + 55 / plot_height},
    )
    return fig


def _axes(
    fig: Any,
    order: Sequence[str],
    cols: int,
    x_title: str,
    y_title: str,
    log_y: bool,
    y_span: list[float] | None,
) -> None:
    fig.update_xaxes(type="log", exponentformat="power", showticklabels=False)
    fig.update_yaxes(type="log" if log_y else "-", range=y_span, autorange=y_span is None)
    fig.update_annotations(font={"size": 12})  # the subplot titles
    for i in range(len(order)):
        row, col = i // cols + 1, i % cols + 1
        # tick labels under each column's lowest panel (the last row may be short)
        if i + cols >= len(order):
            fig.update_xaxes(showticklabels=True, title_text=x_title, row=row, col=col)
        if col == 1:
            fig.update_yaxes(title_text=y_title, row=row, col=col)
