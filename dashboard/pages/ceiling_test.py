"""Ceiling test: does each architecture keep its advantage over the baseline as compute grows?

The gap on the compute-optimal frontier with its bootstrap CI, the crossover compute and the verdict
sentences of ``ceiling compare`` (same fits, same function, same words) at measured and target compute.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import cached, charts, laws_view, ui
from dashboard.context import Context
from dashboard.law_controls import controls, explain_exclusions


def verdicts(summary: pd.DataFrame) -> None:
    for row in summary.itertuples(index=False):
        st.markdown(f"#### {row.architecture} vs {row.baseline}")
        st.caption(
            f"law {row.form}; health: {row.architecture} {row.health}, {row.baseline} {row.baseline_health}"
        )
        st.markdown(
            f"**At the largest measured compute** ({row.largest_measured_compute:.2g} FLOPs): "
            f"{row.largest_measured_verdict}"
        )
        if "target_verdict" in summary.columns and isinstance(row.target_verdict, str):
            st.markdown(f"**At the target compute** ({row.target_compute:.2g} FLOPs): {row.target_verdict}")
        lo, hi = row.crossover_ci95_lo, row.crossover_ci95_hi
        ci_text = f" (95% CI {lo:.2g} to {hi:.2g} FLOPs)" if pd.notna(lo) and pd.notna(hi) else ""
        st.caption(
            f"Crossover: {row.crossover_text}{ci_text}; found in {row.crossover_fraction:.0%} of bootstrap "
            "replicates."
        )


def render_body(ctx: Context) -> None:
    trials = cached.trial_table(ctx.url, ctx.token.trials, ctx.sweep)
    if (trials["status"] == "done").sum() == 0:
        st.info(f"{ctx.scope} has no finished trials yet: the comparison uses finished runs only.")
        return
    metric, form, target, n_boot = controls(trials, "ceiling", laws_view.FRONTIER_FORMS)
    fits = cached.law_fits(ctx.url, ctx.token.results, ctx.sweep, metric, form, n_boot)
    explain_exclusions(fits)
    groups = sorted(fits.fits)
    if not groups:
        st.info(f"No architecture of {ctx.scope} has a {form} fit of `{metric}` yet.")
        return
    baseline = st.selectbox(
        "Baseline",
        groups,
        index=groups.index(laws_view.DEFAULT_BASELINE) if laws_view.DEFAULT_BASELINE in groups else 0,
        key="ceiling-baseline",
    )
    if len(groups) < 2:
        st.info(
            f"Only **{baseline}** has a fit in {ctx.scope}: a ceiling test needs a second architecture. "
            'Add one to the sweep\'s `architectures:` (`python -c "import models; print(models.available())"`).'
        )
        return
    pairs = cached.fit_pairs(ctx.url, ctx.token.results, ctx.sweep, metric, form, n_boot, baseline)
    result = laws_view.compare_to_baseline(pairs, baseline, target)
    for group, message in sorted(result.errors.items()):
        st.warning(f"**{group}** vs {baseline}: {message}")
    if result.summary.empty:
        return
    label = laws_view.METRIC_LABELS[metric]
    sign = "X − baseline" if laws_view.higher_is_better(metric) else "baseline − X"
    st.subheader(f"Advantage over {baseline} on the compute-optimal frontier")
    st.caption(
        f"Advantage = {sign} in {label}; above zero the architecture is better. Bands: 95% bootstrap CI "
        "of the difference (both sets of runs resampled together). Grey: beyond the largest compute both "
        "were measured at, where the gap is an extrapolation of two laws."
    )
    palette = charts.palette(sorted(trials["label"].unique()))
    fig = charts.gap_figure(
        result.gaps, result.summary, colors=palette, y_title=f"advantage ({label})", target=target
    )
    ui.show_chart(fig, result.gaps, f"ceiling-gap-{metric}-{form}-vs-{baseline}")
    verdicts(result.summary)
    st.subheader("Summary")
    st.dataframe(result.summary, hide_index=True)
    ui.download_csv(
        result.summary, f"ceiling-summary-{metric}-{form}-vs-{baseline}", "Download summary (CSV)"
    )


def render() -> None:
    st.title("Ceiling test")
    ctx = ui.page_context()
    if ctx is not None:
        render_body(ctx)


if __name__ == "__main__":
    render()
