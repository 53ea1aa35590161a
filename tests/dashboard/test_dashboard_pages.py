"""Every page through streamlit's AppTest on real stores: renders, filters, empty and half-finished stores."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from orchestrator.cli import app as cli
from orchestrator.store import Store
from tests.dashboard.conftest import APP
from tests.factories import make_trial

pytestmark = pytest.mark.slow

PAGES = {
    "sweeps": "pages/sweeps.py",
    "curves": "pages/curves.py",
    "scaling-laws": "pages/scaling_laws.py",
    "ceiling-test": "pages/ceiling_test.py",
    "recall": "pages/recall.py",
}
FAST_BOOT = {"laws-nboot": 100, "ceiling-nboot": 100}  # 100 resamples: seconds, not tens of seconds


def open_page(url: str, page: str, monkeypatch: pytest.MonkeyPatch, **state: object) -> AppTest:
    monkeypatch.setenv("CEILING_DB", url)
    at = AppTest.from_file(str(APP), default_timeout=240)
    for key, value in {**FAST_BOOT, **state}.items():
        at.session_state[key] = value
    at.run()
    if page != "sweeps":
        at.switch_page(PAGES[page]).run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def values(data: object) -> list:
    """A trace's x or y: plotly sends numpy arrays as base64 typed arrays ({"dtype", "bdata"})."""
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"])).tolist()
    return list(data)


def text(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("info", "warning", "markdown", "caption", "subheader", "title")
        for e in getattr(at, kind)
    ]
    parts += [e.label for e in at.expander]
    return "\n".join(str(p) for p in parts)


MIN_CHARTS = {"sweeps": 1, "curves": 2, "scaling-laws": 2, "ceiling-test": 1, "recall": 2}


@pytest.mark.parametrize("sweep", ["dash-ladder", "(all sweeps)"])
@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_charts_from_a_real_sweep(dash_store, monkeypatch, page, sweep):
    at = open_page(dash_store, page, monkeypatch, sweep=sweep)
    figures = charts(at)
    assert len(figures) >= MIN_CHARTS[page], text(at)
    for figure in figures:
        assert figure["data"], figure["layout"].get("title")
    assert len(at.get("download_button")) >= len(figures)  # every chart has its CSV


def test_sweeps_page_filters_by_architecture(dash_store, monkeypatch):
    at = open_page(dash_store, "sweeps", monkeypatch, sweep="dash-ladder")
    assert "16 of 16 trials" in text(at)
    at.multiselect(key="sweeps-arch").set_value(["hawk"]).run()
    assert_clean(at)
    assert "8 of 16 trials" in text(at)
    table = at.dataframe[-1].value
    assert len(table) == 8 and set(table["label"]) == {"hawk"}


def test_curves_filters_and_metric_change_the_chart(dash_store, monkeypatch):
    at = open_page(dash_store, "curves", monkeypatch, sweep="dash-ladder")
    names = {trace["name"] for trace in charts(at)[0]["data"]}
    assert any(n.startswith("hawk") for n in names) and any(n.startswith("transformer") for n in names)
    at.multiselect(key="curves-arch").set_value(["transformer"]).run()
    assert_clean(at)
    names = {trace["name"] for trace in charts(at)[0]["data"]}
    assert names and all(n.startswith("transformer") for n in names)
    at.selectbox(key="curves-metric").set_value("val_bpb").run()
    assert charts(at)[0]["layout"]["yaxis"]["title"]["text"] == "val_bpb"
    at.multiselect(key="curves-arch").set_value([]).run()
    assert "No trial matches these filters" in text(at)


def test_laws_page_metric_form_and_target(dash_store, monkeypatch):
    at = open_page(dash_store, "scaling-laws", monkeypatch, sweep="(all sweeps)")
    assert at.selectbox(key="laws-form").value == "auto"  # as `ceiling laws`
    health = next(d.value for d in at.dataframe if "health" in d.value.columns)
    assert set(health["architecture"]) == {"hawk", "transformer"}
    assert set(health["health"]) <= {"healthy", "weak", "degenerate"}
    assert health["form"].str.contains("auto: ").all()  # each fit says how its form was chosen
    assert "largest size held out: error" in health.columns  # the backtest column
    at.selectbox(key="laws-form").set_value("chinchilla").run()  # 8+ runs per architecture
    assert_clean(at)
    params = at.dataframe[-1].value
    assert set(params["architecture"]) == {"hawk", "transformer"}
    assert {"E", "A", "alpha", "B", "beta"} <= set(params["parameter"])
    assert params[["ci95_lo", "ci95_hi"]].notna().all().all()
    law = charts(at)[0]
    assert law["layout"]["xaxis"]["type"] == "log" and law["layout"]["yaxis"]["type"] == "log"
    at.text_input(key="laws-target").set_value("1e13").run()
    assert_clean(at)
    targets = [t for t in charts(at)[0]["data"] if t["name"].endswith("at target")]
    assert len(targets) == 2 and all(values(t["x"]) == [1e13] for t in targets)
    at.selectbox(key="laws-metric").set_value("val_bpb")
    at.selectbox(key="laws-form").set_value("power_c").run()
    assert_clean(at)
    assert "bits per byte" in charts(at)[0]["layout"]["yaxis"]["title"]["text"]
    assert set(at.dataframe[-1].value["parameter"]) >= {"C0", "gamma"}
    at.text_input(key="laws-target").set_value("lots").run()
    assert "not a count" in text(at)  # a typo is explained, not a crash


def test_ceiling_page_says_what_ceiling_compare_says(dash_store, monkeypatch):
    workdir = Path(dash_store.removeprefix("sqlite:///")).parent
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "--workdir",
            str(workdir),
            "--at",
            "1e12",
            "--form",
            "power_c",
            "--n-boot",
            "100",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    expected = json.loads(result.stdout)["comparisons"]["hawk"]["verdicts"]
    at = open_page(
        dash_store,
        "ceiling-test",
        monkeypatch,
        sweep="(all sweeps)",
        **{"ceiling-form": "power_c", "ceiling-target": "1e12"},
    )
    shown = text(at)
    assert expected["largest_measured"]["text"] in shown
    assert expected["target"]["text"] in shown
    assert "Crossover:" in shown
    gap = charts(at)[0]
    assert any(t["name"] == "hawk" for t in gap["data"])


def test_one_architecture_gets_a_message_not_an_error(dash_store, monkeypatch):
    at = open_page(dash_store, "ceiling-test", monkeypatch, sweep="smoke")
    assert "needs a second architecture" in text(at)
    at = open_page(dash_store, "scaling-laws", monkeypatch, sweep="smoke")
    assert at.selectbox(key="laws-form").value == "auto"
    health = next(d.value for d in at.dataframe if "health" in d.value.columns)
    # 4 runs: too few for chinchilla, which the form choice says
    assert "chinchilla: form 'chinchilla' has 5 parameters: needs >= 8 runs; got 4" in health["form"].iloc[0]
    assert "No compute budget has runs of 3 or more sizes" in text(at)


@pytest.mark.parametrize("page", list(PAGES))
def test_empty_and_missing_stores_explain_themselves(empty_store, tmp_path, monkeypatch, page):
    at = open_page(empty_store, page, monkeypatch)
    assert "has no sweeps yet" in text(at)
    missing = tmp_path / "nowhere" / "ceiling.db"
    at = open_page(f"sqlite:///{missing}", page, monkeypatch)
    assert "No store at" in text(at)
    assert not missing.exists()  # the dashboard never creates a store


@pytest.fixture
def just_submitted(tmp_path) -> str:
    """A sweep whose trials are all pending: nothing trained, nothing evaluated."""
    url = f"sqlite:///{tmp_path / 'fresh' / 'ceiling.db'}"
    store = Store.open(url)
    store.upsert_sweep("fresh", {"name": "fresh"}, workdir=None, code_version=None)
    store.add_trials("fresh", [make_trial("t1"), make_trial("t2", label="hawk", arch="hawk")])
    store.close()
    return url


@pytest.mark.parametrize("page", list(PAGES))
def test_a_just_submitted_sweep_shows_messages(just_submitted, monkeypatch, page):
    at = open_page(just_submitted, page, monkeypatch)
    expected = {
        "sweeps": "0 of 2 trials finished",
        "curves": "recorded no evals yet",
        "scaling-laws": "has no finished trials yet",
        "ceiling-test": "has no finished trials yet",
        "recall": "No recall results",
    }[page]
    assert expected in text(at) or any(expected in p.proto.text for p in at.get("progress"))


def test_half_finished_sweep(partial_store, monkeypatch):
    at = open_page(partial_store, "sweeps", monkeypatch, sweep="dash-ladder")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["running"] == "1" and metrics["failed"] == "1" and metrics["diverged"] == "1"
    assert metrics["pending"] == "1"
    shown = text(at)
    assert "worker ran out of memory" in shown and "diverged at step 7" in shown
    assert any("RuntimeError: worker ran out of memory" in c.value for c in at.code)
    for page in ("curves", "scaling-laws", "recall"):
        at = open_page(partial_store, page, monkeypatch, sweep="dash-ladder")
        assert charts(at), (page, text(at))
    at = open_page(partial_store, "scaling-laws", monkeypatch, sweep="dash-ladder")
    assert "2 trials left out of the fits (1 diverged, 1 failed)" in text(at)
    assert at.selectbox(key="laws-form").value == "auto"
    health = next(d.value for d in at.dataframe if "health" in d.value.columns)
    hawk = health.loc[health["architecture"] == "hawk", "form"].iloc[0]
    assert "got 4" in hawk  # hawk has 4 finished runs left: too few for chinchilla, said in the form choice
    at = open_page(partial_store, "ceiling-test", monkeypatch, sweep="dash-ladder")
    assert text(at)  # a comparison, or a message saying why there is none; never an exception


def test_recall_page_plots_accuracy_against_width_and_state(recall_store, monkeypatch):
    at = open_page(recall_store, "recall", monkeypatch)
    width, state = charts(at)
    transformer = next(t for t in width["data"] if t["name"] == "transformer")
    assert values(transformer["x"]) == [64, 128]
    # best lr (3e-3) kept, seeds averaged: 0.5 + 0.1 + 0.15 (+0.005 mean seed offset), then +0.2 at 128
    assert values(transformer["y"]) == pytest.approx([0.755, 0.955])
    assert state["layout"]["xaxis"]["type"] == "log"
    hardest = values(next(t for t in state["data"] if t["name"] == "hawk")["x"])
    at.selectbox(key="recall-metric").set_value("recall_accuracy/T64_kv4").run()
    assert_clean(at)
    easier = values(next(t for t in charts(at)[1]["data"] if t["name"] == "hawk")["x"])
    assert easier == [x / 2 for x in hardest]  # state size at the shorter setting's length
    at.multiselect(key="recall-arch").set_value(["hawk"]).run()
    assert {t["name"] for t in charts(at)[0]["data"]} == {"hawk"}


def test_language_model_sweeps_show_their_copy_score_on_the_recall_page(dash_store, monkeypatch):
    at = open_page(dash_store, "recall", monkeypatch, sweep="dash-ladder")
    assert at.selectbox(key="recall-metric").value == "copy_score"
    assert len(charts(at)) == 2
