"""Scaling laws: the metric against compute per architecture with the fitted law, its bootstrap band and
its extrapolation to a target compute; the compute-optimal frontier; isoFLOP profiles; fitted parameters."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import cached, charts, laws_view, ui
from dashboard.context import Context
from dashboard.law_controls import FORMS, controls, explain_exclusions
from orchestrator.report import health_table, notices


def law_section(fits: laws_view.LawFits, target: float | None, palette: dict[str, str]) -> None:
    x = laws_view.FORM_X[fits.form]
    runs = fits.runs
    hi_measured = runs[x].max()
    hi = max(hi_measured, target) if (target and x == "compute") else hi_measured
    lo = runs[x].min()
    curves, targets = [], []
    for group, fit in fits.fits.items():
        measured = runs.loc[runs["group"] == group, x].max()
        curves.append(laws_view.law_curve(fit, x, lo, hi * 1.05, measured).assign(group=group))
        if target and x == "compute":
            targets.append({"group": group, **laws_view.at_target(fit, target)})
    curve_frame = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    target_frame = pd.DataFrame(targets, columns=["group", "compute", "value", "ci95_lo", "ci95_hi"])
    label = laws_view.METRIC_LABELS[fits.metric]
    st.subheader(f"{label} vs {laws_view.X_LABELS[x]}")
    if x != "compute" and target:
        st.caption(f"The target compute applies to laws of compute; {fits.form} is a law of {x}.")
    bands = st.toggle(
        "Show 95% bands",
        value=False,
        key="laws-bands",
        help="off: with many architectures the bands cover each other; the panels below show each one",
    )
    fig = charts.law_figure(
        runs,
        curve_frame,
        target_frame,
        x=x,
        x_title=laws_view.X_LABELS[x],
        y_title=label,
        colors=palette,
        log_y=not laws_view.higher_is_better(fits.metric),
        bands=bands,
    )
    data = pd.concat(
        [runs.assign(kind="run"), curve_frame.assign(kind="law"), target_frame.assign(kind="target")],
        ignore_index=True,
    )
    ui.show_chart(fig, data, f"law-{fits.metric}-{fits.form}")
    if len(target_frame):
        st.dataframe(target_frame.rename(columns={"group": "architecture"}), hide_index=True)
    if runs["group"].nunique() > 1:
        panels_section(fits, curve_frame, palette)


def panels_section(fits: laws_view.LawFits, curves: pd.DataFrame, palette: dict[str, str]) -> None:
    """Small multiples: each architecture in its own panel over the baseline's law and band."""
    x = laws_view.FORM_X[fits.form]
    fitted = sorted(fits.fits)
    default = laws_view.DEFAULT_BASELINE
    st.subheader("Each architecture against the baseline")
    baseline = (
        st.selectbox(
            "Baseline",
            fitted,
            index=fitted.index(default) if default in fitted else 0,
            key="laws-baseline",
            help="drawn in grey in every panel",
        )
        if fitted
        else None
    )
    st.caption(
        "Shared axes: whether an architecture's gap to the baseline grows or shrinks with "
        f"{x} is read off its panel. Titles give the law form and the fit's health."
    )
    titles = {
        g: notices.panel_title(g, fits.fits.get(g), fits.form, baseline=g == baseline)
        for g in sorted(fits.runs["group"].unique())
    }
    fig = charts.law_panels_figure(
        fits.runs,
        curves,
        x=x,
        baseline=baseline,
        titles=titles,
        colors=palette,
        x_title=laws_view.X_LABELS[x],
        y_title=laws_view.METRIC_LABELS[fits.metric],
        log_y=not laws_view.higher_is_better(fits.metric),
    )
    ui.show_chart(fig, curves, f"law-panels-{fits.metric}-{fits.form}")


def frontier_section(
    ctx: Context, fits: laws_view.LawFits, target: float | None, n_boot: int, palette: dict[str, str]
) -> None:
    st.subheader("Compute-optimal frontier")
    source = fits
    if fits.form != "chinchilla" and not all(f.form == "chinchilla" for f in fits.fits.values()):
        # only chinchilla and isoFLOP fits say how to split compute between size and tokens
        source = cached.law_fits(ctx.url, ctx.token.results, ctx.sweep, fits.metric, "isoflop", n_boot)
    isoflop = laws_view.isoflop_profiles(fits.runs, higher=laws_view.higher_is_better(fits.metric))
    profile, optima = isoflop.profile, isoflop.optima
    if not source.fits:
        reasons = "; ".join(notices.grouped_notices(source.errors, f"{source.form} fit"))
        st.info(
            "No frontier: it needs a chinchilla fit (choose it above; >= 8 runs per architecture) or an "
            f"isoFLOP fit. {reasons}"
        )
    else:
        lo = fits.runs["compute"].min()
        hi = max(fits.runs["compute"].max(), target or 0)
        frames = [laws_view.frontier(fit, lo, hi).assign(group=g) for g, fit in source.fits.items()]
        frontier = pd.concat(frames, ignore_index=True)
        st.caption(f"N*(C) from the {source.form} fit of each architecture, with its 95% bootstrap band.")
        fig = charts.frontier_figure(frontier, optima, colors=palette, target=target)
        ui.show_chart(fig, frontier, f"frontier-{fits.metric}-{source.form}")
    st.subheader("isoFLOP profiles")
    if profile.empty:
        st.info(
            "No compute budget has runs of 3 or more sizes, so there is no isoFLOP profile. Plan one with "
            "`budgets: {isoflop: {budgets: [1e15, 3e15], points: 5}}` in the sweep file."
        )
        return
    fig = charts.isoflop_figure(
        profile,
        optima,
        labels=list(palette),
        y_title=laws_view.METRIC_LABELS[fits.metric],
        log_y=not laws_view.higher_is_better(fits.metric),
    )
    ui.show_chart(fig, profile, f"isoflop-{fits.metric}")
    if isoflop.skipped:
        st.caption(
            f"{isoflop.skipped} more budgets with 3+ sizes are not drawn: at most "
            f"{laws_view.MAX_BUDGETS} per architecture, spread over the compute range."
        )
    st.caption(
        "Stars: each budget's optimum (the parabola's vertex in log N, or the best run when the "
        "vertex falls outside the sizes tried)."
    )
    st.dataframe(optima, hide_index=True)


def health_section(fits: laws_view.LawFits) -> None:
    """Each law's health and backtest, in the report's words (orchestrator.report.health_table)."""
    if not fits.fits:
        return
    st.subheader("Fit health and backtests")
    frame = pd.DataFrame(health_table.health_rows(fits.fits), columns=list(health_table.COLUMNS))
    st.dataframe(frame, hide_index=True)
    st.caption(health_table.EXPLANATION)


def render_body(ctx: Context) -> None:
    trials = cached.trial_table(ctx.url, ctx.token.trials, ctx.sweep)
    if (trials["status"] == "done").sum() == 0:
        st.info(f"{ctx.scope} has no finished trials yet: laws are fitted to finished runs only.")
        return
    metric, form, target, n_boot = controls(trials, "laws", FORMS)
    fits = cached.law_fits(ctx.url, ctx.token.results, ctx.sweep, metric, form, n_boot, True)
    if fits.runs.empty:
        st.info(f"No finished trial of {ctx.scope} recorded `{metric}`. Choose another metric.")
        explain_exclusions(fits)
        return
    palette = charts.palette(sorted(trials["label"].unique()))
    explain_exclusions(fits)
    law_section(fits, target, palette)
    frontier_section(ctx, fits, target, n_boot, palette)
    health_section(fits)
    st.subheader("Fitted parameters (95% bootstrap CIs)")
    table = laws_view.params_table(fits.fits)
    if table.empty:
        st.info("No architecture has a fit yet (see the messages above).")
    else:
        st.dataframe(table, hide_index=True)
        ui.download_csv(table, f"fit-params-{metric}-{form}", "Download parameters (CSV)")


def render() -> None:
    st.title("Scaling laws")
    ctx = ui.page_context()
    if ctx is not None:
        render_body(ctx)


if __name__ == "__main__":
    render()
