"""Sweeps: progress of every sweep, then the chosen sweep's trials with status, sizes, metrics and errors."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from dashboard import cached, charts, ui
from dashboard.context import Context
from dashboard.queries import STATUS_ORDER

REFRESH_S = 5
MAX_ERRORS_SHOWN = 20
STALE_HEARTBEAT_S = 600  # a running trial silent this long has probably lost its worker
TABLE_COLUMNS = {
    "id": st.column_config.TextColumn("trial", width="small"),
    "label": "architecture",
    "status": "status",
    "attempts": st.column_config.NumberColumn("attempts", format="%d"),
    "size_target": st.column_config.NumberColumn("target size", format="compact"),
    "params_non_embedding": st.column_config.NumberColumn("params (non-emb)", format="compact"),
    "params_total": st.column_config.NumberColumn("params (total)", format="compact"),
    "state_size": st.column_config.NumberColumn("state size", format="compact"),
    "tokens": st.column_config.NumberColumn("tokens", format="compact"),
    "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
    "flops_6nd": st.column_config.NumberColumn("FLOPs (6ND)", format="%.3e"),
    "flops_exact": st.column_config.NumberColumn("FLOPs (exact)", format="%.3e"),
    "final_val_loss": st.column_config.NumberColumn("val loss", format="%.4f"),
    "final_val_bpb": st.column_config.NumberColumn("bits/byte", format="%.4f"),
    "final_train_loss": st.column_config.NumberColumn("train loss", format="%.4f"),
    "copy_score": st.column_config.NumberColumn("copy score", format="%.3f"),
    "recall_accuracy": st.column_config.NumberColumn("recall acc.", format="%.3f"),
    "wall_time_s": st.column_config.NumberColumn("wall time (s)", format="%.1f"),
    "seed": st.column_config.NumberColumn("seed", format="%d"),
    "lr": st.column_config.NumberColumn("lr", format="%.2e"),
    "error": st.column_config.TextColumn("error", width="medium"),
}


def overview(ctx: Context) -> None:
    progress = cached.sweep_progress(ctx.url, ctx.token.trials)
    st.subheader("All sweeps")
    left, right = st.columns([3, 2])
    with left:
        ui.show_chart(charts.status_figure(progress), progress, "sweep-progress")
    with right:
        st.dataframe(
            progress[["sweep", "total", *STATUS_ORDER, "progress"]],
            hide_index=True,
            column_config={
                "progress": st.column_config.ProgressColumn("finished", min_value=0.0, max_value=1.0)
            },
        )


def scope_summary(trials: pd.DataFrame, scope: str) -> None:
    counts = trials["status"].value_counts()
    st.subheader(f"Trials of {scope}")
    cols = st.columns(5)
    for col, status in zip(cols, ("done", "running", "pending", "failed", "diverged"), strict=True):
        col.metric(status, int(counts.get(status, 0)))
    finished = int(counts.get("done", 0) + counts.get("failed", 0) + counts.get("diverged", 0))
    total = max(1, len(trials))
    st.progress(finished / total, text=f"{finished} of {len(trials)} trials finished")
    running = trials[trials["status"] == "running"]
    if len(running):
        now = datetime.now(timezone.utc)
        beats = pd.to_datetime(running["heartbeat_at"], utc=True)
        stale = running[(now - beats).dt.total_seconds() > STALE_HEARTBEAT_S]
        if len(stale):
            st.warning(
                f"{len(stale)} running trial(s) sent no heartbeat for over {STALE_HEARTBEAT_S // 60} min: "
                "their orchestrator may have stopped; `ceiling resume SWEEP` picks them up."
            )


def trial_list(trials: pd.DataFrame, scope: str) -> None:
    left, right = st.columns(2)
    # every status is an option from the start, so a trial that starts running while the page refreshes
    # shows up instead of being filtered out by a selection made before it existed
    chosen_status = left.multiselect("Status", STATUS_ORDER, default=STATUS_ORDER, key="sweeps-status")
    labels = sorted(trials["label"].unique())
    chosen_labels = right.multiselect("Architecture", labels, default=labels, key="sweeps-arch")
    shown = trials[trials["status"].isin(chosen_status) & trials["label"].isin(chosen_labels)]
    st.caption(f"{len(shown)} of {len(trials)} trials")
    st.dataframe(
        shown[[c for c in TABLE_COLUMNS if c in shown.columns]],
        hide_index=True,
        column_config=TABLE_COLUMNS,
    )
    ui.download_csv(shown, f"trials-{scope}", "Download trials (CSV)")
    problems = shown[shown["status"].isin(["failed", "diverged"])]
    if len(problems):
        st.subheader(f"Failed and diverged trials ({len(problems)})")
        for row in problems.head(MAX_ERRORS_SHOWN).itertuples(index=False):
            error = row.error or "(no error recorded)"
            last_line = error.strip().splitlines()[-1] if error.strip() else error
            where = f" at step {int(row.diverged_step)}" if pd.notna(row.diverged_step) else ""
            with st.expander(f"{row.id} · {row.label} · {row.status}{where}: {last_line[:120]}"):
                st.code(error[-4000:], language="text")
        if len(problems) > MAX_ERRORS_SHOWN:
            st.caption(f"{len(problems) - MAX_ERRORS_SHOWN} more: filter by architecture or download the CSV")


def body(ctx: Context) -> None:
    ctx = ui.fresh(ctx)
    overview(ctx)
    trials = cached.trial_table(ctx.url, ctx.token.trials, ctx.sweep)
    if trials.empty:
        st.info(f"{ctx.scope} has no trials yet.")
        return
    scope = ctx.sweep or "all-sweeps"
    scope_summary(trials, ctx.scope)
    trial_list(trials, scope)


def render() -> None:
    st.title("Sweeps")
    ctx = ui.page_context()
    if ctx is None:
        return
    auto = st.toggle(
        f"Auto-refresh every {REFRESH_S} s",
        value=True,
        key="sweeps-autorefresh",
        help="re-reads the store's change token; tables are re-queried only when something changed",
    )
    # A fragment reruns on its own without rerunning (or refitting) the rest of the app.
    st.fragment(body, run_every=REFRESH_S if auto else None)(ctx)


if __name__ == "__main__":
    render()
