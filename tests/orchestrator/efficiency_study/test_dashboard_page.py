"""The dashboard's Efficiency page through streamlit's AppTest on a real store: charts with their CSVs,
the claims table, the context and baseline pickers; an empty store says how to get measurements."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from orchestrator.store import Store
from tests.dashboard.conftest import APP
from tests.orchestrator.efficiency_study.stored_study import store_study


def open_page(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CEILING_DB", url)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("pages/efficiency.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_the_efficiency_page_draws_every_chart_and_the_claims(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    store_study(url)
    at = open_page(url, monkeypatch)
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    assert len(charts) == 7 and all(chart["data"] for chart in charts)
    assert len(at.get("download_button")) >= len(charts)  # every chart has its CSV
    headers = [s.value for s in at.subheader]
    assert headers[0] == "Quality against decode cost at L = 32,768"
    assert "Crossover: where each architecture gets cheaper than transformer" in headers
    pareto = charts[0]
    assert {trace["name"] for trace in pareto["data"]} >= {
        "transformer",
        "retnet",
        "mamba",
        "mega",
        "Pareto frontier",
    }
    claims = at.dataframe[1].value  # after the crossover table
    assert len(claims) == 8 and "RetNet decodes 8.4x faster" in claims["claim"].iloc[0]
    # another context length redraws the frontier there
    at.selectbox(key="eff-context").set_value(2048).run()
    assert [s.value for s in at.subheader][0] == "Quality against decode cost at L = 2,048"


def test_a_store_without_measurements_says_how_to_get_them(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    store = Store.open(url)
    store.upsert_sweep("plain", {"name": "plain"}, workdir=None, code_version="test")
    store.close()
    at = open_page(url, monkeypatch)
    assert any("No efficiency measurements" in info.value for info in at.info)
    assert not at.get("plotly_chart")
