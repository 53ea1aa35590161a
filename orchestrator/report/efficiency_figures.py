"""Plotly figures of the efficiency study, shared by the report and the dashboard's Efficiency page.

Models in (``efficiency_points.ModelCosts``), figures out: quality against decode cost with the Pareto
frontier, decode cost and state bytes against context length, speedup over the baseline (where it
crosses 1 is the crossover context length), recall against state bytes, and extrapolation curves.
One colour per architecture (the report's palette); sizes are told apart by marker size and dash.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.report.efficiency_points import ModelCosts, Relative, largest_per_label, pareto_front

HEIGHT = 440
DASHES = ("dot", "dash", "dashdot", "solid")  # smallest size to largest: the largest reads as the main line


def _colors(models: Sequence[Any]) -> dict[str, str]:
    from orchestrator.report.figures import colors

    return colors([m.label for m in models])


def _layout(fig: Any, x_title: str, y_title: str, *, log_x: bool = True, log_y: bool = False) -> Any:
    fig.update_layout(
        height=HEIGHT,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        template="plotly_white",
        hovermode="closest",
    )
    fig.update_xaxes(title_text=x_title, type="log" if log_x else "-")
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "-")
    return fig


def _dash(model: ModelCosts, models: Sequence[ModelCosts]) -> str:
    sizes = sorted({m.size_target for m in models if m.label == model.label})
    rank = sizes.index(model.size_target) + len(DASHES) - len(sizes)
    return DASHES[max(0, min(rank, len(DASHES) - 1))]


def pareto_figure(models: Sequence[ModelCosts], length: int) -> Any:
    """Validation loss against decode ms/token at ``length`` (batch 1); the frontier dashed in black."""
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = _colors(models)
    for label in sorted({m.label for m in models}):
        mine = [m for m in models if m.label == label and m.decode_ms(length) and m.val_loss is not None]
        mine.sort(key=lambda m: m.size_target)
        fig.add_trace(
            go.Scatter(
                x=[m.decode_ms(length) for m in mine], y=[m.val_loss for m in mine], name=label,
                mode="lines+markers+text", text=[m.name.split()[-1] for m in mine], textposition="top center",
                marker={"color": palette[label], "size": 10}, line={"color": palette[label], "width": 1},
            )
        )  # fmt: skip
    front = pareto_front(models, length)
    if front:
        fig.add_trace(
            go.Scatter(
                x=[m.decode_ms(length) for m in front], y=[m.val_loss for m in front], name="Pareto frontier",
                mode="lines", line={"color": "black", "dash": "dash", "width": 1.5}, hoverinfo="skip",
            )
        )  # fmt: skip
    return _layout(
        fig, f"decode cost at L = {length:,} (ms per token, batch 1)", "validation loss (nats/token)"
    )


def decode_cost_figure(models: Sequence[ModelCosts]) -> Any:
    """Decode ms/token against context length, one line per architecture and size (log-log)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = _colors(models)
    for m in models:
        contexts = m.contexts
        fig.add_trace(
            go.Scatter(
                x=contexts, y=[m.decode_ms(L) for L in contexts], name=m.name, legendgroup=m.label,
                mode="lines+markers", line={"color": palette[m.label], "dash": _dash(m, models)},
            )
        )  # fmt: skip
    return _layout(fig, "context length L (tokens)", "decode cost (ms per token, batch 1)", log_y=True)


def speedup_figure(relatives: Sequence[Relative], baseline: str) -> Any:
    """Each model's decode speed over the baseline's at its size: above 1 it is cheaper; the context
    where its line crosses 1 is the crossover length."""
    import plotly.graph_objects as go

    fig = go.Figure()
    models = [r.model for r in relatives]
    palette = _colors(models)
    for r in relatives:
        lengths = sorted(r.speedup)
        fig.add_trace(
            go.Scatter(
                x=lengths, y=[r.speedup[L] for L in lengths], name=r.model.name, legendgroup=r.model.label,
                mode="lines+markers", line={"color": palette[r.model.label], "dash": _dash(r.model, models)},
                hovertext=[f"crossover {r.crossover_text}"] * len(lengths),
            )
        )  # fmt: skip
    fig.add_hline(y=1.0, line={"color": "grey", "dash": "dot"}, annotation_text=f"as fast as {baseline}")
    return _layout(fig, "context length L (tokens)", f"decode speedup over {baseline} (batch 1)", log_y=True)


def state_figure(models: Sequence[ModelCosts]) -> Any:
    """Bytes held per sequence after L tokens (recurrent state or KV cache); the analytic KV count dotted."""
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = _colors(models)
    for m in models:
        lengths = sorted(m.state_bytes)
        fig.add_trace(
            go.Scatter(
                x=lengths, y=[m.state_bytes[L] for L in lengths], name=m.name, legendgroup=m.label,
                mode="lines+markers", line={"color": palette[m.label], "dash": _dash(m, models)},
            )
        )  # fmt: skip
        if m.kv_analytic:
            counted = sorted(m.kv_analytic)
            fig.add_trace(
                go.Scatter(
                    x=counted, y=[m.kv_analytic[L] for L in counted], name=f"{m.name} (analytic KV count)",
                    legendgroup=m.label, mode="markers", marker={"symbol": "x", "color": palette[m.label]},
                    showlegend=False,
                )
            )  # fmt: skip
    return _layout(fig, "context length L (tokens)", "state or KV cache (bytes per sequence)", log_y=True)


def recall_state_figure(points: Sequence[tuple[str, str, float, float]], x_title: str, y_title: str) -> Any:
    """Recall-like accuracy against bytes of state: ``(label, name, state bytes, accuracy)`` points."""
    import plotly.graph_objects as go

    fig = go.Figure()
    labels = sorted({p[0] for p in points})
    from orchestrator.report.figures import colors

    palette = colors(labels)
    for label in labels:
        mine = sorted((p for p in points if p[0] == label), key=lambda p: p[2])
        fig.add_trace(
            go.Scatter(
                x=[p[2] for p in mine], y=[p[3] for p in mine], name=label, mode="markers+lines",
                text=[p[1] for p in mine], marker={"color": palette[label], "size": 9},
                line={"color": palette[label], "width": 1},
            )
        )  # fmt: skip
    return _layout(fig, x_title, y_title)


def extrapolation_figure(models: Sequence[ModelCosts]) -> Any:
    """Val loss at each multiple of the training length over the loss at 1x, each architecture's largest size."""
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = _colors(models)
    for label, m in sorted(largest_per_label(models).items()):
        if not m.extrapolation:
            continue
        lengths = sorted(m.extrapolation)
        base = m.extrapolation[lengths[0]]
        fig.add_trace(
            go.Scatter(
                x=[L // lengths[0] for L in lengths], y=[m.extrapolation[L] / base for L in lengths], name=m.name,
                mode="lines+markers", line={"color": palette[label]},
                hovertext=[f"loss {m.extrapolation[L]:.4f} at {L} tokens" for L in lengths],
            )
        )  # fmt: skip
    fig.add_hline(y=1.0, line={"color": "grey", "dash": "dot"})
    return _layout(fig, "evaluated length / training length", "val loss / val loss at the training length")


def position_figure(models: Sequence[ModelCosts]) -> Any:
    """Loss by position bucket when reading the longest evaluated length; the training length dotted."""
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = _colors(models)
    train_len = None
    for label, m in sorted(largest_per_label(models).items()):
        if not m.positions:
            continue
        longest = max(m.positions)
        buckets = sorted(m.positions[longest])
        train_len = m.train_len
        fig.add_trace(
            go.Scatter(
                x=[max(1, b) for b in buckets], y=[m.positions[longest][b] for b in buckets],
                name=f"{m.name} ({longest} tokens)", mode="lines+markers", line={"color": palette[label]},
            )
        )  # fmt: skip
    if train_len:
        fig.add_vline(x=train_len, line={"color": "grey", "dash": "dot"}, annotation_text="training length")
    return _layout(
        fig, "position in the sequence (bucket start, tokens)", "val loss in the bucket (nats/token)"
    )
