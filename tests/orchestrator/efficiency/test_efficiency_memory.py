"""Bytes of decode state: the measured KV cache equals the analytic count; ``state_bytes`` walks any
nesting and counts a shared tensor once."""

from __future__ import annotations

import pytest
import torch

import models
from models.lm import DecodeState
from orchestrator.efficiency import kv_cache_bytes_analytic, state_bytes


def _transformer(**overrides):
    torch.manual_seed(0)
    return models.build("transformer", size="20k", vocab_size=29, seq_len=16, **overrides).eval()


@pytest.mark.parametrize("n_kv_heads", [None, 1], ids=["mha", "mqa"])
@pytest.mark.parametrize("context_len", [5, 16, 50], ids=["L5", "L16", "L50-past-seq_len"])
def test_kv_cache_bytes_equal_the_analytic_count(n_kv_heads, context_len):
    overrides = {} if n_kv_heads is None else {"n_kv_heads": n_kv_heads}
    model = _transformer(**overrides)
    tokens_BT = torch.randint(0, 29, (3, context_len), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        _, state = model.prefill(tokens_BT)
    c = model.config
    expected = c.n_layers * 2 * c.n_kv_heads * c.head_dim * context_len * 4 * 3
    assert kv_cache_bytes_analytic(model, context_len, batch=3) == expected
    assert state_bytes(state) == expected
    assert expected == 3 * 4 * model.state_size(context_len)  # the model's own accounting agrees


def test_kv_cache_bytes_follow_the_dtype():
    model = _transformer().to(torch.bfloat16)
    with torch.inference_mode():
        _, state = model.prefill(torch.zeros(1, 10, dtype=torch.long))
    assert state_bytes(state) == kv_cache_bytes_analytic(model, 10) == 2 * model.state_size(10)


def test_analytic_count_rejects_a_model_without_attention_heads():
    torch.manual_seed(0)
    model = models.build("mamba", size="10k", vocab_size=29, seq_len=16)
    with pytest.raises(ValueError, match="needs a Transformer"):
        kv_cache_bytes_analytic(model, 10)


def test_state_bytes_walks_nesting_and_counts_shared_tensors_once():
    a = torch.zeros(4, 8)  # 128 bytes
    b = torch.zeros(3, dtype=torch.float64)  # 24 bytes
    state = DecodeState(pos=7, layers=[{"a": a, "pair": (b, None)}, [a, "label", 3]])
    assert state_bytes(state) == 128 + 24
    assert state_bytes({"x": [torch.zeros(2, dtype=torch.int8)]}) == 2
    assert state_bytes(None) == 0


def test_state_bytes_count_the_whole_storage_a_view_keeps_alive():
    """A decode history sliced out of long activations holds all of them: the storage is what counts."""
    activations = torch.zeros(1, 1000, 8)  # 32000 bytes
    last = activations[:, -3:]  # a view: 96 bytes of numbers, 32000 bytes held
    assert state_bytes({"history": last}) == 32000
    assert state_bytes({"history": last.clone()}) == 96
    assert state_bytes([activations[:, :5], activations[:, 5:]]) == 32000  # one storage, counted once
