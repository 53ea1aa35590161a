"""Streamlit caches over the store: every entry is keyed on the store URL and a change token.

A page rerun (a filter change, the auto-refresh, another user opening the page) then costs a few
aggregate queries for the token and cache hits for everything else. Tokens are split by what changes
(see ``context.ChangeToken``) so a running sweep's heartbeats refresh its progress table but do not
throw away fits, which cost seconds to recompute.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import context, laws_view, queries
from orchestrator.store import Store

ENTRIES = 32  # per function: enough for a few users' filter combinations, bounded memory


@st.cache_resource(show_spinner=False)
def store(url: str) -> Store:
    """One engine (connection pool) per URL for the whole server. ``create=False``: the dashboard never
    migrates or creates a store; it only reads."""
    return Store.open(url, create=False)


@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def sweep_progress(url: str, token: str) -> pd.DataFrame:
    return queries.sweep_progress(store(url))


@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def trial_table(url: str, token: str, sweep: str | None) -> pd.DataFrame:
    return queries.trial_table(store(url), sweep)


@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def eval_metrics(url: str, token: str, trial_ids: tuple[str, ...]) -> list[str]:
    return queries.eval_metrics(store(url), trial_ids)


@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def curves(url: str, token: str, trial_ids: tuple[str, ...], metric: str, max_points: int) -> pd.DataFrame:
    return queries.curves(store(url), trial_ids, metric, max_points)


@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def recall_rows(url: str, token: str, sweep: str | None) -> pd.DataFrame:
    return queries.recall_rows(store(url), sweep)


@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def efficiency_rows(url: str, token: str, sweep: str | None) -> pd.DataFrame:
    from dashboard.efficiency_view import measurement_rows

    return measurement_rows(store(url), sweep)


@st.cache_data(
    show_spinner="Fitting scaling laws with a bootstrap (cached once done)...", max_entries=ENTRIES
)
def law_fits(
    url: str, token: str, sweep: str | None, metric: str, form: str, n_boot: int, backtest: bool = False
) -> laws_view.LawFits:
    return laws_view.fit_laws(store(url), sweep, metric, form, n_boot, backtest)


@st.cache_data(show_spinner="Fitting both laws of each comparison (cached once done)...", max_entries=ENTRIES)
def fit_pairs(url: str, token: str, sweep: str | None, metric: str, form: str, n_boot: int, baseline: str):
    return laws_view.fit_pairs(store(url), sweep, metric, form, n_boot, baseline)


def change_token(url: str) -> context.ChangeToken:
    """Not cached: it is what tells the caches that something changed."""
    return context.change_token(store(url))
