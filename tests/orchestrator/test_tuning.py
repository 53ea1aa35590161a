"""Learning-rate tuning: planning, the choice (search or fitted rule), and a real tuned sweep."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.kinds import plan_trials
from orchestrator.planning import TUNED
from orchestrator.scheduling.dependencies import Dependencies
from orchestrator.spec import SpecError, parse_spec
from orchestrator.store import Store
from orchestrator.store.law_inputs import law_runs
from orchestrator.tuning import choose_best, fit_lr_rule, rule_lr
from tests.factories import make_trial

SPEC = {
    "name": "tuned",
    "architectures": ["transformer"],
    "sizes": ["20k", "40k", "80k"],
    "budgets": {"tokens": [32768]},
    "tuning": {"lrs": [1e-3, 1e-2], "tokens": 16384, "sizes": "smallest:2", "rule": "fit"},
    "data": {"seq_len": 64, "val_tokens": 8192},
    "training": {"batch_tokens": 2048, "eval_interval": 100, "log_interval": 8},
    "resources": {"max_concurrent_trials": 2, "retries": 0},
}


@cache
def _main_trial_config():
    return next(t.config for t in plan_trials(parse_spec(SPEC), 256) if t.role == "main")


def _config(lr: float | str, role: str = "main", beta2: float | None = None) -> dict[str, Any]:
    """A real stored-form config (the store's rows are parsed typed) with this lr, role and beta2."""
    config = _main_trial_config()
    tuned = config.with_training(lr=lr, **({"beta2": beta2} if beta2 is not None else {}))
    return replace(tuned, role=role, tuning=config.tuning if lr == TUNED else None).to_dict()


def test_plan_puts_tuning_first_and_hashes_the_tuning_spec_not_an_lr():
    spec = parse_spec(SPEC)
    trials = plan_trials(spec, 256)
    roles = [t.role for t in trials]
    assert roles == ["tuning"] * 4 + ["main"] * 3  # 2 lrs x the 2 smallest sizes, then the ladder
    assert sorted({t.size_target for t in trials if t.role == "tuning"}) == [20e3, 40e3]
    main = [t for t in trials if t.role == "main"]
    assert all(t.tuned and t.config.training.lr == TUNED and t.config.tuning for t in main)
    # A different candidate list is a different study: the main trials' ids change with it.
    other = parse_spec({**SPEC, "tuning": {**SPEC["tuning"], "lrs": [1e-3, 3e-3]}})
    assert {t.id for t in plan_trials(other, 256) if t.role == "main"}.isdisjoint(t.id for t in main)
    # Planning is stable (resubmission runs nothing twice).
    assert [t.id for t in plan_trials(spec, 256)] == [t.id for t in trials]


@pytest.mark.parametrize(
    "tuning, message",
    [
        ({"lrs": [1e-3], "tokens": 16384, "sizes": "smallest:1"}, "leaves larger sizes without"),
        ({"lrs": [1e-3], "tokens": 16384, "sizes": "smallest:1", "rule": "fit"}, "at least two tuned sizes"),
        ({"lrs": [20.0], "tokens": 16384}, "tuning.lrs"),
        ({"lrs": [1e-3], "tokens": 16384, "sizes": "some"}, "tuning.sizes"),
    ],
)
def test_bad_tuning_specs_name_the_field(tuning, message):
    with pytest.raises(SpecError) as info:
        parse_spec({**SPEC, "tuning": tuning})
    assert message in str(info.value)


def test_best_candidate_and_diverged_counts_as_worst():
    candidates = [
        {"lr": 1e-2, "loss": math.inf, "trial_id": "a"},  # diverged
        {"lr": 3e-3, "loss": 2.5, "trial_id": "b"},
        {"lr": 1e-3, "loss": 2.7, "trial_id": "c"},
    ]
    assert choose_best(candidates)["lr"] == 3e-3
    assert choose_best([{"lr": 1e-2, "loss": math.inf, "trial_id": "a"}]) is None
    rule = fit_lr_rule([(1e4, 4e-3), (1e6, 4e-4)])
    assert rule["exponent"] == pytest.approx(-0.5) and rule_lr(rule, 1e8) == pytest.approx(4e-5)


def _store_with_tuning(tmp_path: Path, losses: dict[tuple[float, float], float | None]) -> tuple[Store, dict]:
    """A store holding tuning trials with given final losses (None = diverged) and one main trial per size."""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    store.upsert_sweep("tuned", {}, workdir=None, code_version=None)
    rows = []
    for (size, lr), loss in losses.items():
        rows.append(
            make_trial(
                f"t{int(size)}-{lr}",
                size_target=size,
                params_non_embedding=int(size),
                role="tuning",
                config=_config(lr, "tuning"),
                **(
                    {"status": "done", "final_val_loss": loss} if loss is not None else {"status": "diverged"}
                ),
            )
        )
    for size in (20e3, 40e3, 80e3):
        rows.append(
            make_trial(
                f"m{int(size)}", size_target=size, params_non_embedding=int(size), config=_config(TUNED)
            )
        )
    store.add_trials("tuned", rows)
    return store, {t.id: t for t in store.trials("tuned")}


def test_search_choice_and_rule_extrapolation_are_stored(tmp_path: Path):
    losses = {(20e3, 1e-3): 3.0, (20e3, 1e-2): 2.0, (40e3, 1e-3): 2.5, (40e3, 1e-2): None, (40e3, 1e-4): 2.6}
    store, by_id = _store_with_tuning(tmp_path, losses)
    deps = Dependencies(store, "tuned")
    # every config has a beta2 (the spec's, 0.95 here): the choice carries it
    assert deps.check(by_id["m20000"], by_id) == ("ready", {"lr": 1e-2, "beta2": 0.95})
    assert deps.check(by_id["m40000"], by_id) == (
        "ready",
        {"lr": 1e-3, "beta2": 0.95},
    )  # 1e-2 diverged: worst
    state, overrides = deps.check(by_id["m80000"], by_id)
    # lr = A * N^b through (20k, 1e-2) and (40k, 1e-3): b = log(0.1)/log(2), so at 80k lr = 1e-4.
    assert state == "ready" and overrides["lr"] == pytest.approx(1e-4)
    results = {r["label"]: r for r in store.tuning_results("tuned")}
    assert {k: (r["method"], r["lr"]) for k, r in results.items()} == {
        "20k": ("search", 1e-2),
        "40k": ("search", 1e-3),
        "80k": ("rule", pytest.approx(1e-4)),
    }
    stored = {c["lr"]: c["loss"] for c in results["40k"]["details"]["candidates"]}
    assert stored == {1e-3: 2.5, 1e-2: None, 1e-4: 2.6}  # the diverged one, stored as null
    assert results["80k"]["details"]["rule"]["exponent"] == pytest.approx(math.log(0.1) / math.log(2))
    assert results["80k"]["details"]["rule"]["clipped_to_grid"] is False
    assert all(r["arch"] == "transformer" for r in results.values())


def test_an_extrapolated_lr_stays_inside_the_searched_grid(tmp_path: Path):
    losses = {(20e3, 1e-3): 3.0, (20e3, 1e-2): 2.0, (40e3, 1e-3): 2.5, (40e3, 1e-2): 2.9}
    store, by_id = _store_with_tuning(tmp_path, losses)
    # The fitted slope says 1e-4 at 80k, below every candidate: the grid's smallest lr is used.
    assert Dependencies(store, "tuned").check(by_id["m80000"], by_id) == (
        "ready",
        {"lr": 1e-3, "beta2": 0.95},
    )
    (rule,) = [r for r in store.tuning_results("tuned") if r["method"] == "rule"]
    assert rule["details"]["rule"]["clipped_to_grid"]
    assert rule["details"]["rule"]["unclipped_lr"] == pytest.approx(1e-4)


def test_unfinished_tuning_waits_and_all_diverged_blocks(tmp_path: Path):
    store, by_id = _store_with_tuning(tmp_path, {(20e3, 1e-3): None, (20e3, 1e-2): None, (40e3, 1e-3): 2.0})
    deps = Dependencies(store, "tuned")
    state, why = deps.check(by_id["m20000"], by_id)
    assert state == "blocked" and "diverged" in why
    by_id["t40000-0.001"].status = "running"
    assert deps.check(by_id["m40000"], by_id)[0] == "wait"


@pytest.mark.slow
def test_a_tuned_sweep_runs_tuning_first_and_uses_the_choice(ray_runtime, tmp_path: Path):
    spec = {**SPEC, "sizes": ["20k", "40k"], "tuning": {**SPEC["tuning"], "sizes": "all", "rule": "none"}}
    path = tmp_path / "tuned.yaml"
    path.write_text(yaml.safe_dump(spec))
    args = ["run", str(path), "--workdir", str(tmp_path / "work"), "--json", "--no-mlflow"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == {"done": 6}
    store = Store.open(f"sqlite:///{tmp_path / 'work' / 'ceiling.db'}")
    trials = store.trials("tuned")
    choices = {(r["arch"], r["label"]): r for r in store.tuning_results("tuned")}
    assert set(choices) == {("transformer", "20k"), ("transformer", "40k")}
    for trial in (t for t in trials if t.role == "main"):
        choice = choices[("transformer", {20e3: "20k", 40e3: "40k"}[trial.size_target])]
        assert choice["method"] == "search" and trial.lr == choice["lr"]
        tuning = [t for t in trials if t.role == "tuning" and t.size_target == trial.size_target]
        assert trial.started_at >= max(t.finished_at for t in tuning)  # waited for its tuning trials
        best = min(tuning, key=lambda t: t.final_val_loss)
        assert choice["lr"] == best.trial_config.training.lr
    runs = law_runs(store, "tuned")
    assert len(runs) == 2 and sum("tuning" in e["reason"] for e in runs.excluded) == 4
    # Resubmitting runs nothing again.
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and json.loads(again.stdout)["ran"] == 0


def test_beta2_candidates_are_searched_with_the_lr(tmp_path: Path):
    spec = parse_spec({**SPEC, "tuning": {"lrs": [1e-3, 1e-2], "beta2s": [0.95, 0.99], "tokens": 16384}})
    tuning = [t for t in plan_trials(spec, 256) if t.role == "tuning"]
    assert len(tuning) == 3 * 2 * 2  # every size x lr x beta2
    assert {(t.config.training.lr, t.config.training.beta2) for t in tuning} == {
        (lr, b) for lr in (1e-3, 1e-2) for b in (0.95, 0.99)
    }
    store = Store.open(f"sqlite:///{tmp_path / 'b.db'}")
    store.upsert_sweep("tuned", {}, workdir=None, code_version=None)
    rows = [
        make_trial(
            f"t{lr}-{b}", role="tuning", status="done", final_val_loss=loss, config=_config(lr, "tuning", b)
        )
        for (lr, b), loss in {
            (1e-3, 0.95): 3.0,
            (1e-3, 0.99): 2.9,
            (1e-2, 0.95): 2.5,
            (1e-2, 0.99): 2.6,
        }.items()
    ]
    store.add_trials("tuned", [*rows, make_trial("main", config=_config(TUNED))])
    by_id = {t.id: t for t in store.trials("tuned")}
    assert Dependencies(store, "tuned").check(by_id["main"], by_id) == ("ready", {"lr": 1e-2, "beta2": 0.95})
    (choice,) = store.tuning_results("tuned")
    assert choice["beta2"] == 0.95 and {c["beta2"] for c in choice["details"]["candidates"]} == {0.95, 0.99}


def test_roles_parents_and_tuning_choices_round_trip(store_url: str):
    """Migration 0003 on SQLite and Postgres: role defaults to main, parent ids and choices are stored."""
    store = Store.open(store_url)
    store.upsert_sweep("rt", {}, workdir=None, code_version=None)
    store.add_trials(
        "rt",
        [
            make_trial("plain"),
            make_trial("trunk", role="trunk"),
            make_trial("branch", role="branch", parent_id="trunk"),
        ],
    )
    rows = {t.id: (t.role, t.parent_id) for t in store.trials("rt")}
    assert rows == {"plain": ("main", None), "trunk": ("trunk", None), "branch": ("branch", "trunk")}
    details = {
        "candidates": [{"lr": 1e-2, "loss": None, "trial_id": "x"}],
        "rule": {"A": 1.0, "exponent": -0.3},
    }
    store.record_tuning_choice("rt", arch="gla", label="20k", method="rule", lr=1e-3, details=details)
    store.record_tuning_choice(
        "rt", arch="gla", label="20k", method="search", lr=5.0, details={}
    )  # first stands
    assert store.tuning_results("rt") == [
        {"arch": "gla", "label": "20k", "method": "rule", "lr": 1e-3, "beta2": None, "details": details}
    ]
    store.set_trial_lr("plain", 2e-3)
    assert store.get_trial("plain").lr == 2e-3
