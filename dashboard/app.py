"""The ceiling dashboard: ``ceiling dashboard`` (or ``streamlit run dashboard/app.py -- --db URL``).

Reads the SQL store and ``laws``; never trains, and imports neither torch, ray nor deepspeed, so it
starts in about a second. Each page is a script under ``pages/`` with a ``render()`` function.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import ui

PAGES = Path(__file__).parent / "pages"
# (file, title, url path): the order of a study, from runs to verdict. The first page is the default
# and lives at "/". No icons: streamlit fetches a page's icon as the favicon from fonts.gstatic.com.
PAGE_SPECS = (
    ("sweeps.py", "Sweeps", "sweeps"),
    ("curves.py", "Curves", "curves"),
    ("scaling_laws.py", "Scaling laws", "scaling-laws"),
    ("ceiling_test.py", "Ceiling test", "ceiling-test"),
    ("recall.py", "Recall", "recall"),
    ("efficiency.py", "Efficiency", "efficiency"),
)


def main() -> None:
    st.set_page_config(page_title="ceiling", layout="wide")
    ui.sidebar()
    pages = [
        st.Page(PAGES / file, title=title, url_path=path, default=i == 0)
        for i, (file, title, path) in enumerate(PAGE_SPECS)
    ]
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
