"""Triton kernels for Mamba's selective scan (the GPU path of ``kernels.selective_scan``; same signature
and results as ``chunk.selective_scan``; the spec is ``naive.py``)::

    h_t[e, n] = exp(dt_t[e] A[e, n]) h_{t-1}[e, n] + dt_t[e] B_t[n] x_t[e]
    y_t[e]    = sum_n C_t[n] h_t[e, n] + D[e] x_t[e]

Memory-bound: the state ``[B, E, N]`` never goes to memory except at tile starts. Each program owns
``BLOCK_E`` channels of one sequence (all ``N`` state indices) and walks time in tiles of ``BLOCK_T``:
the tile's ``x, dt, B, C`` are loaded once, the ``[BLOCK_T, BLOCK_E, N]`` decays and inputs are formed
in registers, an associative scan over time gives every position's state from a zero start and the
decay since the tile start, and the fp32 state carried from the previous tile is added as
``decay * carry``. Padding past ``T`` has ``dt = 0`` (decay 1, input 0), so a tile's last row is the
state at its last real token. The forward also writes the state at each tile start (``[B, T/BLOCK_T,
E, N]``, a fraction of ``x``'s size) so the backward can recompute a tile's states without a second
forward pass.

Backward, one pass from the end: recompute the tile's states from its saved start, run the reverse
recurrence ``G_t = C_t dy_t + a_{t+1} G_{t+1}`` (``G_T`` = the final state's gradient) with a reverse
scan, then ``du = G`` and ``d log a_t = G_t a_t h_{t-1} = G_t (h_t - u_t)`` through ``log a = dt A``,
``u = dt B x`` and ``y = C . h + D x``. ``dB``, ``dC`` (shared by all channels) are written per channel
block and summed afterwards (deterministic, no atomics); ``dA``, ``dD`` per sequence, summed likewise.

Imported lazily by ``kernels.dispatch``; never import it from ``kernels/selective_scan/__init__.py``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# launch settings (untuned defaults; bench/kernels.py measures them): software-pipelined loads of the
# next time tiles while the current one is scanned hide memory latency with few programs per SM
NUM_WARPS = 4
NUM_STAGES = 3


@triton.jit
def _combine(a_first, h_first, a_second, h_second):
    """Two consecutive stretches of the recurrence as one: decays multiply, the first's state decays."""
    return a_first * a_second, a_second * h_first + h_second


@triton.jit
def _selective_scan_fwd_kernel(
    x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, h0_ptr,
    y_ptr, h_last_ptr, starts_ptr,
    T, E, N, n_tiles,
    HAS_D: tl.constexpr, HAS_H0: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_N: tl.constexpr, NUM_STAGES: tl.constexpr,
):  # fmt: skip
    pid_e, pid_b = tl.program_id(0).to(tl.int64), tl.program_id(1).to(tl.int64)  # offsets past 2^31
    e_E = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    n_N = tl.arange(0, BLOCK_N)
    e_ok_E, n_ok_N = e_E < E, n_N < N
    en_ok_EN = e_ok_E[:, None] & n_ok_N[None, :]
    en_off_EN = e_E[:, None] * N + n_N[None, :]
    A_EN = tl.load(A_ptr + en_off_EN, mask=en_ok_EN, other=0.0).to(tl.float32)
    if HAS_D:
        D_E = tl.load(D_ptr + e_E, mask=e_ok_E, other=0.0).to(tl.float32)
    state_base = pid_b * E * N + en_off_EN
    if HAS_H0:
        carry_EN = tl.load(h0_ptr + state_base, mask=en_ok_EN, other=0.0).to(tl.float32)
    else:
        carry_EN = tl.zeros([BLOCK_E, BLOCK_N], dtype=tl.float32)
    rows_T = tl.arange(0, BLOCK_T)
    for k in tl.range(0, n_tiles, num_stages=NUM_STAGES):
        tl.store(starts_ptr + (pid_b * n_tiles + k) * E * N + en_off_EN, carry_EN, mask=en_ok_EN)
        t_T = k * BLOCK_T + rows_T
        ok_T = t_T < T
        te_off_TE = (pid_b * T + t_T[:, None]) * E + e_E[None, :]
        te_ok_TE = ok_T[:, None] & e_ok_E[None, :]
        tn_off_TN = (pid_b * T + t_T[:, None]) * N + n_N[None, :]
        tn_ok_TN = ok_T[:, None] & n_ok_N[None, :]
        x_TE = tl.load(x_ptr + te_off_TE, mask=te_ok_TE, other=0.0).to(tl.float32)
        dt_TE = tl.load(dt_ptr + te_off_TE, mask=te_ok_TE, other=0.0).to(tl.float32)
        B_TN = tl.load(B_ptr + tn_off_TN, mask=tn_ok_TN, other=0.0).to(tl.float32)
        C_TN = tl.load(C_ptr + tn_off_TN, mask=tn_ok_TN, other=0.0).to(tl.float32)
        a_TEN = tl.exp(dt_TE[:, :, None] * A_EN[None, :, :])
        u_TEN = (dt_TE * x_TE)[:, :, None] * B_TN[:, None, :]
        decay_TEN, h_TEN = tl.associative_scan((a_TEN, u_TEN), 0, _combine)
        h_TEN = h_TEN + decay_TEN * carry_EN[None, :, :]
        y_TE = tl.sum(h_TEN * C_TN[:, None, :], axis=2)
        if HAS_D:
            y_TE += D_E[None, :] * x_TE
        tl.store(y_ptr + te_off_TE, y_TE, mask=te_ok_TE)
        carry_EN = tl.sum(tl.where((rows_T == BLOCK_T - 1)[:, None, None], h_TEN, 0.0), axis=0)
    tl.store(h_last_ptr + state_base, carry_EN, mask=en_ok_EN)


@triton.jit
def _selective_scan_bwd_kernel(
    x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, starts_ptr, dy_ptr, dh_last_ptr,
    dx_ptr, ddt_ptr, dB_part_ptr, dC_part_ptr, dA_part_ptr, dD_part_ptr, dh0_ptr,
    T, E, N, n_tiles,
    HAS_D: tl.constexpr, HAS_H0: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_N: tl.constexpr, NUM_STAGES: tl.constexpr,
):  # fmt: skip
    pid_e, pid_b = tl.program_id(0).to(tl.int64), tl.program_id(1).to(tl.int64)  # offsets past 2^31
    B_size = tl.num_programs(1)
    e_E = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    n_N = tl.arange(0, BLOCK_N)
    e_ok_E, n_ok_N = e_E < E, n_N < N
    en_ok_EN = e_ok_E[:, None] & n_ok_N[None, :]
    en_off_EN = e_E[:, None] * N + n_N[None, :]
    A_EN = tl.load(A_ptr + en_off_EN, mask=en_ok_EN, other=0.0).to(tl.float32)
    if HAS_D:
        D_E = tl.load(D_ptr + e_E, mask=e_ok_E, other=0.0).to(tl.float32)
    state_base = pid_b * E * N + en_off_EN
    carry_EN = tl.load(dh_last_ptr + state_base, mask=en_ok_EN, other=0.0).to(tl.float32)  # G_T
    dA_EN = tl.zeros([BLOCK_E, BLOCK_N], dtype=tl.float32)
    dD_E = tl.zeros([BLOCK_E], dtype=tl.float32)
    rows_T = tl.arange(0, BLOCK_T)
    for i in tl.range(0, n_tiles, num_stages=NUM_STAGES):
        k = n_tiles - 1 - i
        t_T = k * BLOCK_T + rows_T
        ok_T = t_T < T
        te_off_TE = (pid_b * T + t_T[:, None]) * E + e_E[None, :]
        te_ok_TE = ok_T[:, None] & e_ok_E[None, :]
        tn_off_TN = (pid_b * T + t_T[:, None]) * N + n_N[None, :]
        tn_ok_TN = ok_T[:, None] & n_ok_N[None, :]
        x_TE = tl.load(x_ptr + te_off_TE, mask=te_ok_TE, other=0.0).to(tl.float32)
        dt_TE = tl.load(dt_ptr + te_off_TE, mask=te_ok_TE, other=0.0).to(tl.float32)
        dy_TE = tl.load(dy_ptr + te_off_TE, mask=te_ok_TE, other=0.0).to(tl.float32)
        next_ok_TE = (t_T + 1 < T)[:, None] & e_ok_E[None, :]  # dt_{t+1}; 0 past the end (decay 1)
        dt_next_TE = tl.load(dt_ptr + te_off_TE + E, mask=next_ok_TE, other=0.0).to(tl.float32)
        B_TN = tl.load(B_ptr + tn_off_TN, mask=tn_ok_TN, other=0.0).to(tl.float32)
        C_TN = tl.load(C_ptr + tn_off_TN, mask=tn_ok_TN, other=0.0).to(tl.float32)
        # the tile's states, recomputed from its saved start
        start_EN = tl.load(starts_ptr + (pid_b * n_tiles + k) * E * N + en_off_EN, mask=en_ok_EN, other=0.0)
        a_TEN = tl.exp(dt_TE[:, :, None] * A_EN[None, :, :])
        u_TEN = (dt_TE * x_TE)[:, :, None] * B_TN[:, None, :]
        decay_TEN, h_TEN = tl.associative_scan((a_TEN, u_TEN), 0, _combine)
        h_TEN = h_TEN + decay_TEN * start_EN[None, :, :]
        # G_t = C_t dy_t + a_{t+1} G_{t+1}, from the end of the tile
        a_next_TEN = tl.exp(dt_next_TE[:, :, None] * A_EN[None, :, :])
        decay_TEN, g_TEN = tl.associative_scan(
            (a_next_TEN, dy_TE[:, :, None] * C_TN[:, None, :]), 0, _combine, reverse=True
        )
        g_TEN = g_TEN + decay_TEN * carry_EN[None, :, :]
        carry_EN = tl.sum(tl.where((rows_T == 0)[:, None, None], g_TEN, 0.0), axis=0)
        dlog_a_TEN = g_TEN * (h_TEN - u_TEN)  # G_t a_t h_{t-1}
        gB_TE = tl.sum(g_TEN * B_TN[:, None, :], axis=2)  # sum_n G B: du/d(dt x)
        ddt_TE = tl.sum(dlog_a_TEN * A_EN[None, :, :], axis=2) + gB_TE * x_TE
        dx_TE = gB_TE * dt_TE
        if HAS_D:
            dx_TE += D_E[None, :] * dy_TE
            dD_E += tl.sum(dy_TE * x_TE, axis=0)
        tl.store(dx_ptr + te_off_TE, dx_TE, mask=te_ok_TE)
        tl.store(ddt_ptr + te_off_TE, ddt_TE, mask=te_ok_TE)
        dA_EN += tl.sum(dlog_a_TEN * dt_TE[:, :, None], axis=0)
        dB_TN = tl.sum(g_TEN * (dt_TE * x_TE)[:, :, None], axis=1)
        dC_TN = tl.sum(h_TEN * dy_TE[:, :, None], axis=1)
        part_off_TN = pid_e * B_size * T * N + tn_off_TN
        tl.store(dB_part_ptr + part_off_TN, dB_TN, mask=tn_ok_TN)
        tl.store(dC_part_ptr + part_off_TN, dC_TN, mask=tn_ok_TN)
    tl.store(dA_part_ptr + state_base, dA_EN, mask=en_ok_EN)
    if HAS_D:
        tl.store(dD_part_ptr + pid_b * E + e_E, dD_E, mask=e_ok_E)
    if HAS_H0:  # dh0 = a_0 G_0
        dt0_E = tl.load(dt_ptr + pid_b * T * E + e_E, mask=e_ok_E, other=0.0).to(tl.float32)
        tl.store(dh0_ptr + state_base, tl.exp(dt0_E[:, None] * A_EN) * carry_EN, mask=en_ok_EN)


def _blocks(chunk_size: int, E: int, N: int, T: int) -> tuple[int, int, int]:
    """Tile sizes: ``BLOCK_T`` from ``chunk_size`` (a power of two in [2, 32]), 16 channels and all of
    ``N`` per program: a ``[16, 16, 16]`` fp32 tile is 32 registers a thread per live tensor at 4 warps."""
    block_t = triton.next_power_of_2(max(2, min(chunk_size, 32, T)))  # no tile longer than the sequence
    block_e = min(16, triton.next_power_of_2(max(E, 1)))
    block_n = triton.next_power_of_2(max(N, 1))
    return block_t, block_e, block_n


class _SelectiveScanTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_BTE, dt_BTE, A_EN, B_BTN, C_BTN, D_E, h0_BEN, chunk_size):
        B, T, E = x_BTE.shape
        N = A_EN.shape[-1]
        x, dt, A, Bm, Cm = (t.contiguous() for t in (x_BTE, dt_BTE, A_EN, B_BTN, C_BTN))
        D = None if D_E is None else D_E.contiguous()
        h0 = None if h0_BEN is None else h0_BEN.contiguous()
        block_t, block_e, block_n = _blocks(chunk_size, E, N, T)
        n_tiles = triton.cdiv(T, block_t)
        device = x.device
        y_BTE = torch.empty(B, T, E, dtype=torch.float32, device=device)
        h_last_BEN = torch.empty(B, E, N, dtype=torch.float32, device=device)
        starts_BKEN = torch.empty(B, n_tiles, E, N, dtype=torch.float32, device=device)
        _selective_scan_fwd_kernel[(triton.cdiv(E, block_e), B)](
            x, dt, A, Bm, Cm, D if D is not None else A, h0 if h0 is not None else A,
            y_BTE, h_last_BEN, starts_BKEN,
            T, E, N, n_tiles,
            HAS_D=D is not None, HAS_H0=h0 is not None,
            BLOCK_T=block_t, BLOCK_E=block_e, BLOCK_N=block_n,
            NUM_STAGES=NUM_STAGES, num_warps=NUM_WARPS,
        )  # fmt: skip
        ctx.save_for_backward(x, dt, A, Bm, Cm, D, h0, starts_BKEN)
        ctx.blocks = (block_t, block_e, block_n)
        ctx.dtypes = tuple(
            None if t is None else t.dtype for t in (x_BTE, dt_BTE, A_EN, B_BTN, C_BTN, D_E, h0_BEN)
        )
        return y_BTE, h_last_BEN

    @staticmethod
    def backward(ctx, dy_BTE, dh_last_BEN):
        x, dt, A, Bm, Cm, D, h0, starts_BKEN = ctx.saved_tensors
        B, T, E = x.shape
        N = A.shape[-1]
        block_t, block_e, block_n = ctx.blocks
        n_tiles, n_eblocks = starts_BKEN.shape[1], triton.cdiv(E, block_e)
        f32 = {"dtype": torch.float32, "device": x.device}
        dy = torch.zeros(B, T, E, **f32) if dy_BTE is None else dy_BTE.contiguous()
        dh_last = torch.zeros(B, E, N, **f32) if dh_last_BEN is None else dh_last_BEN.contiguous()
        dx, ddt = torch.empty(B, T, E, **f32), torch.empty(B, T, E, **f32)
        dB_part, dC_part = torch.empty(n_eblocks, B, T, N, **f32), torch.empty(n_eblocks, B, T, N, **f32)
        dA_part, dD_part = torch.empty(B, E, N, **f32), torch.empty(B, E, **f32)
        dh0 = torch.empty(B, E, N, **f32) if h0 is not None else None
        if T == 0:  # nothing to scan: only the initial state gets a gradient
            zeros_BTN = torch.zeros(B, 0, N, **f32)
            grads = [dx, ddt, torch.zeros_like(dA_part[0]), zeros_BTN, zeros_BTN]
            grads += [
                None if D is None else torch.zeros_like(dD_part[0]),
                None if h0 is None else dh_last.clone(),
            ]
            return (*[g if g is None else g.to(d) for g, d in zip(grads, ctx.dtypes, strict=True)], None)
        _selective_scan_bwd_kernel[(n_eblocks, B)](
            x, dt, A, Bm, Cm, D if D is not None else A, starts_BKEN, dy, dh_last,
            dx, ddt, dB_part, dC_part, dA_part, dD_part, dh0 if dh0 is not None else dA_part,
            T, E, N, n_tiles,
            HAS_D=D is not None, HAS_H0=h0 is not None,
            BLOCK_T=block_t, BLOCK_E=block_e, BLOCK_N=block_n,
            NUM_STAGES=NUM_STAGES, num_warps=NUM_WARPS,
        )  # fmt: skip
        grads = [dx, ddt, dA_part.sum(0), dB_part.sum(0), dC_part.sum(0)]
        grads.append(None if D is None else dD_part.sum(0))
        grads.append(dh0)
        cast = [g if g is None else g.to(dtype) for g, dtype in zip(grads, ctx.dtypes, strict=True)]
        return (*cast, None)


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
    """Mamba's selective scan for all t: ``(y_BTE, h_last_BEN)`` in fp32 (Triton; same contract as
    ``kernels.selective_scan.selective_scan``). ``chunk_size`` sets the time tile (a power of two <= 32)."""
    if x_BTE.ndim != 3 or dt_BTE.shape != x_BTE.shape:
        raise ValueError(
            f"x and dt must both be [batch, time, channels], got {tuple(x_BTE.shape)}, {tuple(dt_BTE.shape)}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _SelectiveScanTriton.apply(x_BTE, dt_BTE, A_EN, B_BTN, C_BTN, D_E, h0_BEN, chunk_size)


__all__ = ["selective_scan"]
