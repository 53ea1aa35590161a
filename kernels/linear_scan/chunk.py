"""The fast PyTorch form of the diagonal linear recurrence ``h_t = a_t * h_{t-1} + b_t``.

Algorithm (fp32; decays arrive in log space, ``a_t = exp(log_a_t)`` in (0, 1]):

1. **Within a chunk** of ``C`` tokens, a Hillis-Steele doubling scan: after the round with span ``s``
   every position holds ``h_t = sum_{j in (t-s, t]} (a_{j+1} ... a_t) b_j`` and the span's decay
   ``A_t = a_{t-s+1} ... a_t``; the round ``s -> 2s`` adds ``A_t * h_{t-s}`` and multiplies ``A_t`` by
   ``A_{t-s}``. ``log2(C)`` vectorised rounds over the whole ``[B, T/C, C, N]`` tensor. Only products
   of numbers in (0, 1] are formed, so nothing overflows however strong the decay (they may underflow
   to 0, the right limit); the cumsum trick ``exp(L_t) * cumsum(exp(-L_j) b_j)`` would overflow once a
   chunk decays past e^-88.
2. **Across chunks** a loop carries the state: chunk ``k`` adds ``A_t * h_end(k-1)``, where ``A_t`` is
   by then the decay from the chunk start to ``t``. ``T / C`` small steps of ``[B, C, N]`` work.

Cost per token is ``O(log C)`` elementwise work, independent of ``T``. Backward is its own autograd
function: the gradient of a linear recurrence is the same recurrence run backwards,
``G_t = dh_t + a_{t+1} G_{t+1}``, so ``db = G``, ``dlog_a_t = G_t * a_t * h_{t-1}``, ``dh0 = a_0 G_0``;
only ``log_a`` (at its broadcast shape) and the outputs are saved.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SEGMENT_ELEMENTS = 1 << 18  # ~1 MB of fp32 per working tensor: a segment's rounds stay in cache


@torch.no_grad()
def _scan_segment(log_a_BSN, b_BSN, h0_BN, C: int) -> torch.Tensor:
    """The doubling scan within chunks of ``C``, then the carry across them; any S (padded here)."""
    B, S, N = b_BSN.shape
    pad = (-S) % C  # a = 1, b = 0 after the end: the states up to S are unaffected
    n_chunks = (S + pad) // C
    A_BKCN = torch.exp(F.pad(log_a_BSN, (0, 0, 0, pad))).reshape(B, n_chunks, C, N)
    h_BKCN = F.pad(b_BSN, (0, 0, 0, pad)).reshape(B, n_chunks, C, N)  # F.pad copies: safe to update
    span = 1
    while span < C:
        # right-hand sides are evaluated before the in-place updates: they read the previous round
        h_BKCN[:, :, span:] += A_BKCN[:, :, span:] * h_BKCN[:, :, :-span]
        A_BKCN[:, :, span:] *= A_BKCN[:, :, :-span].clone()
        span *= 2
    # after the last round (span >= C) A holds the decay from the chunk start to t, inclusive
    carry_BN = h0_BN
    for k in range(n_chunks):
        if carry_BN is not None:
            h_BKCN[:, k] += A_BKCN[:, k] * carry_BN[:, None]
        carry_BN = h_BKCN[:, k, -1]
    return h_BKCN.reshape(B, n_chunks * C, N)[:, :S]


def _segments(T: int, B: int, N: int, C: int) -> list[slice]:
    """Consecutive time slices of a few chunks each, sized so one segment's tensors stay in cache:
    per-token cost then does not grow with T (large fresh tensors cost page faults and cache misses)."""
    length = C * max(1, SEGMENT_ELEMENTS // (B * N * C))
    return [slice(start, min(start + length, T)) for start in range(0, T, length)]


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, log_a, b_BTN, h0_BN, chunk_size):
        B, T, N = b_BTN.shape
        C = max(1, min(chunk_size, T))
        log_a32, b32 = log_a.float(), b_BTN.float()
        h0_32 = None if h0_BN is None else h0_BN.float()
        log_a_BTN = log_a32.expand(B, T, N)
        h_BTN = torch.empty(B, T, N, dtype=torch.float32, device=b_BTN.device)
        carry_BN = h0_32
        for part in _segments(T, B, N, C):
            h_BTN[:, part] = _scan_segment(log_a_BTN[:, part], b32[:, part], carry_BN, C)
            carry_BN = h_BTN[:, part.stop - 1]
        if carry_BN is None:
            carry_BN = b32.new_zeros(B, N)
        ctx.save_for_backward(log_a32, h_BTN, h0_32)
        ctx.chunk, ctx.log_a_shape = C, log_a.shape
        ctx.dtypes = (log_a.dtype, b_BTN.dtype, None if h0_BN is None else h0_BN.dtype)
        return h_BTN, carry_BN.clone()

    @staticmethod
    def backward(ctx, dh_BTN, dh_last_BN):
        """``G_t = dh_t + a_{t+1} G_{t+1}`` (+ the final state's gradient at t = T-1), segment by segment
        from the end: each segment is the forward scan on reversed time, carrying ``G`` at its start."""
        log_a32, h_BTN, h0_32 = ctx.saved_tensors
        B, T, N = h_BTN.shape
        log_a_BTN = log_a32.expand(B, T, N)
        db_BTN = torch.empty_like(h_BTN)
        # the decay's gradient at its own (broadcast) shape, seen as [B or 1, T or 1, N or 1]
        dlog_a = torch.zeros((1,) * (3 - log_a32.ndim) + tuple(log_a32.shape), device=h_BTN.device)
        per_step = dlog_a.shape[1] == T != 1
        carry_BN = None if dh_last_BN is None else dh_last_BN.float()  # G_T: enters as a_T G_T with a_T = 1
        next_log_a_BN = torch.zeros(B, N, device=h_BTN.device)
        for part in reversed(_segments(T, B, N, ctx.chunk)):
            g_BSN = torch.zeros_like(h_BTN[:, part]) if dh_BTN is None else dh_BTN[:, part].float()
            # reversed time: position j holds t = stop-1-j, its decay into the next step is a_{t+1}
            rev_log_a_BSN = torch.cat([next_log_a_BN[:, None], log_a_BTN[:, part][:, 1:].flip(1)], dim=1)
            G_BSN = _scan_segment(rev_log_a_BSN, g_BSN.flip(1), carry_BN, ctx.chunk).flip(1)
            db_BTN[:, part] = G_BSN
            if part.start:
                h_prev_BSN = h_BTN[:, part.start - 1 : part.stop - 1]
            else:
                h_init_B1N = h_BTN.new_zeros(B, 1, N) if h0_32 is None else h0_32[:, None]
                h_prev_BSN = torch.cat([h_init_B1N, h_BTN[:, : part.stop - 1]], dim=1)
            dlog_a_BSN = G_BSN * torch.exp(log_a_BTN[:, part]) * h_prev_BSN
            if per_step:
                dlog_a[:, part] = dlog_a_BSN.sum_to_size(dlog_a[:, part].shape)
            else:
                dlog_a += dlog_a_BSN.sum_to_size(dlog_a.shape)
            carry_BN, next_log_a_BN = G_BSN[:, 0], log_a_BTN[:, part.start]
        dh0 = None
        if h0_32 is not None:
            dh0 = torch.exp(next_log_a_BN) * carry_BN if T else carry_BN
        log_a_dtype, b_dtype, h0_dtype = ctx.dtypes
        dh0 = None if dh0 is None or h0_dtype is None else dh0.to(h0_dtype)
        return dlog_a.reshape(ctx.log_a_shape).to(log_a_dtype), db_BTN.to(b_dtype), dh0, None


def linear_scan(
    log_a: torch.Tensor, b_BTN: torch.Tensor, h0_BN: torch.Tensor | None = None, *, chunk_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """``h_t = exp(log_a_t) * h_{t-1} + b_t`` for all t: ``(h_BTN, h_last_BN)`` in fp32.

    ``log_a`` (``<= 0``) broadcasts against ``b_BTN`` (``[B,T,N]``; ``[1,1,N]`` for a time-invariant
    decay, which is also how its gradient comes back). ``h0_BN``: the state before the first token
    (zeros when None). Any ``T``; ``chunk_size`` trades the ``log2(C)`` doubling rounds against the
    ``T / C`` carry steps (64 is a good CPU default).
    """
    if b_BTN.ndim != 3:
        raise ValueError(f"b must be [batch, time, channels], got shape {tuple(b_BTN.shape)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _LinearScan.apply(log_a, b_BTN, h0_BN, chunk_size)
