"""Griffin's and Mega's training memory per token stays flat as the context grows past the attention
window / chunk: peak live CPU memory of one forward + backward, measured with torch's profiler."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import models

SPAN = 16  # Griffin's window / Mega's chunk
VOCAB = 64


def peak_bytes(fn) -> int:
    """Peak of the running sum of allocations minus frees over the profiled ops, in time order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


def _training_step_peak(name: str, seq_len: int) -> int:
    span = {"window": SPAN} if name == "griffin" else {"chunk_size": SPAN}
    torch.manual_seed(0)
    model = models.build(name, size="20k", vocab_size=VOCAB, seq_len=seq_len, **span)
    tokens_BT = torch.randint(0, VOCAB, (1, seq_len), generator=torch.Generator().manual_seed(0))
    return peak_bytes(lambda: model(tokens_BT).logsumexp(-1).sum().backward())


@pytest.mark.parametrize("name", ["griffin", "mega"])
def test_memory_per_token_is_flat_past_the_window(name):
    short, long = 2 * SPAN, 8 * SPAN
    per_token_short = _training_step_peak(name, short) / short
    per_token_long = _training_step_peak(name, long) / long
    assert per_token_short > 0
    assert per_token_long / per_token_short <= 1.3


def test_the_measurement_sees_quadratic_memory():
    """Control: full T x T attention scores make the per-token peak grow with T."""

    def full_attention(T: int):
        x = torch.randn(1, T, 8, requires_grad=True)
        return lambda: (torch.softmax(x @ x.transpose(1, 2), dim=-1) @ x).sum().backward()

    ratio = (peak_bytes(full_attention(8 * 64)) / (8 * 64)) / (peak_bytes(full_attention(2 * 64)) / (2 * 64))
    assert ratio > 2.5
