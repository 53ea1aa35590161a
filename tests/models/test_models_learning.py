"""Every architecture learns: a few hundred steps on the default corpus take validation loss well below
the unigram baseline, with bf16 autocast and no NaNs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import models
from orchestrator.data import prepare_data
from orchestrator.data.batches import TrainBatches, validation_windows

pytestmark = pytest.mark.slow

STEPS, SEQ_LEN, BATCH = 200, 64, 16


@pytest.fixture(scope="module")
def corpus():
    data = prepare_data()
    train = data.open("train")
    counts = np.bincount(np.asarray(train[:2_000_000]), minlength=data.vocab_size).astype(np.float64)
    probs = counts[counts > 0] / counts.sum()
    unigram_nats = float(-(probs * np.log(probs)).sum())
    return data, unigram_nats


def test_the_unigram_baseline_is_what_we_think(corpus):
    _, unigram = corpus
    assert 2.5 < unigram < math.log(257)  # Python source: far from uniform over bytes


def test_architecture_learns_below_unigram_in_bf16(arch_name: str, corpus):
    data, unigram = corpus
    torch.manual_seed(0)
    model = models.build(arch_name, size="40k", vocab_size=data.vocab_size, seq_len=SEQ_LEN)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    batches = TrainBatches(data.open("train"), SEQ_LEN, BATCH, seed=0)
    for step in range(STEPS):
        ((inputs, targets),) = batches.micro_batches(step, 0, 1, BATCH)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        assert torch.isfinite(loss), f"{arch_name}: loss {loss.item()} at step {step}"
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    windows = validation_windows(data.open("val"), SEQ_LEN, 8192)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        val_logits = model(windows[:, :-1])
    val_loss = F.cross_entropy(val_logits.float().flatten(0, 1), windows[:, 1:].flatten()).item()
    assert math.isfinite(val_loss)
    assert val_loss < unigram - 0.4, f"{arch_name}: val loss {val_loss:.3f} vs unigram {unigram:.3f} nats"
