"""Controls and notes shared by the two law pages (Scaling laws, Ceiling test)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from dashboard import laws_view, ui
from orchestrator.report import notices

FORMS = (  # law forms offered on the Scaling laws page
    "auto",
    "chinchilla",
    "power_c",
    "power_c_noE",
    "power_n",
    "power_d",
)
FORM_HELP = (
    "auto: per architecture, the richest form its runs identify (chinchilla, else power_c, else "
    "power_c_noE), as `ceiling laws`; chinchilla: L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. approach 3), drawn along its "
    "compute-optimal frontier; power_c: L(C) = E + (C0/C)^gamma; power_n / power_d: laws of size / tokens"
)
BOOTS = (100, 200, 1000)


def default_form(trials: pd.DataFrame) -> str:
    """auto, as `ceiling laws`, `compare` and the report: each fit says which form it chose and why."""
    return "auto"


def default_target(trials: pd.DataFrame) -> float:
    """The next-but-one power of ten above the largest run: a typical 'what if we scaled 10-100x' question."""
    largest = trials.loc[trials["status"] == "done", "flops_6nd"].max()
    return 10.0 ** (math.ceil(math.log10(largest)) + 1) if pd.notna(largest) and largest > 0 else 1e21


def controls(trials: pd.DataFrame, prefix: str, forms: tuple[str, ...]) -> tuple[str, str, float | None, int]:
    """Metric, law form, target compute and bootstrap size: shared by the two law pages."""
    c1, c2, c3, c4 = st.columns(4)
    metrics = list(laws_view.METRIC_LABELS)
    metric = c1.selectbox("Metric", metrics, format_func=laws_view.METRIC_LABELS.get, key=f"{prefix}-metric")
    form_default = default_form(trials)
    form = c2.selectbox(
        "Law form", forms, index=forms.index(form_default), key=f"{prefix}-form", help=FORM_HELP
    )
    with c3:
        target = ui.compute_input("Target compute (FLOPs)", default_target(trials), f"{prefix}-target")
    n_boot = c4.selectbox(
        "Bootstrap resamples",
        BOOTS,
        index=BOOTS.index(1000),
        key=f"{prefix}-nboot",
        help="1000 matches `ceiling laws` (and shares its cached fits); fewer is faster, with rougher intervals",
    )
    return metric, form, target, n_boot


def explain_exclusions(fits: laws_view.LawFits) -> None:
    if len(fits.excluded):
        by_status = fits.excluded["status"].value_counts().to_dict()
        parts = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
        with st.expander(f"{len(fits.excluded)} trials left out of the fits ({parts})"):
            st.caption("Only finished trials are fitted: failed and diverged runs would bias the law.")
            st.dataframe(fits.excluded, hide_index=True)
    # one box per distinct reason, naming every architecture it applies to (not twelve identical boxes)
    for groups, message in notices.by_reason(fits.errors):
        st.warning(f"**{notices.name_groups(groups)}**: no {fits.form} fit: {message}")
