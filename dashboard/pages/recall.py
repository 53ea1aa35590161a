"""Recall: in-context recall accuracy against model width and recurrent state size, per architecture."""

from __future__ import annotations

import streamlit as st

from dashboard import cached, charts, ui
from dashboard.context import Context
from dashboard.recall_view import recall_metrics, recall_points

EMPTY = (
    "No recall results in {scope} yet. A recall study is a sweep with a `task:` block (MQAR or copy; "
    "see `examples/recall.yaml`): run it with `ceiling run examples/recall.yaml` and its accuracies appear "
    "here (and in `ceiling recall`). Language-model trials that record `copy_score` show up here too."
)


def render_body(ctx: Context) -> None:
    rows = cached.recall_rows(ctx.url, ctx.token.trials, ctx.sweep)
    metrics = recall_metrics(rows)
    if not metrics:
        st.info(EMPTY.format(scope=ctx.scope))
        return
    c1, c2 = st.columns([2, 1])
    metric = c1.selectbox("Metric", metrics, key="recall-metric")
    labels = sorted(rows["label"].unique())
    chosen = c2.multiselect("Architecture", labels, default=labels, key="recall-arch")
    points = recall_points(rows[rows["label"].isin(chosen)], metric)
    if points.empty:
        st.info(f"No finished trial of the chosen architectures recorded `{metric}`.")
        return
    st.caption(
        "Each point: one architecture at one width, at its best learning rate (as in Zoology and "
        "`ceiling recall`) and largest token budget, averaged over seeds; bars span the seeds' min and max. "
        "State size: the numbers a model holds per sequence at inference, at the test setting's length."
    )
    palette = charts.palette(labels)
    name = metric.replace("/", "_")
    for x, title in (("width", "model width (d_model)"), ("state_size", "recurrent state size (numbers)")):
        st.subheader(f"{metric} vs {title.split(' (')[0]}")
        fig = charts.recall_figure(points, x=x, x_title=title, y_title=metric, colors=palette, log_x=True)
        ui.show_chart(fig, points, f"recall-{name}-vs-{x}")
    st.dataframe(points, hide_index=True)


def render() -> None:
    st.title("Recall")
    ctx = ui.page_context()
    if ctx is not None:
        render_body(ctx)


if __name__ == "__main__":
    render()
