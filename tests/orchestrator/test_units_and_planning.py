"""Counts (`50k`, `1.2M`) and the expansion of a sweep into content-addressed trials."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from orchestrator.kinds import plan_trials
from orchestrator.planning import MIN_STEPS, PlanError, resolve_lr
from orchestrator.spec import SpecError, parse_spec
from orchestrator.trial import trial_id
from orchestrator.units import format_count, parse_count

VOCAB = 257
BATCH_TOKENS = 2048


# --- parse_count / format_count ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50k", 50_000.0),
        ("50K", 50_000.0),
        ("1.2M", 1_200_000.0),
        ("1.2m", 1_200_000.0),
        ("3B", 3e9),
        ("3G", 3e9),
        ("2T", 2e12),
        ("1P", 1e15),
        ("1e15", 1e15),
        ("1E6", 1e6),
        ("2.5e-3k", 2.5),
        ("1_000", 1000.0),
        ("1_000k", 1e6),
        (" 7 k ", 7000.0),
        (".5M", 500_000.0),
        ("12", 12.0),
        (42, 42.0),
        (0.25, 0.25),
        (1e9, 1e9),
    ],
    ids=lambda v: repr(v),
)
def test_parse_count_accepts(text: Any, expected: float):
    assert parse_count(text) == pytest.approx(expected, rel=1e-12)
    assert isinstance(parse_count(text), float)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "size 'abc' is not a count; write a number with an optional suffix k, M, B, T"),
        ("5kk", "size '5kk' is not a count"),
        ("1.2X", "size '1.2X' is not a count"),
        ("-5k", "size '-5k' is not a count"),
        ("", "size '' is not a count"),
        (-5, "size must be positive, got -5"),
        (0, "size must be positive, got 0"),
        ("0k", "size must be positive, got '0k'"),
        (float("nan"), "size must be finite, got nan"),
        (float("inf"), "size must be finite, got inf"),
        (True, "size must be a number like 50000, '50k', '1.2M' or '1e15', not True"),
        (None, "size must be a number like 50000, '50k', '1.2M' or '1e15', not NoneType"),
        ([1], "size must be a number like 50000, '50k', '1.2M' or '1e15', not list"),
    ],
    ids=lambda v: repr(v),
)
def test_parse_count_rejects(value: Any, message: str):
    with pytest.raises(ValueError) as info:
        parse_count(value, what="size")
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1_234_567, "1.23M"),
        (20_000, "20k"),
        (999, "999"),
        (3e9, "3B"),
        (2.5e12, "2.5T"),
        (1e15, "1P"),
        (0.5, "0.5"),
    ],
)
def test_format_count(value: float, text: str):
    assert format_count(value) == text


# --- planning ---------------------------------------------------------------------------------


def make_spec(**changes: Any):
    """A small spec; ``changes`` replace top-level sections (dicts are merged one level deep)."""
    data: dict[str, Any] = {
        "name": "plan-test",
        "architectures": [
            "transformer",
            {"name": "transformer", "label": "transformer-rope5e5", "overrides": {"rope_theta": 5e5}},
        ],
        "sizes": ["20k", "50k"],
        "budgets": {"tokens": ["64k", "128k"]},
        "seeds": [0, 1, 2],
        "data": {"seq_len": 64},
        "training": {"batch_tokens": BATCH_TOKENS, "lr": 3e-3},
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict) and key != "budgets":
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_spec(copy.deepcopy(data))


@pytest.fixture(scope="module")
def base_trials():
    return plan_trials(make_spec(), VOCAB)


def test_trial_count_is_the_full_product(base_trials):
    assert len(base_trials) == 2 * 2 * 2 * 3
    combos = {(t.label, t.size_target, t.tokens, t.seed) for t in base_trials}
    assert len(combos) == 24


def test_trials_come_in_architecture_size_budget_seed_order(base_trials):
    keys = [(t.label, t.size_target, t.tokens, t.seed) for t in base_trials]
    assert keys[:4] == [
        ("transformer", 20_000.0, 63488, 0),
        ("transformer", 20_000.0, 63488, 1),
        ("transformer", 20_000.0, 63488, 2),
        ("transformer", 20_000.0, 126976, 0),
    ]
    assert keys[12][0] == "transformer-rope5e5"
    assert [t.arch for t in base_trials] == ["transformer"] * 24


def test_ids_are_unique_and_stable(base_trials):
    ids = [t.id for t in base_trials]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    assert [t.id for t in plan_trials(make_spec(), VOCAB)] == ids


def test_trial_id_hashes_content_not_key_order():
    assert trial_id({"a": 1, "b": [1, 2]}) == trial_id({"b": [1, 2], "a": 1})
    assert trial_id({"a": 1}) != trial_id({"a": 2})


def test_ids_ignore_how_a_trial_is_executed(base_trials):
    """Workers, CPUs, concurrency, retries, micro batch and the sweep's name do not change results."""
    spec = make_spec(
        name="another-sweep",
        description="same trials, other hardware",
        resources={
            "workers_per_trial": 2,
            "cpus_per_worker": 3,
            "gpus_per_worker": 1,
            "max_concurrent_trials": 7,
            "retries": 5,
        },
        training={"batch_tokens": BATCH_TOKENS, "lr": 3e-3, "micro_batch_size": 4},
    )
    assert [t.id for t in plan_trials(spec, VOCAB)] == [t.id for t in base_trials]


@pytest.mark.parametrize(
    "change",
    [
        {"training": {"lr": 1e-3}},
        {"training": {"schedule": "cosine"}},
        {"training": {"warmup_frac": 0.2}},
        {"data": {"seq_len": 32}},
        {"deepspeed": {"zero_stage": 1}},
    ],
    ids=["lr", "schedule", "warmup", "seq_len", "zero_stage"],
)
def test_ids_change_with_what_changes_the_result(base_trials, change):
    spec = make_spec(architectures=["transformer"], sizes=["20k"], budgets={"tokens": ["64k"]}, seeds=[0])
    reference = plan_trials(spec, VOCAB)[0]
    assert reference.id == base_trials[0].id  # the first trial of the base sweep, alone
    changed = plan_trials(
        make_spec(
            architectures=["transformer"], sizes=["20k"], budgets={"tokens": ["64k"]}, seeds=[0], **change
        ),
        VOCAB,
    )[0]
    assert changed.id != reference.id


def test_overrides_are_part_of_the_trial(base_trials):
    plain, variant = base_trials[0], base_trials[12]
    assert plain.size_target == variant.size_target and plain.seed == variant.seed
    assert variant.config.model.shape["rope_theta"] == 5e5 and plain.config.model.shape["rope_theta"] == 1e4
    assert variant.config.model.overrides == {"rope_theta": 5e5}
    assert plain.id != variant.id


def test_tokens_are_whole_steps_of_batch_tokens(base_trials):
    for trial in base_trials:
        assert trial.tokens == trial.steps * BATCH_TOKENS
        wanted = 64_000 if trial.tokens < 100_000 else 128_000
        assert trial.steps == round(wanted / BATCH_TOKENS)
        training = trial.config.training
        assert training.sequences_per_step == BATCH_TOKENS // 64
        assert training.warmup_steps == round(0.05 * trial.steps)
        assert training.cooldown_steps == round(0.2 * trial.steps)
        assert training.checkpoint_interval == training.eval_interval == 50
        stored = trial.row()["config"]
        assert stored["tokens"] == trial.tokens and stored["steps"] == trial.steps


def test_sizes_land_within_ten_percent_and_rows_are_consistent(base_trials):
    for trial in base_trials:
        acc = trial.accounting
        assert abs(acc["non_embedding_params"] / trial.size_target - 1) < 0.10
        row = trial.row()
        assert row["params_total"] == row["params_embedding"] + row["params_non_embedding"]
        assert row["flops_6nd"] == 6.0 * acc["non_embedding_params"] * trial.tokens
        assert row["flops_exact"] == acc["flops_per_token"] * trial.tokens
        assert row["flops_exact"] > row["flops_6nd"]
        assert row["seq_len"] == 64 and row["steps_total"] == trial.steps and row["id"] == trial.id


def test_tokens_per_param_budgets():
    spec = make_spec(
        architectures=["transformer"], sizes=["20k", "100k"], budgets={"tokens_per_param": [20, 40]}, seeds=1
    )
    trials = plan_trials(spec, VOCAB)
    assert len(trials) == 4
    for trial, ratio in zip(trials, [20, 40, 20, 40], strict=True):
        # Tokens follow the target size, not the realised parameter count (a matched study).
        assert trial.steps == round(ratio * trial.size_target / BATCH_TOKENS)
        assert abs(trial.tokens - ratio * trial.size_target) <= BATCH_TOKENS / 2
        assert trial.config.task.isoflop_budget is None


def test_isoflop_budgets_spend_the_budget():
    budgets = [1e12, 1e13]
    spec = make_spec(
        architectures=["transformer"],
        sizes=["20k", "50k", "200k"],
        budgets={"isoflop": {"budgets": budgets, "points": 4}},
        seeds=[0],
    )
    trials = plan_trials(spec, VOCAB)
    assert len(trials) == len(budgets) * 4  # `points` sizes per budget, whatever the sizes list holds
    expected_sizes = np.geomspace(20_000, 200_000, 4)
    for index, budget in enumerate(budgets):
        group = trials[index * 4 : (index + 1) * 4]
        assert [t.config.task.isoflop_budget for t in group] == [budget] * 4
        np.testing.assert_allclose([t.size_target for t in group], expected_sizes, rtol=1e-12)
        for trial in group:
            ideal_tokens = budget / (6 * trial.size_target)  # C = 6 N D with N the target size
            assert abs(trial.tokens - ideal_tokens) <= BATCH_TOKENS / 2  # only rounding to whole steps
            # The recorded FLOPs stay the realised model's: 6ND off the budget only by its size error.
            realised = trial.accounting["non_embedding_params"] / trial.size_target
            assert trial.flops_6nd == pytest.approx(budget * realised, rel=BATCH_TOKENS / (2 * ideal_tokens))
    # A fixed budget: bigger models get fewer tokens.
    first = trials[:4]
    assert [t.tokens for t in first] == sorted((t.tokens for t in first), reverse=True)


def test_isoflop_needs_a_range_of_sizes():
    spec = make_spec(sizes=["20k"], budgets={"isoflop": {"budgets": [1e12]}}, seeds=[0])
    with pytest.raises(PlanError, match=r"^sizes: an isoFLOP design needs at least two different sizes"):
        plan_trials(spec, VOCAB)


def test_isoflop_budget_too_small_names_budgets_isoflop():
    spec = make_spec(
        architectures=["transformer"], sizes=["20k", "50k"], budgets={"isoflop": {"budgets": [1e9]}}
    )
    with pytest.raises(PlanError) as info:
        plan_trials(spec, VOCAB)
    message = str(info.value)
    assert message.startswith("budgets.isoflop: ") and f"need at least {MIN_STEPS} steps" in message


def test_lr_rule_is_applied_per_size():
    spec = make_spec(
        architectures=["transformer"],
        sizes=["20k", "100k"],
        budgets={"tokens": ["64k"]},
        seeds=[0],
        training={"lr": {"base": 0.01, "ref_params": "50k", "exponent": -0.5}},
    )
    small, large = plan_trials(spec, VOCAB)
    for trial in (small, large):
        n = trial.accounting["non_embedding_params"]
        assert trial.lr == pytest.approx(0.01 * (n / 50_000) ** -0.5, rel=1e-12)
        assert trial.config.training.lr == trial.lr
        assert resolve_lr(spec, n) == trial.lr
    assert small.lr > 0.01 > large.lr
    assert small.lr / large.lr == pytest.approx(
        math.sqrt(large.accounting["non_embedding_params"] / small.accounting["non_embedding_params"])
    )


def test_constant_lr_is_the_same_for_every_size(base_trials):
    assert {t.lr for t in base_trials} == {3e-3}


def test_seed_count_expands_to_range():
    spec = make_spec(seeds=3)
    assert spec.seeds == [0, 1, 2]
    trials = plan_trials(
        make_spec(architectures=["transformer"], sizes=["20k"], budgets={"tokens": ["64k"]}, seeds=3), VOCAB
    )
    assert [t.seed for t in trials] == [0, 1, 2]
    assert len({t.id for t in trials}) == 3


def test_negative_seed_is_rejected():
    with pytest.raises(SpecError) as info:
        make_spec(seeds=[0, -1])
    assert info.value.problems == ["seeds must be >= 0, got [0, -1]"]


def test_bad_override_names_the_architecture_entry():
    spec = make_spec(
        architectures=["transformer", {"name": "transformer", "label": "bad", "overrides": {"bogus": 1}}],
        sizes=["20k"],
    )
    with pytest.raises(PlanError) as info:
        plan_trials(spec, VOCAB)
    message = str(info.value)
    assert message.startswith("architectures[1] (transformer) at size 2e+04: ")
    assert "bogus" in message and "valid fields:" in message


def test_duplicate_labels_are_rejected():
    with pytest.raises(SpecError) as info:
        make_spec(architectures=["transformer", "transformer"])
    assert info.value.problems == [
        "architectures: ['transformer'] listed twice; give each variant a distinct 'label'"
    ]
