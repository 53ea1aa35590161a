"""The fast PyTorch form of Mamba's selective scan (see ``naive.py`` for the spec).

Mamba's decay ``a_t[e, n] = exp(dt_t[e] A[e, n])`` differs per channel *and* state index, so unlike
Mamba-2 there is no matmul ("attention-like") form: the work is elementwise on ``[B, L, E, N]``, and
what a fast form can save over the token loop is the per-token launch and autograd overhead. So the
aim here is few Python-level ops and few passes over ``[B, S, E, N]`` memory.
Algorithm (fp32; decays are products of numbers in (0, 1], formed from the log decay ``dt A <= 0``,
so nothing overflows however strong the decay; a cumulative-sum form ``exp(c_t) sum_s exp(-c_s) u_s``
would overflow at ``-c_s > 88``, which Mamba's decays of up to ``e^-50`` per token reach in two tokens):

1. Time is cut into **segments** of whole chunks, sized so a segment's ``[B, S, E, N]`` working tensors
   stay near ``SEGMENT_ELEMENTS`` (at least one chunk; a short remainder joins the last segment). Only one segment's decays ``a`` and inputs
   ``u = dt B x`` exist at a time, in buffers reused by every segment (no allocation, no page faults):
   memory is ``[B, S, E, N]``, never ``[B, T, E, N]``, and the work per token does not depend on ``T``.
2. **Within the chunks** of ``L`` tokens, all chunks of a segment at once: a loop over the ``L``
   positions forms each chunk's local state (from zero) and its cumulative decay from the chunk start
   (the segment sum ``exp(sum_{j<=t} log a_j)``, as a running product, in a separate buffer so ``a``
   survives for the backward's second scan).
3. **Across chunks** a short loop adds ``decay_t * h_start`` (the state carried in, decayed from the
   chunk start) and hands the chunk's last state on; a ragged tail (``S % L`` tokens) is stepped one
   token at a time. Then ``y_t = C_t . h_t + D x_t`` as a batched matmul.

Python steps per segment: ``2 L + S / L`` instead of ``S``. Backward is its own autograd function (no
``[B, T, E, N]`` saved): the forward keeps its inputs and the state at each segment start; the
backward walks segments from the end, recomputes the segment's states and runs the reverse recurrence
``G_t = C_t dy_t + a_{t+1} G_{t+1}`` with the same scan (``a_{t+1}``: the decay buffer shifted by one,
one extra token computed at the segment's end). Then ``du = G``,
``d log a_t = G_t a_t h_{t-1}`` (``h_{t-1}``: the state buffer shifted by one, the segment's entering
state in front), and the chain rule through ``log a = dt A``,
``u = dt B x``, ``y = C . h + D x``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SEGMENT_ELEMENTS = 1 << 19  # ~2 MB of fp32 per working tensor: few Python steps, passes stay in cache


class _Buffers:
    """Flat fp32 work buffers reused by every segment: ``take(name, S)`` is a contiguous ``[B, S, E, N]``."""

    def __init__(self, B: int, E: int, N: int, max_len: int, like: torch.Tensor):
        self.shape, self.like, self.max_len, self.flat = (B, E, N), like, max_len, {}

    def take(self, name: str, S: int) -> torch.Tensor:
        B, E, N = self.shape
        if name not in self.flat:
            self.flat[name] = self.like.new_empty(B * self.max_len * E * N)
        return self.flat[name][: B * S * E * N].view(B, S, E, N)


@torch.no_grad()
def _scan(a_BSEN, h_BSEN, h0_BEN, L: int, cum_BSEN, reverse: bool = False) -> torch.Tensor:
    """``h_t = a_t h_{t-1} + u_t`` over one segment of any length S, from ``h0`` (None: zeros), in place:
    ``h_BSEN`` holds ``u`` on entry and the states on return; ``a_BSEN`` is read only; ``cum_BSEN`` (same
    shape, contents ignored) receives each chunk's cumulative decay.

    ``reverse``: ``h_t = a_t h_{t+1} + u_t`` from ``h_S = h0`` (the backward's recurrence).
    The first ``K = S // L`` chunks of L: a loop over the L positions updates all K chunks at once
    (chunk-local states from zero and each chunk's cumulative decay: products of numbers in (0, 1],
    nothing overflows); a loop over the K chunks on ``[B, E, N]`` only forms the state entering each
    chunk; one op adds those states times the cumulative decays. The ragged tail of ``S - K L`` tokens
    (last segment only) is stepped one token at a time.
    """
    B, S, E, N = h_BSEN.shape
    K = S // L
    body = K * L
    carry_BEN = h0_BEN

    def tail(carry_BEN, positions):
        for t in positions:
            if carry_BEN is not None:
                h_BSEN[:, t].addcmul_(a_BSEN[:, t], carry_BEN)
            carry_BEN = h_BSEN[:, t]
        return carry_BEN

    if reverse:
        carry_BEN = tail(carry_BEN, range(S - 1, body - 1, -1))
    if K:
        a_BKLEN = a_BSEN[:, :body].view(B, K, L, E, N)
        h_BKLEN = h_BSEN[:, :body].view(B, K, L, E, N)
        c_BKLEN = cum_BSEN[:, :body].view(B, K, L, E, N)
        # one dispatcher call for all L position views (cheaper than 6 L Python-level selects)
        a_l, h_l, c_l = a_BKLEN.unbind(2), h_BKLEN.unbind(2), c_BKLEN.unbind(2)
        first, last = (L - 1, 0) if reverse else (0, L - 1)  # where a chunk starts / hands its state on
        c_l[first].copy_(a_l[first])
        for j in range(L - 2, -1, -1) if reverse else range(1, L):
            prev = j + 1 if reverse else j - 1
            h_l[j].addcmul_(a_l[j], h_l[prev])
            torch.mul(c_l[prev], a_l[j], out=c_l[j])
        # the state entering each chunk: s_k = c_last(k') s_k' + h_last(k') (k' the chunk before), on
        # [B, E, N] only; then one op adds s_k times the cumulative decay at every position
        order = list(range(K - 1, -1, -1) if reverse else range(K))
        if carry_BEN is not None or K > 1:
            h_out, c_out = h_l[last].unbind(1), c_l[last].unbind(1)
            enter_BKEN = h_BSEN.new_empty(B, K, E, N)
            enter_k = enter_BKEN.unbind(1)
            if carry_BEN is None:
                enter_k[order[0]].zero_()
            else:
                enter_k[order[0]].copy_(carry_BEN)
            for before, k in zip(order[:-1], order[1:], strict=True):
                torch.addcmul(h_out[before], c_out[before], enter_k[before], out=enter_k[k])
            h_BKLEN.addcmul_(c_BKLEN, enter_BKEN[:, :, None])
        carry_BEN = h_l[last][:, order[-1]]
    if not reverse:
        tail(carry_BEN, range(body, S))
    return h_BSEN


def _segments(T: int, B: int, E: int, N: int, L: int) -> list[slice]:
    """Whole chunks near ``SEGMENT_ELEMENTS`` each; a remainder under half a segment joins the last one
    (every segment pays ~2 L Python steps per scan whatever its length, so a short tail costs like a
    full segment: at T = 256, E = 160 it was half the time)."""
    length = L * max(1, SEGMENT_ELEMENTS // (B * L * E * N))
    starts = list(range(0, T, length))
    if not starts:
        return []
    if len(starts) > 1 and T - starts[-1] < length // 2:
        starts.pop()
    return [slice(start, end) for start, end in zip(starts, [*starts[1:], T], strict=True)]


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
        buffers = _Buffers(Bsz, E, N, max((p.stop - p.start for p in segments), default=0), x)
        dtx_BTE = dt * x
        starts = []  # the state entering each segment (None: zeros)
        carry_BEN = h0
        for part in segments:
            S = part.stop - part.start
            starts.append(carry_BEN)
            a_BSEN = torch.mul(dt[:, part, :, None], A, out=buffers.take("a", S)).exp_()
            h_BSEN = torch.mul(dtx_BTE[:, part, :, None], Bm[:, part, None, :], out=buffers.take("h", S))
            _scan(a_BSEN, h_BSEN, carry_BEN, L, buffers.take("cum", S))
            y_BTE[:, part] = torch.matmul(h_BSEN, Cm[:, part, :, None])[..., 0]
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
        dy = torch.zeros_like(x) if dy_BTE is None else dy_BTE.float().contiguous()  # not expanded: fast bmm
        dx, ddt = torch.empty_like(x), torch.empty_like(x)
        dB, dC = torch.empty_like(Bm), torch.empty_like(Cm)
        dA = torch.zeros_like(A)
        dtx_BTE = dt * x
        dt_next_BTE = F.pad(dt, (0, 0, 0, 1))  # dt = 0 after the last token: decay 1 into "T"
        buffers = _Buffers(Bsz, E, N, max((p.stop - p.start for p in ctx.segments), default=0) + 1, x)
        carry_BEN = None if dh_last_BEN is None else dh_last_BEN.float()  # G after the last token
        a_BSEN = None
        for index in reversed(range(len(ctx.segments))):
            part = ctx.segments[index]
            S = part.stop - part.start
            x_s, dt_s, B_s, C_s, dy_s = x[:, part], dt[:, part], Bm[:, part], Cm[:, part], dy[:, part]
            # decays of the segment's tokens and of the one after it: a_t and (shifted) a_{t+1}
            a_ext = buffers.take("a", S + 1)
            torch.mul(dt_next_BTE[:, part.start : part.stop + 1, :, None], A, out=a_ext).exp_()
            a_BSEN, a_next_BSEN = a_ext[:, :S], a_ext[:, 1:]
            cum_BSEN = buffers.take("cum", S)
            # the states with the one entering the segment in front: h_{t-1} is a view, not a copy
            h_ext = buffers.take("h", S + 1)
            h_ext[:, 0] = starts_KBEN[index]
            h_BSEN = torch.mul(dtx_BTE[:, part, :, None], B_s[:, :, None, :], out=h_ext[:, 1:])  # u
            _scan(a_BSEN, h_BSEN, starts_KBEN[index], ctx.chunk, cum_BSEN)
            dC[:, part] = torch.matmul(dy_s[..., None, :], h_BSEN)[..., 0, :]
            # reverse recurrence G_t = C_t dy_t + a_{t+1} G_{t+1}
            G_BSEN = torch.mul(dy_s[..., None], C_s[:, :, None, :], out=buffers.take("G", S))
            _scan(a_next_BSEN, G_BSEN, carry_BEN, ctx.chunk, cum_BSEN, reverse=True)
            # d log a_t = G_t a_t h_{t-1}, in place over h_{t-1} (h_t is no longer needed)
            dlog_a = h_ext[:, :S].mul_(a_BSEN).mul_(G_BSEN)
            dA += torch.mul(dlog_a, dt_s[..., None], out=cum_BSEN).sum((0, 1))
            GB_BSE = torch.matmul(G_BSEN, B_s[..., None])[..., 0]
            ddt[:, part] = torch.einsum("bsen,en->bse", dlog_a, A) + GB_BSE * x_s
            dx[:, part] = GB_BSE * dt_s
            dB[:, part] = torch.matmul(dtx_BTE[:, part, None, :], G_BSEN)[..., 0, :]
            carry_BEN = G_BSEN[:, 0].clone()
        dD = None
        if D is not None:
            dx += D * dy
            dD = (dy * x).sum((0, 1))
        dh0 = None
        if ctx.dtypes[6] is not None:  # d h0 = a_0 G_0 (a_BSEN: the first segment's decays)
            dh0 = x.new_zeros(Bsz, E, N) if carry_BEN is None or a_BSEN is None else a_BSEN[:, 0] * carry_BEN
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
    ``T``; ``chunk_size`` trades the ``2 L`` within-chunk steps against the ``S / L`` carry steps.
    """
    if x_BTE.ndim != 3 or dt_BTE.shape != x_BTE.shape:
        raise ValueError(
            f"x and dt must both be [batch, time, channels], got {tuple(x_BTE.shape)}, {tuple(dt_BTE.shape)}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _SelectiveScan.apply(x_BTE, dt_BTE, A_EN, B_BTN, C_BTN, D_E, h0_BEN, chunk_size)
