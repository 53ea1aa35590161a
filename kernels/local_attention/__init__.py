"""Local causal softmax attention that never materialises a ``T x T`` matrix.

- ``sliding_window_attention`` (Griffin's local attention; ``window`` keys per query, itself
  included) and ``chunk_attention`` (Mega's chunk-local attention with a relative-position bias):
  blocked fast forms in ``chunk.py``.
- ``*_ref`` (``naive.py``): fp32 one-query-at-a-time references, and ``masked_attention_ref``, the same
  attention as one masked ``T x T`` softmax.
"""

from __future__ import annotations

from functools import partial

import torch

from kernels.catalog import OpCase
from kernels.local_attention.chunk import chunk_attention, sliding_window_attention
from kernels.local_attention.naive import (
    chunk_attention_ref,
    masked_attention_ref,
    sliding_window_attention_ref,
)

HEAD_DIM = 32
CASE_WINDOW = 24  # not a multiple of the test block sizes: blocks straddle the window edge
CASE_CHUNK = 20


def make_mqa_inputs(
    batch: int, seq_len: int, heads: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Griffin-like multi-query inputs: ``heads`` query heads sharing one key/value head."""
    q = torch.randn(batch, heads, seq_len, HEAD_DIM, generator=generator)
    k = torch.randn(batch, 1, seq_len, HEAD_DIM, generator=generator)
    v = torch.randn(batch, 1, seq_len, HEAD_DIM, generator=generator)
    return {"q_BHTK": q.requires_grad_(), "k_BGTK": k.requires_grad_(), "v_BGTV": v.requires_grad_()}


def make_chunk_inputs(
    batch: int, seq_len: int, heads: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Mega-like inputs (one head per query/key head here) plus a learned relative-position bias."""
    inputs = {
        name: torch.randn(batch, heads, seq_len, HEAD_DIM, generator=generator).requires_grad_()
        for name in ("q_BHTK", "k_BGTK", "v_BGTV")
    }
    inputs["rel_bias"] = (0.5 * torch.randn(CASE_CHUNK, generator=generator)).requires_grad_()
    return inputs


CASES = [
    OpCase(
        name="sliding_window_attention",
        make_inputs=make_mqa_inputs,
        reference=partial(sliding_window_attention_ref, window=CASE_WINDOW),
        fast=partial(sliding_window_attention, window=CASE_WINDOW),
        fast_kwargs={"chunk_size": 16},
    ),
    OpCase(
        name="chunk_attention",
        make_inputs=make_chunk_inputs,
        reference=partial(chunk_attention_ref, chunk=CASE_CHUNK),
        fast=partial(chunk_attention, chunk=CASE_CHUNK),
        has_chunk_size=False,  # the chunk is the attention span itself, not a blocking choice
    ),
]

__all__ = [
    "CASES",
    "chunk_attention",
    "chunk_attention_ref",
    "masked_attention_ref",
    "sliding_window_attention",
    "sliding_window_attention_ref",
]
