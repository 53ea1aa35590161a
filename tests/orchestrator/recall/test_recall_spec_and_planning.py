"""A recall study's sweep file, its errors (exit 2 naming the field), its trials and its batches."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.kinds import plan_trials
from orchestrator.recall.planning import recall_micro_batch_size
from orchestrator.recall.tasks import RecallTask
from orchestrator.spec import SpecError, load_spec, parse_spec
from tests.conftest import EXAMPLES

STUDY = {
    "name": "recall-unit",
    "architectures": ["transformer"],
    "seeds": [0, 1],
    "task": {
        "name": "mqar",
        "vocab_size": 64,
        "train": [{"seq_len": 32, "kv_pairs": 4}, {"seq_len": 64, "kv_pairs": 8}],
        "test": [{"seq_len": 64, "kv_pairs": 8}, {"seq_len": 128, "kv_pairs": 16}],
        "widths": [32, 64],
        "lrs": [1e-3, 3e-3],
        "steps": 10,
        "batch_size": 8,
        "test_examples": 16,
    },
}


def _with(**task_changes) -> dict:
    return {**STUDY, "task": {**STUDY["task"], **task_changes}}


def test_a_recall_study_plans_arch_x_width_x_lr_x_seed():
    spec = parse_spec(STUDY)
    trials = plan_trials(spec, vocab_size=257)  # the corpus vocabulary is not used: the task's is
    assert len(trials) == 2 * 2 * 2 and len({t.id for t in trials}) == 8
    for trial in trials:
        model, recall = trial.config.model.shape, trial.config.task
        assert model["vocab_size"] == 64 and model["n_layers"] == 2
        assert model["d_model"] == recall.width and model["seq_len"] == 128
        assert trial.config.training.sequences_per_step == 8 and trial.steps == 10
        # steps alternate between the train settings: 5 x 8 x 32 + 5 x 8 x 64 tokens
        assert trial.tokens == 5 * 8 * 32 + 5 * 8 * 64
        # the Transformer's state is its KV cache: 2 x layers x length x width at each test length
        width = model["d_model"]
        assert recall.state_sizes == {
            "T64_kv8": 2 * 2 * 64 * width,
            "T128_kv16": 2 * 2 * 128 * width,
        }
        assert recall.hardest == "T128_kv16"
    assert sorted({(t.config.task.width, t.lr, t.seed) for t in trials}) == sorted(
        (w, lr, s) for w in (32, 64) for lr in (1e-3, 3e-3) for s in (0, 1)
    )


def test_task_shorthand_and_defaults():
    spec = parse_spec({"name": "r", "architectures": ["transformer"], "task": "copy"})
    assert spec.task.name == "copy" and spec.task.test_settings() == spec.task.train_settings()
    assert spec.sizes is None and spec.budgets is None


def test_language_model_sweeps_still_need_sizes_and_budgets():
    with pytest.raises(SpecError) as error:
        parse_spec({"name": "lm", "architectures": ["transformer"]})
    assert error.value.problems == [
        "sizes: required field is missing; add it",
        "budgets: required field is missing; add it",
    ]


@pytest.mark.parametrize(
    "changes,expected",
    [
        ({"task": {**STUDY["task"], "vocab_size": 16}}, "task: vocab_size: 16 is too small for 8 kv pairs"),
        (
            {"task": {**STUDY["task"], "test": [{"seq_len": 64, "kv_pairs": 17}]}},
            "task.test[0]: kv_pairs: 17 pairs do not fit in seq_len 64",
        ),
        ({"task": {**STUDY["task"], "name": "mqr"}}, "task: Input tag 'mqr'"),
        ({"task": {**STUDY["task"], "widths": []}}, "task.widths: must not be empty"),
        ({"sizes": ["20k"]}, "sizes: a recall study (task: mqar) sizes its models by task.widths"),
        ({"budgets": {"tokens": ["1M"]}}, "budgets: a recall study (task: mqar) trains for task.steps"),
        ({"training": {"lr": 0.01}}, "training.lr: a recall study uses task.lrs instead"),
        ({"data": {"seq_len": 64}}, "data: a recall study (task: mqar) generates its own data"),
        (
            {"architectures": [{"name": "transformer", "overrides": {"d_model": 64}}]},
            "architectures[0].overrides.d_model: a recall study sets d_model from task.widths",
        ),
        (
            {"resources": {"workers_per_trial": 3}},
            "task.batch_size (8) must be a multiple of resources.workers_per_trial (3)",
        ),
    ],
    ids=[
        "vocab-too-small",
        "too-many-kv-pairs",
        "unknown-task",
        "no-widths",
        "sizes",
        "budgets",
        "lr",
        "data",
        "d_model",
        "workers",
    ],
)
def test_bad_recall_studies_exit_2_naming_the_field(tmp_path: Path, changes: dict, expected: str):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**STUDY, **changes}))
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert any(expected in p for p in error.value.problems), error.value.problems
    result = CliRunner().invoke(app, ["plan", str(path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert expected in " ".join(result.stderr.split())


def test_recall_batches_are_a_function_of_seed_and_step_and_split_across_workers():
    trial = plan_trials(parse_spec(STUDY), 0)[0]
    task = RecallTask(trial.config)
    a, b = task.step_batch(3), RecallTask(trial.config).step_batch(3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].shape == (8, 64) and task.step_batch(2)[0].shape == (8, 32)  # settings take turns
    other_seed = RecallTask(replace(trial.config, seed=1)).step_batch(3)
    assert not np.array_equal(a[0], other_seed[0])
    one = np.concatenate([x.numpy() for x, _ in task.micro_batches(3, 0, 1, 4)])
    two = [np.concatenate([x.numpy() for x, _ in task.micro_batches(3, rank, 2, 2)]) for rank in (0, 1)]
    assert sorted(map(tuple, one)) == sorted(map(tuple, np.concatenate(two)))
    assert task.tokens_seen(trial.steps) == trial.tokens
    # test sets do not depend on the trial seed: every trial is scored on the same sequences
    assert all(
        np.array_equal(x[0], y[0])
        for x, y in zip(task._tests, RecallTask(replace(trial.config, seed=5))._tests, strict=True)
    )


def test_a_fixed_training_set_is_revisited():
    trial = plan_trials(parse_spec(_with(train_examples=5, train=[{"seq_len": 32, "kv_pairs": 4}])), 0)[0]
    task = RecallTask(trial.config)
    rows = {tuple(row) for step in range(20) for row in task.step_batch(step)[0]}
    assert len(rows) == 5


def test_micro_batch_fits_8k_tokens_per_worker():
    trial = plan_trials(parse_spec(_with(batch_size=512)), 0)[0]
    assert recall_micro_batch_size(trial.config, 1, None) == 128  # 8192 // 64 (the longest train length)
    assert recall_micro_batch_size(trial.config, 2, None) == 128
    assert recall_micro_batch_size(trial.config, 1, 16) == 16


def test_the_recall_example_validates_and_plans():
    spec = load_spec(EXAMPLES / "recall.yaml")
    trials = plan_trials(spec, 0)
    assert spec.task.name == "mqar" and len(trials) >= 8
    assert {t.arch for t in trials} >= {"transformer"}
