"""Trial ids survive the typed trial config: the example sweeps plan the ids they had before it, and a
stored sweep's trials hash back to their ids from their stored config (old stores keep working)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.kinds import plan_trials
from orchestrator.spec import load_spec
from orchestrator.store import Store
from orchestrator.trial import TrialConfig
from tests.conftest import EXAMPLES

FIXTURE = json.loads((Path(__file__).parent / "planned_trial_ids.json").read_text())


@pytest.mark.parametrize("example", sorted(FIXTURE["ids"]))
def test_example_sweeps_plan_the_ids_they_always_had(example: str):
    trials = plan_trials(load_spec(EXAMPLES / f"{example}.yaml"), FIXTURE["vocab_size"])
    assert [t.id for t in trials] == FIXTURE["ids"][example]
    for trial in trials:
        stored = trial.row()["config"]
        assert TrialConfig.from_dict(stored) == trial.config and trial.config.to_dict() == stored


def test_a_stored_sweeps_trials_hash_back_to_their_ids(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path / 'ids.db'}")
    planned = {}
    for example in ("smoke", "quickstart", "cpu-study", "recall"):  # plain, branches, tuning, recall
        spec = load_spec(EXAMPLES / f"{example}.yaml")
        planned[example] = plan_trials(spec, FIXTURE["vocab_size"])
        store.upsert_sweep(spec.name, {}, workdir=None, code_version=None)
        store.add_trials(spec.name, [t.row() for t in planned[example]])
    # A tuned trial that started records its chosen beta2 in its stored config: a record, not hashed.
    tuned = next(t for t in planned["cpu-study"] if t.tuned)
    store.set_trial_lr(tuned.id, 2e-3, beta2=0.99)

    rows = [row for example in planned for row in store.trials(load_spec(EXAMPLES / f"{example}.yaml").name)]
    assert len(rows) == sum(len(trials) for trials in planned.values())
    for row in rows:
        config = TrialConfig.from_dict(row.config)
        assert config.id == row.id and config.to_dict() == row.config
        assert row.trial_config == config
    chosen = next(row for row in rows if row.id == tuned.id).trial_config
    assert chosen.training.beta2_chosen == 0.99 and chosen == tuned.config.with_training(beta2_chosen=0.99)


def test_the_stored_form_is_strict_both_ways():
    trial = plan_trials(load_spec(EXAMPLES / "smoke.yaml"), FIXTURE["vocab_size"])[0]
    stored = trial.config.to_dict()
    with pytest.raises(ValueError, match="unknown key"):
        TrialConfig.from_dict({**stored, "extra": 1})  # dropped silently, it would change the id
    with pytest.raises(ValueError, match="unknown key.*'warmup'"):
        TrialConfig.from_dict({**stored, "training": {**stored["training"], "warmup": 3}})
    with pytest.raises(ValueError, match="steps"):
        TrialConfig.from_dict({k: v for k, v in stored.items() if k != "steps"})
    with pytest.raises(TypeError, match="frozen"):
        trial.config.model.shape["d_model"] = 1  # type: ignore[index]
    # Any change that reaches the stored form changes the id; replace() gives a new config.
    assert replace(trial.config, seed=7).id != trial.id
