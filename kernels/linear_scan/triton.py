"""Triton kernels for the diagonal linear recurrence ``h_t = exp(log_a_t) * h_{t-1} + b_t`` (the GPU path
of ``kernels.linear_scan``; same signature and results as ``chunk.linear_scan``).

Memory-bound, so the aim is one pass over the inputs. Each program owns ``BLOCK_N`` channels of one
sequence and walks time in tiles of ``BLOCK_T`` tokens: a tile's decays and inputs are loaded once, an
associative scan over time (combine ``(a1, h1), (a2, h2) -> (a1 a2, a2 h1 + h2)``) gives every
position's state from a zero start and the decay since the tile start, and the fp32 state carried in
registers from the previous tile is added as ``decay * carry``. Positions past ``T`` load ``a = 1,
b = 0``, so the tile's last row is always the state at the last real token.

Backward (the reverse recurrence, one pass from the end): ``G_t = dh_t + a_{t+1} G_{t+1}`` with
``G_{T-1}`` also receiving the final state's gradient, then ``db = G``, ``dlog_a_t = G_t a_t h_{t-1}``
(``h`` is the forward's output, saved), ``dh0 = a_0 G_0``.

Imported lazily by ``kernels.dispatch``; never import it from ``kernels/linear_scan/__init__.py``.
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
def _linear_scan_fwd_kernel(
    log_a_ptr, b_ptr, h0_ptr, h_ptr, h_last_ptr,
    T, N,
    sa_b, sa_t, sa_n,  # log_a strides (0 where it broadcasts)
    HAS_H0: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr, NUM_STAGES: tl.constexpr,
):  # fmt: skip
    pid_n, pid_b = tl.program_id(0), tl.program_id(1).to(tl.int64)  # int64: offsets past 2^31
    n_N = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok_N = n_N < N
    if HAS_H0:
        carry_N = tl.load(h0_ptr + pid_b * N + n_N, mask=n_ok_N, other=0.0).to(tl.float32)
    else:
        carry_N = tl.zeros([BLOCK_N], dtype=tl.float32)
    rows_T = tl.arange(0, BLOCK_T)
    for t0 in tl.range(0, T, BLOCK_T, num_stages=NUM_STAGES):
        t_T = t0 + rows_T
        ok_TN = (t_T < T)[:, None] & n_ok_N[None, :]
        la_TN = tl.load(
            log_a_ptr + pid_b * sa_b + t_T[:, None] * sa_t + n_N[None, :] * sa_n, mask=ok_TN, other=0.0
        ).to(tl.float32)
        bt_off_TN = (pid_b * T + t_T[:, None]) * N + n_N[None, :]
        b_TN = tl.load(b_ptr + bt_off_TN, mask=ok_TN, other=0.0).to(tl.float32)
        decay_TN, h_TN = tl.associative_scan((tl.exp(la_TN), b_TN), 0, _combine)
        h_TN = h_TN + decay_TN * carry_N[None, :]
        tl.store(h_ptr + bt_off_TN, h_TN, mask=ok_TN)
        carry_N = tl.sum(tl.where((rows_T == BLOCK_T - 1)[:, None], h_TN, 0.0), axis=0)
    tl.store(h_last_ptr + pid_b * N + n_N, carry_N, mask=n_ok_N)


@triton.jit
def _linear_scan_bwd_kernel(
    log_a_ptr, h0_ptr, h_ptr, dh_ptr, dh_last_ptr, db_ptr, dla_ptr, dh0_ptr,
    T, N,
    sa_b, sa_t, sa_n,
    HAS_H0: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr, NUM_STAGES: tl.constexpr,
):  # fmt: skip
    pid_n, pid_b = tl.program_id(0), tl.program_id(1).to(tl.int64)  # int64: offsets past 2^31
    n_N = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok_N = n_N < N
    carry_N = tl.load(dh_last_ptr + pid_b * N + n_N, mask=n_ok_N, other=0.0).to(tl.float32)  # G_T
    if HAS_H0:
        h0_N = tl.load(h0_ptr + pid_b * N + n_N, mask=n_ok_N, other=0.0).to(tl.float32)
    else:
        h0_N = tl.zeros([BLOCK_N], dtype=tl.float32)
    rows_T = tl.arange(0, BLOCK_T)
    la_base = log_a_ptr + pid_b * sa_b + n_N[None, :] * sa_n
    n_tiles = tl.cdiv(T, BLOCK_T)
    for i in tl.range(0, n_tiles, num_stages=NUM_STAGES):
        t_T = (n_tiles - 1 - i) * BLOCK_T + rows_T
        ok_T = t_T < T
        ok_TN = ok_T[:, None] & n_ok_N[None, :]
        la_TN = tl.load(la_base + t_T[:, None] * sa_t, mask=ok_TN, other=0.0).to(tl.float32)
        # a_{t+1}: 1 past the end, where G_T is the final state's gradient (the initial carry)
        next_ok_TN = (t_T + 1 < T)[:, None] & n_ok_N[None, :]
        la_next_TN = tl.load(la_base + (t_T[:, None] + 1) * sa_t, mask=next_ok_TN, other=0.0).to(tl.float32)
        bt_off_TN = (pid_b * T + t_T[:, None]) * N + n_N[None, :]
        dh_TN = tl.load(dh_ptr + bt_off_TN, mask=ok_TN, other=0.0).to(tl.float32)
        decay_TN, g_TN = tl.associative_scan((tl.exp(la_next_TN), dh_TN), 0, _combine, reverse=True)
        g_TN = g_TN + decay_TN * carry_N[None, :]
        prev_ok_TN = (ok_T & (t_T >= 1))[:, None] & n_ok_N[None, :]
        h_prev_TN = tl.load(h_ptr + bt_off_TN - N, mask=prev_ok_TN, other=0.0)
        h_prev_TN = tl.where((t_T == 0)[:, None], h0_N[None, :], h_prev_TN)
        tl.store(db_ptr + bt_off_TN, g_TN, mask=ok_TN)
        tl.store(dla_ptr + bt_off_TN, g_TN * tl.exp(la_TN) * h_prev_TN, mask=ok_TN)
        carry_N = tl.sum(tl.where((rows_T == 0)[:, None], g_TN, 0.0), axis=0)  # G at the tile start
    if HAS_H0:
        la0_N = tl.load(la_base, mask=n_ok_N[None, :], other=0.0)  # log a_0, [1, BLOCK_N]
        dh0_N = tl.sum(tl.exp(la0_N.to(tl.float32)), axis=0) * carry_N
        tl.store(dh0_ptr + pid_b * N + n_N, dh0_N, mask=n_ok_N)


def _blocks(chunk_size: int, N: int, T: int) -> tuple[int, int]:
    """Tile sizes: ``BLOCK_T`` from ``chunk_size`` (a power of two in [2, 128]); 32 channels per program
    (128 contiguous bytes of fp32 per row, and enough programs to fill the GPU at B * N / 32)."""
    block_t = triton.next_power_of_2(max(2, min(chunk_size, 128, T)))  # no tile longer than the sequence
    block_n = min(32, triton.next_power_of_2(max(N, 1)))
    return block_t, block_n


class _LinearScanTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, log_a, b_BTN, h0_BN, chunk_size):
        B, T, N = b_BTN.shape
        b_BTN = b_BTN.contiguous()
        log_a_BTN = log_a.expand(B, T, N)  # strides 0 where it broadcasts: nothing materialised
        h0c = None if h0_BN is None else h0_BN.contiguous()
        h_BTN = torch.empty(B, T, N, dtype=torch.float32, device=b_BTN.device)
        h_last_BN = torch.empty(B, N, dtype=torch.float32, device=b_BTN.device)
        block_t, block_n = _blocks(chunk_size, N, T)
        grid = (triton.cdiv(N, block_n), B)
        _linear_scan_fwd_kernel[grid](
            log_a_BTN, b_BTN, h0c if h0c is not None else h_last_BN, h_BTN, h_last_BN,
            T, N, *log_a_BTN.stride(),
            HAS_H0=h0c is not None, BLOCK_T=block_t, BLOCK_N=block_n,
            NUM_STAGES=NUM_STAGES, num_warps=NUM_WARPS,
        )  # fmt: skip
        if T == 0:  # the kernel's loop never ran: the final state is h0
            h_last_BN = h0c.float().clone() if h0c is not None else h_last_BN.zero_()
        ctx.save_for_backward(log_a, h_BTN, h0c)
        ctx.blocks, ctx.b_dtype = (block_t, block_n), b_BTN.dtype
        return h_BTN, h_last_BN

    @staticmethod
    def backward(ctx, dh_BTN, dh_last_BN):
        log_a, h_BTN, h0c = ctx.saved_tensors
        B, T, N = h_BTN.shape
        log_a_BTN = log_a.expand(B, T, N)
        dh_BTN = torch.zeros_like(h_BTN) if dh_BTN is None else dh_BTN.contiguous()
        dh_last_BN = h_BTN.new_zeros(B, N) if dh_last_BN is None else dh_last_BN.contiguous()
        db_BTN = torch.empty_like(h_BTN)
        dla_BTN = torch.empty_like(h_BTN)
        dh0_BN = torch.empty(B, N, dtype=torch.float32, device=h_BTN.device) if h0c is not None else None
        block_t, block_n = ctx.blocks
        _linear_scan_bwd_kernel[(triton.cdiv(N, block_n), B)](
            log_a_BTN, h0c if h0c is not None else dh_last_BN, h_BTN, dh_BTN, dh_last_BN,
            db_BTN, dla_BTN, dh0_BN if dh0_BN is not None else dh_last_BN,
            T, N, *log_a_BTN.stride(),
            HAS_H0=h0c is not None, BLOCK_T=block_t, BLOCK_N=block_n,
            NUM_STAGES=NUM_STAGES, num_warps=NUM_WARPS,
        )  # fmt: skip
        if T == 0 and dh0_BN is not None:
            dh0_BN = dh_last_BN.clone()
        dlog_a = dla_BTN.sum_to_size(log_a.shape).to(log_a.dtype)
        return (
            dlog_a,
            db_BTN.to(ctx.b_dtype),
            None if dh0_BN is None else dh0_BN.to(h0c.dtype),
            None,
        )


def linear_scan(
    log_a: torch.Tensor, b_BTN: torch.Tensor, h0_BN: torch.Tensor | None = None, *, chunk_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """``h_t = exp(log_a_t) * h_{t-1} + b_t`` for all t: ``(h_BTN, h_last_BN)`` in fp32 (Triton).

    Same contract as ``kernels.linear_scan.linear_scan``: ``log_a`` (``<= 0``) broadcasts against
    ``b_BTN`` (``[B, T, N]``) and its gradient comes back at its own shape; ``h0_BN`` is the state before
    the first token (zeros when None). ``chunk_size`` sets the time tile (rounded to a power of two).
    """
    if b_BTN.ndim != 3:
        raise ValueError(f"b must be [batch, time, channels], got shape {tuple(b_BTN.shape)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _LinearScanTriton.apply(log_a, b_BTN, h0_BN, chunk_size)


__all__ = ["linear_scan"]
