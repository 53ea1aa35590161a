"""The in-context copy score every LM trial reports: its contexts, its range, and that it measures copying."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

import models
from orchestrator.cli import app
from orchestrator.store import Store
from orchestrator.training.evaluation import copy_contexts, copy_score
from tests.factories import make_trial


@pytest.mark.parametrize("seq_len", [8, 64, 300, 1024])
def test_copy_contexts_repeat_a_span_and_score_the_same_tokens_twice(seq_len: int):
    windows = torch.from_numpy(np.random.default_rng(0).integers(0, 200, size=(40, seq_len + 1)))
    tokens, first, second = copy_contexts(windows)
    again = copy_contexts(windows)
    assert torch.equal(tokens, again[0]) and torch.equal(first, again[1])  # fixed contexts
    assert tokens.shape == (32, seq_len + 1) and first.shape == second.shape == (32, seq_len)
    cap = min(256, seq_len // 2)
    for row in range(32):
        f, s = torch.nonzero(first[row]).flatten(), torch.nonzero(second[row]).flatten()
        span = len(f) + 1
        assert min(16, cap) <= span <= cap and len(s) == len(f)
        assert s.min() >= f.max() + 1  # the repeat comes after the first occurrence ends
        # the scored targets (tokens[c + 1]) are the same tokens both times, and so is the token before
        assert torch.equal(tokens[row, f + 1], tokens[row, s + 1])
        assert tokens[row, f.min()] == tokens[row, s.min()]


def test_an_untrained_model_scores_near_zero():
    torch.manual_seed(0)
    model = models.build("transformer", size="50k", vocab_size=257, seq_len=64)
    windows = torch.from_numpy(np.random.default_rng(1).integers(0, 256, size=(64, 65)))
    values = copy_score(model, windows)
    assert 0.0 <= values["copy_score"] < 0.02
    assert values["copy_loss_first"] == pytest.approx(math.log(257), rel=0.02)
    assert values["copy_score"] == max(0.0, 1 - values["copy_loss_second"] / values["copy_loss_first"])


@pytest.mark.slow
def test_the_copy_score_separates_a_trained_transformer_from_an_untrained_one():
    """A 2-layer Transformer trained in-process (~600 steps, about a minute on one core) on the standard
    library with spans repeated inside its windows forms induction heads; on held-out windows its copy
    score is far above the untrained model's (about 0)."""
    from orchestrator.data import prepare_data
    from orchestrator.data.batches import TrainBatches, validation_windows

    torch.set_num_threads(1)
    seq_len, batch, steps = 64, 32, 600
    data = prepare_data()
    windows = validation_windows(data.open("val"), seq_len, 16384)
    torch.manual_seed(0)
    model = models.build(
        "transformer", size="400k", vocab_size=data.vocab_size, seq_len=seq_len, n_layers=2, d_model=128
    )
    untrained = copy_score(model, windows)["copy_score"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    batches = TrainBatches(data.open("train"), seq_len, batch, seed=0)
    for step in range(steps):
        ((inputs, targets),) = batches.micro_batches(step, 0, 1, batch)
        # repeat a span inside every training window (different spans from the evaluation's)
        windows_BT1 = torch.cat([inputs, targets[:, -1:]], dim=1)
        windows_BT1, _, _ = copy_contexts(windows_BT1, contexts=batch, seed=10_000 + step)
        loss = F.cross_entropy(model(windows_BT1[:, :-1]).flatten(0, 1), windows_BT1[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    trained = copy_score(model, windows)
    assert untrained < 0.02
    assert trained["copy_score"] > untrained + 0.15, trained
    assert trained["copy_loss_second"] < trained["copy_loss_first"] - 0.3


@pytest.mark.slow
def test_every_lm_trial_records_its_copy_score(smoke_run):
    workdir, _ = smoke_run
    store = Store.open(f"sqlite:///{workdir / 'ceiling.db'}")
    for trial in store.trials("smoke"):
        final = trial.final_metrics
        assert 0.0 <= final["copy_score"] <= 1.0
        assert final["copy_score"] == pytest.approx(
            min(max(1 - final["copy_loss_second"] / final["copy_loss_first"], 0.0), 1.0)
        )
        for metric in ("copy_score", "copy_loss_first", "copy_loss_second"):
            rows = store.evals([trial.id], metric)
            assert [r.step for r in rows] == [trial.steps_total]  # measured once, at the end
            assert rows[0].value == pytest.approx(final[metric])


def test_laws_and_compare_fit_the_copy_score(tmp_path: Path):
    """copy_score is higher-is-better with a maximum of 1: the laws fit the shortfall 1 - score."""
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    store.upsert_sweep("lm", {"name": "lm"}, workdir=None, code_version="test")
    rows, scores = [], {}
    rng = np.random.default_rng(0)
    for label, (A, alpha) in {"transformer": (30.0, 0.35), "hawk": (30.0, 0.25)}.items():
        for i, n in enumerate(np.geomspace(1e5, 1e8, 6)):
            for ratio in (10, 40):
                d = n * ratio
                tid = f"{label}-{i}-{ratio}"
                shortfall = 0.05 + A / n**alpha + 200 / d**0.3
                scores[tid] = float(np.clip(1 - shortfall * np.exp(rng.normal(0, 0.01)), 0, 0.999))
                rows.append(
                    make_trial(
                        tid,
                        arch=label,
                        label=label,
                        params_non_embedding=int(n),
                        tokens=int(d),
                        flops_6nd=6 * n * d,
                    )
                )
    store.add_trials("lm", rows)
    for tid, score in scores.items():
        attempt = store.claim(tid)
        store.finish(tid, attempt, final_val_loss=2.0, final_metrics={"copy_score": score})
    db = f"sqlite:///{tmp_path / 's.db'}"
    laws = CliRunner().invoke(
        app, ["laws", "lm", "--metric", "copy_score", "--db", db, "--n-boot", "20", "--json"]
    )
    assert laws.exit_code == 0, laws.output
    fits = json.loads(laws.stdout)["fits"]
    assert fits["transformer"]["higher_is_better"] is True and fits["transformer"]["metric_max"] == 1.0
    compare = CliRunner().invoke(
        app,
        [
            "compare",
            "lm",
            "--metric",
            "copy_score",
            "--baseline",
            "transformer",
            "--db",
            db,
            "--n-boot",
            "20",
            "--json",
        ],
    )
    assert compare.exit_code == 0, compare.output
    assert "hawk" in json.loads(compare.stdout)["comparisons"]
