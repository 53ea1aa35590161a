"""Efficiency: quality against decode cost, the crossover with the Transformer, recall against state
bytes, length extrapolation and the table of claims, from an efficiency study's measurements."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard import cached, ui
from dashboard.context import Context
from dashboard.efficiency_view import (
    claims_table,
    contexts_of,
    model_table,
    models_of,
    recall_state_points,
    relative_table,
)
from orchestrator.report import efficiency_figures as figures
from orchestrator.report.efficiency_points import relative_costs

EMPTY = (
    "No efficiency measurements in {scope} yet. An efficiency study is a language-model sweep with an "
    "`efficiency:` block (see `examples/efficiency.yaml`): run it with `ceiling run examples/efficiency.yaml` "
    "and every trained model's decode cost, state bytes, prefill speed and length extrapolation appear here."
)


def _recall(ctx: Context) -> pd.DataFrame | None:
    from dashboard.recall_view import recall_points

    rows = cached.recall_rows(ctx.url, ctx.token.trials, ctx.sweep)
    points = recall_points(rows, "recall_accuracy") if len(rows) else None
    return points if points is not None and len(points) else None


def render_body(ctx: Context) -> None:
    try:
        rows = cached.efficiency_rows(ctx.url, ctx.token.results, ctx.sweep)
    except SQLAlchemyError:
        st.info("This store predates the efficiency table; any `ceiling` command that opens it migrates it.")
        return
    models = models_of(rows)
    contexts = contexts_of(models)
    if not models or not contexts:
        st.info(EMPTY.format(scope=ctx.scope))
        return
    labels = sorted({m.label for m in models})
    c1, c2 = st.columns(2)
    context = c1.selectbox("Context length L", contexts, index=len(contexts) - 1, key="eff-context")
    baseline = c2.selectbox(
        "Baseline",
        labels,
        index=labels.index("transformer") if "transformer" in labels else 0,
        key="eff-base",
    )
    table = model_table(models, context)

    st.subheader(f"Quality against decode cost at L = {context:,}")
    st.caption(
        "One point per architecture and size (seeds averaged): validation loss against the milliseconds one "
        "generated token costs after L tokens of context, batch 1. Dashed: the Pareto frontier."
    )
    ui.show_chart(figures.pareto_figure(models, context), table, f"efficiency-pareto-L{context}")

    st.subheader("Decode cost and state against context length")
    ui.show_chart(figures.decode_cost_figure(models), rows[rows["measure"] == "decode"], "efficiency-decode")
    ui.show_chart(figures.state_figure(models), rows[rows["measure"] == "decode"], "efficiency-state")

    relatives = relative_costs(models, baseline)
    if relatives:
        st.subheader(f"Crossover: where each architecture gets cheaper than {baseline}")
        relative = relative_table(relatives)
        ui.show_chart(figures.speedup_figure(relatives, baseline), relative, "efficiency-speedup")
        st.dataframe(relative, hide_index=True)

    st.subheader("Recall against state bytes")
    points = recall_state_points(models, context, _recall(ctx))
    if points:
        frame = pd.DataFrame(points, columns=["architecture", "model", "state_bytes", "accuracy"])
        fig = figures.recall_state_figure(
            points, f"state bytes per sequence (L = {context:,})", "copy score / recall"
        )
        ui.show_chart(fig, frame, f"efficiency-recall-L{context}")
    else:
        st.info("No model in scope recorded a copy score or recall accuracy with its state measured.")

    st.subheader("Length extrapolation")
    extrapolation = rows[rows["measure"].isin(["extrapolation", "position"])]
    ui.show_chart(figures.extrapolation_figure(models), extrapolation, "efficiency-extrapolation")
    ui.show_chart(figures.position_figure(models), extrapolation, "efficiency-positions")

    st.subheader("The claims, tested at our scale")
    st.dataframe(claims_table(models, baseline), hide_index=True)
    st.dataframe(table, hide_index=True)


def render() -> None:
    st.title("Efficiency")
    ctx = ui.page_context()
    if ctx is not None:
        render_body(ctx)


if __name__ == "__main__":
    render()
