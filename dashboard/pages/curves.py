"""Curves: each trial's training curve against tokens and against FLOPs, coloured by architecture and size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import cached, charts, ui
from dashboard.context import Context
from dashboard.queries import STATUS_ORDER

MAX_CURVES = 200  # beyond this a chart is a blur and the browser slows; the user narrows the filters
MAX_POINTS = 150  # per curve, downsampled in SQL
LOSS_LIKE = ("loss", "bpb")


def pick_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Filters for architecture, size, seed and status; returns the matching trials."""
    c1, c2, c3 = st.columns(3)
    labels = sorted(trials["label"].unique())
    chosen = c1.multiselect("Architecture", labels, default=labels, key="curves-arch")
    sizes = sorted(trials["size_target"].unique())
    chosen_sizes = c2.multiselect(
        "Size (target parameters)", sizes, default=sizes, format_func=ui.size_name, key="curves-size"
    )
    # pending trials have no curve yet; but if nothing has started, show those (and say so below)
    started = set(trials["status"]) - {"pending"}
    default_status = [s for s in STATUS_ORDER if s != "pending"] if started else list(STATUS_ORDER)
    chosen_status = c3.multiselect("Status", STATUS_ORDER, default=default_status, key="curves-status")
    return trials[
        trials["label"].isin(chosen)
        & trials["size_target"].isin(chosen_sizes)
        & trials["status"].isin(chosen_status)
    ]


def evenly(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    """At most ``limit`` rows spread over the whole (sorted) frame, so every size and budget stays visible."""
    if len(frame) <= limit:
        return frame
    return frame.iloc[np.linspace(0, len(frame) - 1, limit).round().astype(int)]


def colours(trials: pd.DataFrame, all_labels: list[str]) -> dict[tuple[str, float], str]:
    out: dict[tuple[str, float], str] = {}
    for label, rows in trials.groupby("label"):
        sizes = sorted(rows["size_target"].unique())
        for rank, size in enumerate(sizes):
            out[(label, size)] = charts.shade(label, all_labels, rank / max(1, len(sizes) - 1))
    return out


def render_body(ctx: Context) -> None:
    trials = cached.trial_table(ctx.url, ctx.token.trials, ctx.sweep)
    if trials.empty:
        st.info(f"{ctx.scope} has no trials yet.")
        return
    chosen = pick_trials(trials)
    if chosen.empty:
        st.info("No trial matches these filters.")
        return
    ordered = chosen.sort_values(["label", "size_target", "tokens", "seed"])
    shown = evenly(ordered, MAX_CURVES)
    if len(shown) < len(chosen):
        st.caption(
            f"Showing {len(shown)} of {len(chosen)} matching trials, spread over sizes and budgets; "
            "narrow the filters to see the others."
        )
    ids = tuple(shown["id"])
    metrics = cached.eval_metrics(ctx.url, ctx.token.evals, ids)
    if not metrics:
        st.info("These trials have recorded no evals yet: curves appear after their first eval interval.")
        return
    c1, c2, c3 = st.columns([2, 1, 1])
    metric = c1.selectbox(
        "Metric",
        metrics,
        index=metrics.index("val_loss") if "val_loss" in metrics else 0,
        key="curves-metric",
    )
    log_x = c2.toggle("log x", value=True, key="curves-logx")
    log_y = c3.toggle("log y", value=any(k in metric for k in LOSS_LIKE), key="curves-logy")
    data = cached.curves(ctx.url, ctx.token.evals, ids, metric, MAX_POINTS)
    if data.empty:
        st.info(f"No `{metric}` rows for these trials.")
        return
    meta = shown[["id", "label", "size_target", "tokens", "seed"]].rename(
        columns={"id": "trial_id", "size_target": "size"}
    )
    data = data.merge(meta, on="trial_id").assign(size_name=lambda f: f["size"].map(ui.size_name))
    palette = colours(shown, sorted(trials["label"].unique()))
    for x, title in (("tokens_seen", "tokens seen"), ("flops", "training FLOPs")):
        st.subheader(f"{metric} vs {title}")
        fig = charts.curves_figure(
            data, x=x, x_title=title, y_title=metric, colors=palette, log_x=log_x, log_y=log_y
        )
        ui.show_chart(fig, data, f"curves-{metric.replace('/', '_')}-vs-{x}")


def render() -> None:
    st.title("Curves")
    ctx = ui.page_context()
    if ctx is not None:
        render_body(ctx)


if __name__ == "__main__":
    render()
