"""Local attention beyond the catalog comparison: agreement with the masked T x T form, continuation
with a carried state, special cases, and flat memory per token."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from kernels.local_attention import (
    chunk_attention,
    chunk_attention_ref,
    masked_attention_ref,
    sliding_window_attention,
    sliding_window_attention_ref,
)


def _qkv(B=2, H=4, G=1, T=41, K=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, T, K, generator=generator)
    k = torch.randn(B, G, T, K, generator=generator)
    v = torch.randn(B, G, T, K, generator=generator)
    return q, k, v


@pytest.mark.parametrize("window, chunk_size", [(1, 4), (5, 4), (8, 8), (13, 4), (64, 16)])
def test_sliding_window_matches_masked_full_attention(window, chunk_size):
    q, k, v = _qkv(G=2)
    out, _ = sliding_window_attention(q, k, v, window=window, chunk_size=chunk_size)
    expected, _ = masked_attention_ref(q, k, v, window=window)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 6, 16, 100])
def test_chunk_attention_matches_masked_full_attention(chunk):
    q, k, v = _qkv(H=1, G=1)
    rel_bias = torch.randn(chunk)
    out, _ = chunk_attention(q, k, v, chunk=chunk, rel_bias=rel_bias)
    expected, _ = masked_attention_ref(q, k, v, chunk=chunk, rel_bias=rel_bias)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_window_covering_the_sequence_is_causal_attention_and_window_one_copies_values():
    q, k, v = _qkv(G=4)
    out, _ = sliding_window_attention(q, k, v, window=1000, chunk_size=16)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    out, _ = sliding_window_attention(q, k, v, window=1, chunk_size=16)
    torch.testing.assert_close(out, v)


@pytest.mark.parametrize("split", [1, 7, 20, 33])
@pytest.mark.parametrize("kind", ["sliding", "chunk"])
def test_continuing_from_the_carried_state_equals_one_run(kind, split):
    q, k, v = _qkv()
    if kind == "sliding":
        fast = lambda *a, **kw: sliding_window_attention(*a, window=9, chunk_size=4, **kw)  # noqa: E731
        ref = lambda *a, **kw: sliding_window_attention_ref(*a, window=9, **kw)  # noqa: E731
    else:
        bias = torch.randn(9)
        fast = lambda *a, **kw: chunk_attention(*a, chunk=9, rel_bias=bias, **kw)  # noqa: E731
        ref = lambda *a, **kw: chunk_attention_ref(*a, chunk=9, rel_bias=bias, **kw)  # noqa: E731
    whole, final = fast(q, k, v)
    first, carried = fast(q[:, :, :split], k[:, :, :split], v[:, :, :split])
    second, final2 = fast(q[:, :, split:], k[:, :, split:], v[:, :, split:], initial_state=carried)
    torch.testing.assert_close(torch.cat([first, second], 2), whole)
    for a, b in zip(final2, final, strict=True):
        torch.testing.assert_close(a, b)
    ref_second, ref_final = ref(q[:, :, split:], k[:, :, split:], v[:, :, split:], initial_state=carried)
    torch.testing.assert_close(ref_second, second, rtol=1e-5, atol=1e-5)
    assert final[0].shape[2] <= 8  # the state is bounded by the window / chunk


class _LargestTensor(TorchDispatchMode):
    """Records the element count of the largest tensor any op produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("kind", ["sliding", "chunk"])
def test_largest_intermediate_grows_linearly_not_quadratically(kind):
    per_token = []
    for T in (128, 1024):
        q, k, v = (x.requires_grad_() for x in _qkv(B=1, H=2, G=1, T=T, K=4))
        with _LargestTensor() as mode:
            if kind == "sliding":
                out, _ = sliding_window_attention(q, k, v, window=32, chunk_size=16)
            else:
                out, _ = chunk_attention(q, k, v, chunk=32)
            out.sum().backward()
        per_token.append(mode.largest / T)
    assert per_token[1] / per_token[0] <= 1.05
