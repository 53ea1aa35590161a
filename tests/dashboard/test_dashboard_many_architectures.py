"""The Scaling laws page with twelve architectures (streamlit's AppTest): one law panel per architecture
against the baseline, bands off on the combined chart until the toggle, and a reason shared by many
architectures said once, naming them."""

from __future__ import annotations

import pytest

from tests.dashboard.test_dashboard_pages import assert_clean, charts, open_page
from tests.many_architectures import ARCHITECTURES, SHORT, write_many_architecture_sweep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def twelve_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('twelve-dash') / 'ceiling.db'}"
    write_many_architecture_sweep(url)
    return url


def panel_chart(at) -> dict:
    """The small-multiples chart: the one whose layout has a twelfth x axis."""
    return next(c for c in charts(at) if "xaxis12" in c["layout"])


def bands(chart: dict) -> list[dict]:
    return [t for t in chart["data"] if t.get("fill") == "toself"]


def test_laws_page_draws_one_panel_per_architecture(twelve_store, monkeypatch):
    at = open_page(twelve_store, "scaling-laws", monkeypatch, sweep="twelve", **{"laws-form": "chinchilla"})
    panels = panel_chart(at)
    assert "xaxis13" not in panels["layout"]
    titles = [a["text"] for a in panels["layout"]["annotations"]]
    assert titles[0].startswith("transformer (baseline) — chinchilla")
    for arch in ARCHITECTURES:
        assert sum(t.startswith(f"{arch} ") for t in titles) == 1, (arch, titles)
    # shared axes: every panel's x and y axes follow one panel's (make_subplots' "all")
    for axis in ("xaxis", "yaxis"):
        followed = {panels["layout"][f"{axis}{i or ''}"].get("matches") for i in range(13) if i != 1}
        assert len(followed - {None}) == 1, (axis, followed)
    # one warning for the three architectures without a chinchilla fit, not three
    no_fit = [w.value for w in at.warning if "no chinchilla fit" in w.value]
    assert no_fit == [
        f"**3 architectures ({', '.join(SHORT)})**: no chinchilla fit: form 'chinchilla' has 5 parameters: "
        "needs >= 8 runs; got 4"
    ]
    # the combined chart: no bands until the toggle asks for them
    assert bands(charts(at)[0]) == []
    at.toggle(key="laws-bands").set_value(True).run()
    assert_clean(at)
    assert len(bands(charts(at)[0])) == len(ARCHITECTURES) - len(SHORT)


def test_a_frontier_reason_shared_by_every_architecture_is_said_once(twelve_store, monkeypatch):
    at = open_page(twelve_store, "scaling-laws", monkeypatch, sweep="twelve", **{"laws-form": "power_c"})
    frontier = [i.value for i in at.info if i.value.startswith("No frontier")]
    assert len(frontier) == 1, frontier
    assert frontier[0].count("isoflop needs at least 2 compute budgets") == 1
    assert f"no isoflop fit for 12 architectures ({', '.join(ARCHITECTURES)})" in frontier[0]
    assert len(panel_chart(at)["layout"]["annotations"]) == len(ARCHITECTURES)
