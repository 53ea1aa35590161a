"""The efficiency table on SQLite and PostgreSQL: migration 0005 up and down, fenced writes, reads joined
with the trials, headline metrics, and laws that read them (a metric, or inference cost as compute)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from orchestrator.store import StaleAttempt, Store
from orchestrator.store.efficiency import (
    efficiency_metric,
    headline_metrics,
    measurements,
    measurements_csv,
    record_efficiency,
)
from orchestrator.store.engine import MIGRATIONS_DIR
from orchestrator.store.law_inputs import law_runs
from tests.factories import make_trial


def _alembic(store: Store, action: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def test_migration_0005_upgrades_and_downgrades(store_url: str):
    store = Store.open(store_url)  # head: 0005 included
    try:
        assert "efficiency_measurements" in inspect(store.engine).get_table_names()
        _alembic(store, "downgrade", "0004")
        assert "efficiency_measurements" not in inspect(store.engine).get_table_names()
        assert "trials" in inspect(store.engine).get_table_names()  # nothing else is dropped
        _alembic(store, "upgrade", "head")
        columns = {c["name"] for c in inspect(store.engine).get_columns("efficiency_measurements")}
        assert columns == {"id", "trial_id", "measure", "length", "batch", "position", "metric", "value"}
    finally:
        store.close()


ROWS = [
    {"measure": "decode", "length": 512, "batch": 1, "metric": "tokens_per_s", "value": 1000.0},
    {"measure": "decode", "length": 512, "batch": 1, "metric": "state_bytes", "value": 4096},
    {"measure": "decode", "length": 2048, "batch": 1, "metric": "tokens_per_s", "value": 900.0},
    {"measure": "decode", "length": 2048, "batch": 1, "metric": "state_bytes", "value": 4096},
    {"measure": "decode", "length": 512, "batch": 4, "metric": "tokens_per_s", "value": 3000.0},
    {"measure": "prefill", "length": 512, "batch": 1, "metric": "tokens_per_s", "value": 50_000.0},
    {"measure": "extrapolation", "length": 128, "metric": "loss", "value": 2.0},
    {"measure": "extrapolation", "length": 512, "metric": "loss", "value": 2.5},
    {"measure": "position", "length": 512, "position": 256, "metric": "loss", "value": 2.7},
]


def test_headline_metrics_name_what_laws_and_compare_read():
    metrics = headline_metrics(ROWS)
    assert metrics["decode_ms_per_token_L512"] == pytest.approx(1.0)
    assert metrics["decode_tokens_per_s_L512_b4"] == 3000.0
    assert metrics["state_bytes_L2048"] == 4096
    assert metrics["decode_flatness"] == pytest.approx(0.9)
    assert metrics["prefill_tokens_per_s_T512"] == 50_000.0
    assert metrics["extrapolation_loss_x4"] == 2.5 and metrics["extrapolation_ratio_x4"] == pytest.approx(
        1.25
    )
    assert all(efficiency_metric(name) is not None for name in metrics)
    assert efficiency_metric("decode_ms_per_token_L512") == (False, None)
    assert efficiency_metric("decode_flatness") == (True, None) and efficiency_metric("val_loss") is None


def _trial(store: Store, trial_id: str, label: str, size: float, loss: float, cost: float) -> None:
    final = {"decode_ms_per_token_L512": cost, "copy_score": 0.5}
    store.add_trials(
        "eff",
        [make_trial(trial_id, label=label, arch=label, size_target=size, params_non_embedding=int(size))],
    )
    attempt = store.claim(trial_id)
    store.finish(trial_id, attempt, final_val_loss=loss, final_metrics=final)


def test_measurements_are_fenced_replaced_and_read_with_their_trial(store_url: str):
    store = Store.open(store_url)
    try:
        store.upsert_sweep("eff", {"name": "eff"}, workdir=None, code_version="test")
        store.add_trials("eff", [make_trial("t1", label="retnet", arch="retnet")])
        attempt = store.claim("t1")
        record_efficiency(store, "t1", attempt, ROWS)
        record_efficiency(store, "t1", attempt, ROWS)  # a rerun replaces, never doubles
        with pytest.raises(StaleAttempt):
            record_efficiency(store, "t1", attempt - 1, ROWS[:1])
        with pytest.raises(ValueError, match="unknown measure"):
            record_efficiency(store, "t1", attempt, [{**ROWS[0], "measure": "decoding"}])
        rows = measurements(store, "eff")
        assert len(rows) == len(ROWS)
        assert {r["label"] for r in rows} == {"retnet"} and {r["status"] for r in rows} == {"running"}
        position = next(r for r in rows if r["measure"] == "position")
        assert (position["length"], position["position"], position["value"]) == (512, 256, 2.7)
        text = measurements_csv(rows)
        assert (
            text.splitlines()[0].startswith("trial_id,label,arch") and len(text.splitlines()) == len(ROWS) + 1
        )
        assert measurements(store, "other-sweep") == []
    finally:
        store.close()


def test_laws_read_efficiency_metrics_and_inference_cost_as_compute(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        store.upsert_sweep("eff", {"name": "eff"}, workdir=None, code_version="test")
        for i, size in enumerate((1e4, 2e4, 4e4, 8e4)):
            _trial(store, f"m{i}", "mamba", size, 3.0 - 0.2 * i, 0.5 * (i + 1))
        runs = law_runs(store, "eff", metric="decode_ms_per_token_L512")
        assert runs.columns["decode_ms_per_token_L512"] == [0.5, 1.0, 1.5, 2.0]
        by_cost = law_runs(store, "eff", metric="val_loss", cost="decode_ms_per_token_L512")
        assert by_cost.columns["compute"] == [0.5, 1.0, 1.5, 2.0]
        assert by_cost.columns["val_loss"] == pytest.approx([3.0, 2.8, 2.6, 2.4])
        missing = law_runs(store, "eff", metric="val_loss", cost="decode_ms_per_token_L8192")
        assert len(missing) == 0 and {e["reason"] for e in missing.excluded} == {
            "no decode_ms_per_token_L8192 recorded"
        }
        with pytest.raises(ValueError, match="unknown metric 'decode_ms'.*decode_ms_per_token_L8192"):
            law_runs(store, "eff", metric="decode_ms")
    finally:
        store.close()
