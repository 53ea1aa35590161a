"""Kinds of study: the built-in two, and a new kind added with one module's worth of code (the example
in orchestrator/README.md), registered only here, whose trials plan, store and look their kind up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

import models
from orchestrator.kinds import StudyKind, kind_for_spec, kind_named, kind_of, plan_trials, registered
from orchestrator.spec import load_spec, parse_spec
from orchestrator.store import Store
from orchestrator.trial import PlannedTrial, TaskPart, TrialConfig
from orchestrator.trial.build import planned_trial, training_part
from orchestrator.trial.records import record_from_dict, record_to_dict
from tests.conftest import EXAMPLES


# --- the new kind: its task part, its planner, its StudyKind ------------------------------------------
@dataclass(frozen=True, kw_only=True)
class EchoPart(TaskPart):
    """What an echo trial carries beyond the shared parts; ``echo`` marks its stored configs."""

    kind: ClassVar[str] = "echo"
    keys: ClassVar[tuple[str, ...]] = ("echo",)

    echo: int  # how many times the toy task repeats a token

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, config: Any) -> EchoPart:
        return record_from_dict(cls, {"echo": config["echo"]}, "echo")


def plan_echo(spec: Any, vocab_size: int) -> list[PlannedTrial]:
    """One tiny Transformer per seed, 8 steps each."""
    arch = spec.architectures[0]
    accounting = models.describe(arch.name, size=20_000, vocab_size=vocab_size, seq_len=spec.data.seq_len)
    steps = 8
    return [
        planned_trial(
            spec,
            arch=arch,
            accounting=accounting,
            size_target=20_000.0,
            task=EchoPart(echo=3),
            training=training_part(
                spec, lr=1e-3, sequences_per_step=4, warmup_steps=1, cooldown_steps=2, batch_in_tokens=True
            ),
            seed=seed,
            steps=steps,
            tokens=steps * 4 * spec.data.seq_len,
            nominal_lr=1e-3,
            with_data=True,
        )
        for seed in spec.seeds
    ]


ECHO = StudyKind(
    name="echo",
    summary="a toy kind: tiny Transformers that echo tokens",
    task_part=EchoPart,
    selects=lambda spec: spec.name.startswith("echo"),
    plan=plan_echo,
    make_task=lambda config, data: None,  # a real kind returns a TrainingTask (training/task.py)
    points=lambda store, sweep, metric=None: [t.id for t in store.trials(sweep)],
    compares_scaling=False,
)

ECHO_SPEC = {
    "name": "echo-study",
    "architectures": ["transformer"],
    "sizes": ["20k"],  # a sweep file without task: still validates as a ladder; the echo kind ignores it
    "budgets": {"tokens": ["8k"]},
    "seeds": [0, 1],
    "data": {"seq_len": 32},
    "training": {"batch_tokens": 128},
}


def test_a_new_kind_plans_stores_and_is_found_by_its_trials(tmp_path: Path):
    spec = parse_spec(ECHO_SPEC)
    assert kind_for_spec(spec).name == "ladder"  # not registered yet
    with registered(ECHO):
        assert kind_for_spec(spec) is ECHO and kind_named("echo") is ECHO
        trials = plan_trials(spec, 257)
        assert [t.seed for t in trials] == [0, 1] and len({t.id for t in trials}) == 2
        assert all(kind_of(t.config) is ECHO and t.config.task.echo == 3 for t in trials)
        assert [t.id for t in plan_trials(spec, 257)] == [t.id for t in trials]  # stable ids

        store = Store.open(f"sqlite:///{tmp_path / 'echo.db'}")
        store.upsert_sweep(spec.name, {}, workdir=None, code_version=None)
        store.add_trials(spec.name, [t.row() for t in trials])
        stored = store.trials(spec.name)
        assert [row.trial_config for row in stored] == [t.config for t in trials]
        assert all(row.trial_config.id == row.id for row in stored)
        assert ECHO.points(store, spec.name) == [t.id for t in trials]
        # what the dispatcher asks every kind: the defaults keep the sweep's micro batch and corpus
        config = stored[0].trial_config
        data = type("Data", (), {"fingerprint": "abc"})()
        assert ECHO.micro_batch_size(config, spec, 4) == 4 and ECHO.data_fingerprint(config, data) == "abc"
    assert kind_for_spec(spec).name == "ladder"  # gone again
    with pytest.raises(ValueError, match="kind marker"):
        TrialConfig.from_dict(trials[0].row()["config"])  # its configs parse only while it is registered


def test_the_built_in_kinds_plan_their_sweeps_and_name_their_trials():
    for example, name in (("smoke", "ladder"), ("recall", "recall")):
        spec = load_spec(EXAMPLES / f"{example}.yaml")
        kind = kind_for_spec(spec)
        assert kind.name == name
        assert {kind_of(t.config).name for t in kind.plan(spec, 257)} == {name}
    with pytest.raises(ValueError, match="built-in"):
        from orchestrator.kinds import unregister

        unregister("ladder")
