"""The dashboard's pure parts: store URL, change tokens, SQL downsampling, isoFLOP minima, recall points,
figure builders. Fast: small stores of rows, no training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import charts, context, laws_view, queries
from dashboard.recall_view import recall_metrics, recall_points
from orchestrator.store import Store
from tests.factories import make_trial


@pytest.fixture
def store(store_url: str) -> Store:
    """SQLite and PostgreSQL (tests/conftest.py's store_url): the dashboard's SQL must run on both."""
    store = Store.open(store_url)
    store.upsert_sweep("s", {"name": "s"}, workdir=None, code_version=None)
    store.add_trials("s", [make_trial("a"), make_trial("b", label="hawk", arch="hawk")])
    yield store
    store.close()


def test_store_url_from_args_env_and_default(tmp_path, monkeypatch):
    monkeypatch.delenv("CEILING_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    assert context.db_url_from([]) == f"sqlite:///{tmp_path / 'ceiling-runs' / 'ceiling.db'}"
    assert context.db_url_from(["--db", "x.db"]) == f"sqlite:///{tmp_path / 'x.db'}"
    assert context.db_url_from(["--workdir", "w"]) == f"sqlite:///{tmp_path / 'w' / 'ceiling.db'}"
    monkeypatch.setenv("CEILING_DB", "postgresql://me@db/ceiling")
    assert context.db_url_from(["-q", "--d", "ignored"]).startswith(
        "postgresql+psycopg://me@db/"
    )  # no abbrevs
    assert context.store_problem(f"sqlite:///{tmp_path / 'none.db'}").startswith("No store at")
    assert not (tmp_path / "none.db").exists()


def test_change_token_separates_progress_from_results(store):
    first = context.change_token(store)
    attempt = store.claim("a")
    store.heartbeat("a", attempt, steps_done=3)
    beat = context.change_token(store)
    assert beat.trials != first.trials and beat.results == first.results  # fits survive heartbeats
    store.record_evals(
        "a", attempt, [{"step": 1, "tokens_seen": 10, "flops": 1.0, "metric": "val_loss", "value": 3.0}]
    )
    evals = context.change_token(store)
    assert evals.evals != beat.evals and evals.results == first.results
    store.finish("a", attempt, final_val_loss=2.5)
    done = context.change_token(store)
    assert done.results != first.results


def test_curves_are_downsampled_in_sql_keeping_both_ends(store):
    attempt = store.claim("a")
    rows = [
        {"step": s, "tokens_seen": 64 * s, "flops": 1e6 * s, "metric": "val_loss", "value": 5.0 / (1 + s)}
        for s in range(1000)
    ]
    store.record_evals("a", attempt, rows)
    store.record_evals("a", attempt, [{**r, "metric": "val_bpb"} for r in rows[:10]])
    curve = queries.curves(store, ["a", "b"], "val_loss", max_points=100)
    assert 90 <= len(curve) <= 101
    assert curve["step"].iloc[0] == 0 and curve["step"].iloc[-1] == 999
    assert curve["step"].is_monotonic_increasing
    assert len(queries.curves(store, ["a"], "val_bpb", max_points=100)) == 10  # short curves stay whole
    assert queries.eval_metrics(store, ["a", "b"]) == ["val_bpb", "val_loss"]
    assert queries.curves(store, [], "val_loss").empty


def test_trial_table_progress_and_recall_rows(store):
    attempt = store.claim("b")
    store.fail("b", attempt, "Traceback...\nValueError: boom")
    progress = queries.sweep_progress(store)
    row = progress.iloc[0]
    assert (row["sweep"], row["total"], row["failed"], row["pending"]) == ("s", 2, 1, 1)
    assert row["progress"] == pytest.approx(0.5)
    table = queries.trial_table(store, "s")
    assert list(table["id"]) == ["a", "b"] and table.loc[1, "error"].endswith("boom")
    assert {"copy_score", "recall_accuracy", "flops_6nd", "attempts", "wall_time_s"} <= set(table.columns)
    attempt = store.claim("a")
    store.finish("a", attempt, final_metrics={"copy_score": 0.25})
    table = queries.trial_table(store, None)
    assert table.set_index("id").loc["a", "copy_score"] == pytest.approx(0.25)
    recall = queries.recall_rows(store, "s").set_index("id")
    assert recall.loc["a", "final_metrics"] == {"copy_score": 0.25} and recall.loc["a", "d_model"] == 24


def test_isoflop_minimum_is_the_parabola_vertex():
    params = np.geomspace(1e4, 1e6, 5)
    optimum = 1e5
    value = 3.0 + 0.2 * (np.log(params) - np.log(optimum)) ** 2
    runs = pd.DataFrame(
        {"group": "t", "params": params, "compute": 1e12, "value": value, "tokens": 1e12 / (6 * params)}
    )
    isoflop = laws_view.isoflop_profiles(runs, higher=False)
    profile, optima = isoflop.profile, isoflop.optima
    assert len(optima) == 1 and optima["interior"].iloc[0] and isoflop.skipped == 0
    assert optima["params_opt"].iloc[0] == pytest.approx(optimum, rel=1e-6)
    assert set(profile["kind"]) == {"run", "parabola"}
    # a monotone profile has no interior minimum: the best run is reported and flagged
    runs["value"] = 3.0 - 0.01 * np.log(params) ** 2  # concave: keeps falling with size
    optima = laws_view.isoflop_profiles(runs, higher=False).optima
    assert not optima["interior"].iloc[0] and optima["params_opt"].iloc[0] == pytest.approx(1e6)


def test_recall_points_keep_the_best_lr_and_average_seeds():
    rows = pd.DataFrame(
        [
            {
                "label": "t",
                "status": "done",
                "seed": seed,
                "lr": lr,
                "params_non_embedding": 1,
                "state_size": 5,
                "tokens": 1000,
                "final_metrics": {"recall_accuracy": acc + 0.02 * seed, "loss": 1.0},
                "recall": {"width": 64, "state_sizes": {"L": 100}, "hardest": "L"},
                "d_model": 64,
            }
            for lr, acc in ((1e-3, 0.4), (3e-3, 0.8))
            for seed in (0, 1)
        ]
        + [
            {
                "label": "t",
                "status": "failed",
                "seed": 0,
                "lr": 1e-2,
                "params_non_embedding": 1,
                "state_size": 5,
                "tokens": 1000,
                "final_metrics": None,
                "recall": None,
                "d_model": 64,
            }
        ]
    )
    assert recall_metrics(rows) == ["recall_accuracy"]
    points = recall_points(rows, "recall_accuracy")
    assert len(points) == 1
    point = points.iloc[0]
    assert point["lr"] == 3e-3 and point["mean"] == pytest.approx(0.81) and point["n_seeds"] == 2
    assert (point["min"], point["max"], point["state_size"]) == (pytest.approx(0.8), pytest.approx(0.82), 100)
    # a language-model ladder: of several token budgets at one width, the largest is the point
    ladder = rows.iloc[[0]].assign(recall=None, tokens=10, final_metrics=[{"recall_accuracy": 0.1}])
    longer = rows.iloc[[0]].assign(recall=None, tokens=20, final_metrics=[{"recall_accuracy": 0.3}])
    point = recall_points(pd.concat([ladder, longer]), "recall_accuracy").iloc[0]
    assert point["mean"] == pytest.approx(0.3) and point["min"] == pytest.approx(0.3)


def test_palette_is_stable_under_filters():
    full = charts.palette(["transformer", "hawk", "rwkv7"])
    assert charts.palette(["transformer", "hawk", "rwkv7"])["hawk"] == full["hawk"]
    assert len(set(full.values())) == 3
    light, dark = charts.shade("hawk", ["hawk"], 0.0), charts.shade("hawk", ["hawk"], 1.0)
    assert light != dark


def test_curves_figure_draws_one_trace_per_architecture_and_size():
    rows = []
    for trial, (label, size) in enumerate([("t", 1e4), ("t", 1e4), ("t", 3e4), ("h", 1e4)]):
        for step in range(3):
            rows.append(
                {
                    "trial_id": f"r{trial}",
                    "label": label,
                    "size": size,
                    "size_name": f"{size:g}",
                    "tokens_seen": 100 * step,
                    "flops": 1e6 * step,
                    "value": 3 - step / 10,
                }
            )
    frame = pd.DataFrame(rows)
    fig = charts.curves_figure(
        frame, x="tokens_seen", x_title="tokens", y_title="loss", colors={}, log_x=True, log_y=False
    )
    assert len(fig.data) == 3
    two_trials = next(t for t in fig.data if t.name == "t 10000")
    assert list(two_trials.y).count(None) == 2  # gaps between trials, so no line joins two runs
    assert 0 not in [x for x in two_trials.x if x is not None]  # step 0 dropped on a log axis
    assert fig.layout.xaxis.type == "log"


def test_law_figure_dashes_the_extrapolation():
    runs = pd.DataFrame(
        {
            "group": ["t"] * 3,
            "compute": [1e9, 1e10, 1e11],
            "value": [4.0, 3.0, 2.5],
            "run_id": ["a", "b", "c"],
        }
    )
    grid = np.geomspace(1e9, 1e13, 5)
    curve = pd.DataFrame(
        {
            "group": "t",
            "compute": grid,
            "value": 2 + 1 / np.log10(grid),
            "ci95_lo": 1.9,
            "ci95_hi": 2.6,
            "extrapolated": grid > 1e11,
        }
    )
    target = pd.DataFrame([{"group": "t", "compute": 1e13, "value": 2.1, "ci95_lo": 2.0, "ci95_hi": 2.3}])
    fig = charts.law_figure(
        runs, curve, target, x="compute", x_title="C", y_title="loss", colors={}, log_y=True
    )
    dashed = [t for t in fig.data if getattr(t.line, "dash", None) == "dash"]
    assert len(dashed) == 1 and min(dashed[0].x) == 1e11
    assert any(t.name == "t at target" for t in fig.data)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_isoflop_budgets_are_capped_and_spread_over_compute():
    params = np.tile(np.geomspace(1e4, 1e6, 4), 20)
    compute = np.repeat(np.geomspace(1e12, 1e16, 20), 4)
    runs = pd.DataFrame({"group": "t", "params": params, "compute": compute, "value": 3.0 + 0.0 * params})
    isoflop = laws_view.isoflop_profiles(runs, higher=False, max_budgets=5)
    assert len(isoflop.optima) == 5 and isoflop.skipped == 15
    assert isoflop.optima["budget"].min() == pytest.approx(1e12) and isoflop.optima[
        "budget"
    ].max() == pytest.approx(1e16)
