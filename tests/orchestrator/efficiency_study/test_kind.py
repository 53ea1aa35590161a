"""The efficiency kind: its spec block, its planning (ladder trials carrying an efficiency part), the
stored form of its configs, and the kind a stored trial is looked up as."""

from __future__ import annotations

import copy
import time

import pytest

from orchestrator.kinds import kind_for_spec, kind_named, kind_of, plan_trials
from orchestrator.kinds.efficiency import EfficiencyPart
from orchestrator.kinds.efficiency_task import decode_clock
from orchestrator.spec import SpecError, load_spec, parse_spec
from orchestrator.store import Store
from orchestrator.trial import TrialConfig
from tests.conftest import EXAMPLES

LADDER = {
    "name": "eff-kind",
    "architectures": ["transformer", "retnet"],
    "sizes": ["10k", "20k"],
    "budgets": {"tokens": ["16k", "32k"]},
    "data": {"corpus": "stdlib", "tokenizer": "byte", "seq_len": 32, "val_tokens": 2048},
    "training": {"batch_tokens": 1024},
}
EFFICIENCY = {"contexts": [256, 64], "batches": [1, 2], "decode_tokens": 4, "extrapolation": [1, 2]}


def spec_with(**changes):
    return parse_spec({**copy.deepcopy(LADDER), **changes})


def test_an_efficiency_block_selects_the_efficiency_kind_and_a_plain_ladder_stays_a_ladder():
    assert kind_for_spec(spec_with(efficiency=EFFICIENCY)).name == "efficiency"
    assert kind_for_spec(spec_with()).name == "ladder"
    assert kind_for_spec(load_spec(EXAMPLES / "efficiency.yaml")).name == "efficiency"


def test_efficiency_trials_are_the_ladder_trials_with_the_efficiency_part():
    ladder = plan_trials(spec_with(), 256)
    measured = plan_trials(spec_with(efficiency=EFFICIENCY), 256)
    assert len(measured) == len(ladder) == 8
    for plain, trial in zip(ladder, measured, strict=True):
        assert trial.config.kind == "efficiency" and plain.config.kind == "ladder"
        # everything but the task part is the ladder's own trial
        assert trial.config.model == plain.config.model and trial.config.training == plain.config.training
        assert (trial.tokens, trial.steps, trial.lr, trial.accounting) == (
            plain.tokens,
            plain.steps,
            plain.lr,
            plain.accounting,
        )
        assert trial.id != plain.id  # what is measured is part of the trial
        part = trial.config.task
        assert part.contexts == (64, 256) and part.batches == (1, 2) and part.prefill == ()
        assert part.isoflop_budget is None and part.extrapolation == (1, 2)


def test_the_stored_config_round_trips_and_names_its_kind():
    trial = plan_trials(spec_with(efficiency=EFFICIENCY), 256)[0]
    stored = trial.config.to_dict()
    assert "efficiency" in stored and "isoflop_budget" not in stored  # the marker is the efficiency block
    assert stored["efficiency"]["contexts"] == [64, 256]
    # a setting added later is left out while unset, so trials planned before it keep their ids
    assert "train_lengths" not in stored["efficiency"]
    timed = plan_trials(spec_with(efficiency={**EFFICIENCY, "train_lengths": [64]}), 256)[0]
    assert timed.config.to_dict()["efficiency"]["train_lengths"] == [64] and timed.id != trial.id
    assert "clock" not in stored["efficiency"]  # wall time, the default, is left out too
    on_cpu = plan_trials(spec_with(efficiency={**EFFICIENCY, "clock": "cpu"}), 256)[0]
    assert on_cpu.config.to_dict()["efficiency"]["clock"] == "cpu" and on_cpu.id != trial.id
    assert decode_clock(on_cpu.config.task) is time.thread_time
    assert decode_clock(trial.config.task) is time.perf_counter
    again = TrialConfig.from_dict(stored)
    assert again == trial.config and again.id == trial.id
    assert isinstance(again.task, EfficiencyPart) and kind_of(again) is kind_named("efficiency")
    with pytest.raises(ValueError, match="efficiency: unknown key"):
        TrialConfig.from_dict({**stored, "efficiency": {**stored["efficiency"], "contxts": [1]}})


def test_cooldown_branches_point_at_their_trunks_new_ids():
    spec = spec_with(efficiency=EFFICIENCY, training={"batch_tokens": 1024, "branches": True})
    trials = plan_trials(spec, 256)
    ids = {t.id for t in trials}
    branches = [t for t in trials if t.role == "branch"]
    assert branches and all(t.parent_id in ids for t in branches)
    trunks = {t.id: t for t in trials if t.role == "trunk"}
    assert all(trunks[t.parent_id].config.model == t.config.model for t in branches)


def test_stored_trials_are_looked_up_as_efficiency_trials(tmp_path):
    spec = spec_with(efficiency=EFFICIENCY)
    trials = plan_trials(spec, 256)
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        store.upsert_sweep(spec.name, {"name": spec.name}, workdir=None, code_version="test")
        assert store.add_trials(spec.name, [t.row() for t in trials]) == len(trials)
        assert (
            store.add_trials(spec.name, [t.row() for t in trials]) == 0
        )  # the same plan twice runs nothing twice
        stored = store.trials(spec.name)
        assert [t.id for t in stored] == [t.id for t in trials]
        assert {kind_of(t.trial_config).name for t in stored} == {"efficiency"}
    finally:
        store.close()


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"extrapolation": [2, 4]}, "efficiency.extrapolation", "include 1 (the training length"),
        ({"contexts": [64, 64]}, "efficiency.contexts", "duplicates"),
        ({"batches": [0]}, "efficiency.batches", "values must be >= 1"),
        ({"decode_tokens": 0}, "efficiency.decode_tokens", "greater than or equal to 1"),
        ({"contxts": [64]}, "efficiency.contxts", "unknown field"),
        ({"clock": "gpu"}, "efficiency.clock", "'wall' or 'cpu'"),
    ],
)
def test_bad_efficiency_blocks_name_the_field(changes, field, words):
    with pytest.raises(SpecError) as error:
        spec_with(efficiency={**EFFICIENCY, **changes})
    assert any(p.startswith(f"{field}:") and words in p for p in error.value.problems), error.value.problems


def test_an_efficiency_block_on_a_recall_study_is_refused():
    with pytest.raises(SpecError, match="efficiency: only for language-model studies"):
        parse_spec({"name": "r", "architectures": ["transformer"], "task": "mqar", "efficiency": EFFICIENCY})
