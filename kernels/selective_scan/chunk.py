"""The fast PyTorch form of Mamba's selective scan (see ``naive.py`` for the spec).

Mamba's decay ``a_t[e, n] = exp(dt_t[e] A[e, n])`` differs per channel *and* state index, so unlike
Mamba-2 there is no matmul ("attention-like") form: the work is elementwise on ``[B, L, E, N]``, and
what a fast form can save over the token loop is the per-token launch and autograd overhead.
Algorithm (fp32; decays are products of numbers in (0, 1], formed from the log decay ``dt A <= 0``,
so nothing overflows however strong the decay):

1. Time is cut into **segments** of whole chunks, sized so a segment's ``[B, S, E, N]`` working tensors
   stay near ``SEGMENT_ELEMENTS`` (at least one chunk). Only one segment's decays ``a`` and inputs
   ``u = dt B x`` exist at a time: memory is ``[B, S, E, N]``, never ``[B, T, E, N]``, and the work
   per token does not depend on ``T``.
2. **Within the chunks** of ``L`` tokens, all chunks of a segment at once: a loop over the ``L``
   positions forms each chunk's local state (from zero) and its cumulative decay from the chunk start
   (the segment sum ``exp(sum_{j<=t} log a_j)``, as a running product).
3. **Across chunks** a short loop adds ``decay_t * h_start`` (the state carried in, decayed from the
   chunk start) and hands the chunk's last state on. Then ``y_t = C_t . h_t + D x_t``.

Python steps per segment: ``L + S / L`` instead of ``S``. Backward is its own autograd function (no
``[B, T, E, N]`` saved): the forward keeps its inputs and the state at each segment start; the
backward walks segments from the end, recomputes the segment's states and runs the reverse recurrence
``G_t = C_t dy_t + a_{t+1} G_{t+1}`` with the same scan. Then ``du = G``,
``d log a_t = G_t a_t h_{t-1} = G_t (h_t - u_t)``, and the chain rule through ``log a = dt A``,
``u = dt B x``, ``y = C . h + D x``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SEGMENT_ELEMENTS = 1 << 19  # ~2 MB of fp32 per working tensor: bounded memory, few python steps


@torch.no_grad()
def _scan(a_BSEN, h_BSEN, h0_BEN, L: int, reverse: bool = False) -> torch.Tensor:
    """``h_t = a_t h_{t-1} + u_t`` over one segment of any length S, from ``h0`` (None: zeros), in place:
    ``h_BSEN`` holds ``u`` on entry and the states on return; ``a_BSEN`` (the per-step decays) is
    overwritten with each chunk's cumulative decay.

    ``reverse``: ``h_t = a_t h_{t+1} + u_t`` from ``h_S = h0`` (the backward's recurrence).
    The segment is cut into K chunks of L: a loop over the L positions updates all K chunks at once
    (chunk-local states from zero and each chunk's cumulative decay: products of numbers in (0, 1],
    nothing overflows), then a loop over the K chunks adds the carried state times that decay.
    """
    B, S, E, N = h_BSEN.shape
    out_BSEN = h_BSEN
    if S % L:  # decay 1, input 0 in the padding: states inside the segment are unaffected
        pad = L - S % L
        a_BSEN = F.pad(a_BSEN, (0, 0, 0, 0, 0, pad), value=1.0)
        h_BSEN = F.pad(h_BSEN, (0, 0, 0, 0, 0, pad))
    K = h_BSEN.shape[1] // L
    a_BKLEN, h_BKLEN = a_BSEN.view(B, K, L, E, N), h_BSEN.view(B, K, L, E, N)
    for j in range(L - 2, -1, -1) if reverse else range(1, L):
        prev = j + 1 if reverse else j - 1
        h_BKLEN[:, :, j].addcmul_(a_BKLEN[:, :, j], h_BKLEN[:, :, prev])
        a_BKLEN[:, :, j] *= a_BKLEN[:, :, prev]  # decay from the chunk's first (reverse: last) position
    last = 0 if reverse else L - 1  # the position a chunk hands its state on from
    chunks = list(range(K - 1, -1, -1) if reverse else range(K))
    for index, k in enumerate(chunks):
        carry_BEN = h0_BEN if index == 0 else h_BKLEN[:, chunks[index - 1], last]
        if carry_BEN is not None:
            h_BKLEN[:, k].addcmul_(a_BKLEN[:, k], carry_BEN[:, None])
    if h_BSEN is not out_BSEN:
        out_BSEN.copy_(h_BSEN[:, :S])
    return out_BSEN


def _segments(T: int, B: int, E: int, N: int, L: int) -> list[slice]:
    length = L * max(1, SEGMENT_ELEMENTS // (B * L * E * N))
    return [slice(start, min(start + length, T)) for start in range(0, T, length)]


def _decay_and_input(x_BSE, dt_BSE, A_EN, B_BSN):
    """Per-step decay ``exp(dt A)`` and input ``dt B x`` of a segment, ``[B, S, E, N]`` each."""
    a_BSEN = torch.exp_(dt_BSE[..., None] * A_EN)
    u_BSEN = (dt_BSE * x_BSE)[..., None] * B_BSN[:, :, None, :]
    return a_BSEN, u_BSEN


class _SelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_BTE, dt_BTE, A_EN, B_BTN, C_BTN, D_E, h0_BEN, chunk_size):
        Bsz, T, E = x_BTE.shape
        N = A_EN.shape[-1]
        L = max(1, min(chunk_size, T))
        x, dt, A, Bm, Cm = (t.float() for t in (x_BTE, dt_BTE, A_EN, B_BTN, C_BTN))
        h0 = None if h0_BEN is None else h0_BEN.float()
        y_BTE = torch.empty(Bsz, T, E, dtype=torch.float32, device=x.device)
        segments = _segments(T, Bsz, E, N, L)
        starts = []  # the state entering each segment (None: zeros)
        carry_BEN = h0
        for part in segments:
            starts.append(carry_BEN)
            a, h_BSEN = _decay_and_input(x[:, part], dt[:, part], A, Bm[:, part])
            _scan(a, h_BSEN, carry_BEN, L)
            y_BTE[:, part] = (h_BSEN * Cm[:, part, None, :]).sum(-1)
            carry_BEN = h_BSEN[:, -1].clone()
        if carry_BEN is None:
            carry_BEN = x.new_zeros(Bsz, E, N)
        if D_E is not None:
            y_BTE += D_E.float() * x
        zeros = x.new_zeros(Bsz, E, N)
        starts_KBEN = torch.stack([zeros if s is None else s for s in starts]) if starts else zeros[None, :0]
        ctx.save_for_backward(x, dt, A, Bm, Cm, None if D_E is None else D_E.float(), starts_KBEN)
        ctx.segments, ctx.chunk = segments, L
        ctx.dtypes = [
            None if t is None else t.dtype for t in (x_BTE, dt_BTE, A_EN, B_BTN, C_BTN, D_E, h0_BEN)
        ]
        return y_BTE, carry_BEN

    @staticmethod
    def backward(ctx, dy_BTE, dh_last_BEN):
        x, dt, A, Bm, Cm, D, starts_KBEN = ctx.saved_tensors
        Bsz, T, E = x.shape
        N = A.shape[-1]
        dy = torch.zeros_like(x) if dy_BTE is None else dy_BTE.float()
        dx, ddt = torch.empty_like(x), torch.empty_like(x)
        dB, dC = torch.empty_like(Bm), torch.empty_like(Cm)
        dA = torch.zeros_like(A)
        carry_BEN = None if dh_last_BEN is None else dh_last_BEN.float()  # G after the last token
        next_a_BEN = x.new_ones(Bsz, E, N)  # the decay into the position after the segment
        for index in reversed(range(len(ctx.segments))):
            part = ctx.segments[index]
            x_s, dt_s, B_s, C_s, dy_s = x[:, part], dt[:, part], Bm[:, part], Cm[:, part], dy[:, part]
            a, u = _decay_and_input(x_s, dt_s, A, B_s)
            # reverse recurrence G_t = C_t dy_t + a_{t+1} G_{t+1}: the decay at t is a_{t+1}
            a_next = torch.cat([a[:, 1:], next_a_BEN[:, None]], dim=1)
            next_a_BEN = a[:, 0].clone()
            h_BSEN = _scan(a, u.clone(), starts_KBEN[index], ctx.chunk)
            dC[:, part] = torch.matmul(dy_s[..., None, :], h_BSEN)[..., 0, :]
            G_BSEN = _scan(a_next, dy_s[..., None] * C_s[:, :, None, :], carry_BEN, ctx.chunk, reverse=True)
            # d log a_t = G_t a_t h_{t-1} = G_t (h_t - u_t), in place in h's buffer
            dlog_a = h_BSEN.sub_(u).mul_(G_BSEN)
            dA += (dlog_a * dt_s[..., None]).sum((0, 1))
            GB_BSE = (G_BSEN * B_s[:, :, None, :]).sum(-1)
            ddt[:, part] = (dlog_a * A).sum(-1) + GB_BSE * x_s
            dx[:, part] = GB_BSE * dt_s
            dB[:, part] = torch.matmul((dt_s * x_s)[..., None, :], G_BSEN)[..., 0, :]
            carry_BEN = G_BSEN[:, 0]
        dD = None
        if D is not None:
            dx += D * dy
            dD = (dy * x).sum((0, 1))
        dh0 = None
        if ctx.dtypes[6] is not None:  # d h0 = a_0 G_0
            dh0 = x.new_zeros(Bsz, E, N) if carry_BEN is None else next_a_BEN * carry_BEN
        grads = [dx, ddt, dA, dB, dC, dD, dh0]
        grads = [None if g is None or d is None else g.to(d) for g, d in zip(grads, ctx.dtypes, strict=True)]
        return (*grads, None)


def selective_scan(
    x_BTE: torch.Tensor,
    dt_BTE: torch.Tensor,
    A_EN: torch.Tensor,
    B_BTN: torch.Tensor,
    C_BTN: torch.Tensor,
    D_E: torch.Tensor | None = None,
    h0_BEN: torch.Tensor | None = None,
    *,
    chunk_size: int = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mamba's selective scan for all t: ``(y_BTE, h_last_BEN)`` in fp32 (same as ``selective_scan_ref``).

    ``dt_BTE > 0`` (after softplus), ``A_EN < 0``; ``B_BTN``, ``C_BTN`` are shared by all channels;
    ``D_E`` the skip (None: none); ``h0_BEN`` the state before the first token (zeros if None). Any
    ``T``; ``chunk_size`` trades the ``log2(L)`` doubling rounds against the carry steps.
    """
    if x_BTE.ndim != 3 or dt_BTE.shape != x_BTE.shape:
        raise ValueError(
            f"x and dt must both be [batch, time, channels], got {tuple(x_BTE.shape)}, {tuple(dt_BTE.shape)}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _SelectiveScan.apply(x_BTE, dt_BTE, A_EN, B_BTN, C_BTN, D_E, h0_BEN, chunk_size)
