"""Pieces every page shares: the sidebar (store and sweep), the page context, charts with downloads."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard import cached
from dashboard.context import Context, db_url_from, missing_tables, store_problem
from orchestrator.store import redact
from orchestrator.units import format_count, parse_count

CONTEXT_KEY = "ceiling_context"
ALL_SWEEPS = "(all sweeps)"
QUICKSTART = "`ceiling run examples/quickstart.yaml`"


def build_context(sweep_choice: str | None = None) -> Context:
    """Resolve the store, check it can be read, and take its change token. Never raises: a problem
    becomes a message the pages show instead of their content."""
    url = db_url_from(sys.argv[1:])
    problem = store_problem(url)
    if problem:
        return Context(url, problem, None, (), None)
    try:
        store = cached.store(url)
        missing = missing_tables(store)
        if missing:
            return Context(
                url,
                f"The database at `{redact(url)}` has no ceiling tables yet ({', '.join(missing)} missing). "
                f"A sweep creates them: {QUICKSTART}.",
                None,
                (),
                None,
            )
        token = cached.change_token(url)
        progress = cached.sweep_progress(url, token.trials)
    except SQLAlchemyError as exc:
        return Context(
            url, f"Cannot read the store at `{redact(url)}`: {exc.__class__.__name__}: {exc}", None, (), None
        )
    sweeps = tuple(progress["sweep"])
    sweep = None if sweep_choice in (None, ALL_SWEEPS) or sweep_choice not in sweeps else sweep_choice
    return Context(url, None, token, sweeps, sweep)


def sidebar() -> Context:
    """The store and the sweep picker, rendered by app.py on every page so the choice persists."""
    st.sidebar.title("ceiling")
    first = build_context()
    st.sidebar.caption(f"store: `{first.shown_url}`")
    if first.problem or not first.sweeps:
        st.session_state[CONTEXT_KEY] = first
        return first
    # newest sweep first: the one a researcher opens the dashboard for
    choice = st.sidebar.selectbox(
        "Sweep",
        [*first.sweeps, ALL_SWEEPS],
        key="sweep",
        help="what every page shows; trials may be in several sweeps",
    )
    st.sidebar.button("Refresh", help="re-read the store now (pages also refresh when it changes)")
    ctx = Context(first.url, None, first.token, first.sweeps, None if choice == ALL_SWEEPS else choice)
    st.session_state[CONTEXT_KEY] = ctx
    return ctx


def page_context() -> Context | None:
    """The context for this run, or None after telling the user why there is nothing to show."""
    ctx = st.session_state.get(CONTEXT_KEY) or build_context()
    if ctx.problem:
        st.info(ctx.problem)
        return None
    if not ctx.sweeps:
        st.info(f"The store `{ctx.shown_url}` has no sweeps yet. Start one with {QUICKSTART}.")
        return None
    return ctx


def fresh(ctx: Context) -> Context:
    """The same context with a new change token: for fragments that rerun on their own."""
    try:
        return Context(ctx.url, None, cached.change_token(ctx.url), ctx.sweeps, ctx.sweep)
    except SQLAlchemyError:
        return ctx


def show_chart(fig: go.Figure, data: pd.DataFrame, name: str) -> None:
    """A chart and its data: PNG from plotly's camera button (client-side), CSV from a download button."""
    st.plotly_chart(
        fig,
        key=f"chart-{name}",
        config={
            "displaylogo": False,
            "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2},
        },
    )
    download_csv(data, name)


def download_csv(data: pd.DataFrame, name: str, label: str = "Download data (CSV)") -> None:
    st.download_button(
        label,
        data=_csv(data),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv-{name}",
        on_click="ignore",  # a download must not rerun (and refit) the page
    )


def _csv(data: pd.DataFrame) -> Callable[[], str]:
    # deferred: the CSV is built only when someone clicks (streamlit runs the callable then)
    return lambda: data.to_csv(index=False)


def compute_input(label: str, default: float, key: str) -> float | None:
    """A FLOP count typed as ``1e21`` / ``3e19`` / ``500P``; a bad value shows why and returns None."""
    text = st.text_input(label, value=f"{default:.3g}", key=key, help="FLOPs, e.g. 1e21 or 3e19")
    try:
        return parse_count(text, what=label)
    except ValueError as exc:
        st.warning(str(exc))
        return None


def size_name(value: float) -> str:
    return format_count(value)
