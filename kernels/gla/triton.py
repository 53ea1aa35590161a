"""Triton form of :func:`kernels.gla.chunk.chunk_gla` (same signature, results and gradients), for CUDA
tensors, or on CPU under the Triton interpreter (``TRITON_INTERPRET=1``, set before this module is
imported). Imported lazily by ``kernels.dispatch``: nothing else imports triton.

One program per (value block, key block, batch x head) walks the chunks in order with its ``[BK, BV]``
fp32 block of the state in registers (read the state, add the intra-chunk pairs, carry); every sum over
key channels is linear, so the key blocks' partial outputs are added afterwards. Within a chunk, with
``L`` the cumulative log decay from the chunk start and ``Lq`` the decay the query sees (``L``, or
``L - g`` with the RWKV-6 bonus)::

    o_i = (q_i * exp(Lq_i)) S + sum_{j <= i} [sum_k q_ik k_jk exp(Lq_ik - L_jk)] v_j
    S  <- exp(L_C) S + sum_j (k_j * exp(L_C - L_j)) v_j^T

Every exponent is a sum of log decays over a stretch of tokens (``<= 0``), so no decay strength can
overflow. Per head, the pair factor is one ``C x C`` matrix (one ``tl.dot``); per key channel it is
computed exactly in log space as a ``[C, C, BK]`` block (no split factors, hence no data-dependent regimes
as in chunk.py), which is why the per-channel path uses ``sub_chunk_size`` tokens per chunk.

Backward (one kernel, two passes over the chunks per program): forward again for
``dq = exp(Lq) (S dO) + intra``, then in reverse with the state gradient ``dS`` carried from the end for
``dk``, ``dv`` and the initial-state gradient. The log-decay gradient needs no kernel: with
``dLq = q * dq`` and ``dL = -k * dk`` (their state parts), ``dg_t`` is the reverse cumulative sum of
``dLq + dL`` (minus ``dLq_t`` when the read is exclusive) plus ``sum_v dS_T * S_T`` from the final state.
The bonus term ``(q_i . (u * k_i)) v_i`` is elementwise: its gradients are added in PyTorch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["chunk_gla"]


@triton.jit
def _load_chunk(ptr, base, t0, T, stride_t, offs_t, offs_c, n_c):
    """``[BT, BC]`` fp32 block of a ``[B, T, H, n_c]`` tensor (zeros past T and past n_c)."""
    t = t0 + offs_t
    mask = (t[:, None] < T) & (offs_c[None, :] < n_c)
    return tl.load(ptr + base + t[:, None] * stride_t + offs_c[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _decays(g_ptr, i_b, i_h, t0, T, H, K, offs_t, offs_k, PER_CHANNEL: tl.constexpr, EXCLUSIVE: tl.constexpr):
    """``(L, Lq, L_last)`` of one chunk: ``[BT, BK]``, ``[BT, BK]``, ``[BK]`` per channel;
    ``[BT, 1]``, ``[BT, 1]``, ``[1]`` per head."""
    t = t0 + offs_t
    if PER_CHANNEL:
        g = _load_chunk(g_ptr, (i_b * T * H + i_h) * K, t0, T, H * K, offs_t, offs_k, K)
    else:
        g = tl.load(g_ptr + (i_b * T + t) * H + i_h, mask=t < T, other=0.0).to(tl.float32)[:, None]
    L = tl.cumsum(g, axis=0)
    Lq = L - g if EXCLUSIVE else L
    L_last = tl.sum(g, axis=0)
    return L, Lq, L_last


@triton.jit
def _pair_scores(a, b, La, Lb, causal, PER_CHANNEL: tl.constexpr, PRECISION: tl.constexpr):
    """``P_ij = sum_k a_ik b_jk exp(La_ik - Lb_jk)`` on the causal pairs (0 elsewhere). Exponents of
    non-causal pairs are capped at 0 before exp, so nothing overflows."""
    if PER_CHANNEL:
        exponent = La[:, None, :] - Lb[None, :, :]
        factor = tl.exp(tl.minimum(exponent, 0.0))
        P = tl.sum(a[:, None, :] * b[None, :, :] * factor, axis=2)
    else:
        D = tl.exp(tl.minimum(La - tl.trans(Lb), 0.0))
        P = tl.dot(a, tl.trans(b), input_precision=PRECISION) * D
    return tl.where(causal, P, 0.0)


# Sizes and flags are plain runtime arguments (not specialised on their values): every compiled variant
# costs tens of seconds, and the kernels gain nothing from knowing T, H or whether a state was given.
@triton.jit(do_not_specialize=["B", "T", "H", "K", "V", "has_s0"])
def _gla_fwd_kernel(
    q_ptr, k_ptr, v_ptr, g_ptr, u_ptr, s0_ptr, o_ptr, sT_ptr,
    B, T, H, K, V, has_s0,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PER_CHANNEL: tl.constexpr, EXCLUSIVE: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    i_v, i_k, i_bh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b, i_h = (i_bh // H).to(tl.int64), i_bh % H
    offs_t, offs_k = tl.arange(0, BT), i_k * BK + tl.arange(0, BK)
    offs_v = i_v * BV + tl.arange(0, BV)
    base_k, base_v = (i_b * T * H + i_h) * K, (i_b * T * H + i_h) * V
    part_v = i_k.to(tl.int64) * B * T * H * V + base_v
    s_offs = (i_bh * K + offs_k[:, None]).to(tl.int64) * V + offs_v[None, :]
    s_mask = (offs_k[:, None] < K) & (offs_v[None, :] < V)
    s0_mask = (offs_k[:, None] < K * has_s0) & (offs_v[None, :] < V)  # none without an initial state
    S = tl.load(s0_ptr + s_offs, mask=s0_mask, other=0.0).to(tl.float32)
    if EXCLUSIVE:
        u = tl.load(u_ptr + i_h * K + offs_k, mask=offs_k < K, other=0.0).to(tl.float32)
        causal = offs_t[:, None] > offs_t[None, :]
    else:
        causal = offs_t[:, None] >= offs_t[None, :]
    for t0 in range(0, T, BT):
        q = _load_chunk(q_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
        k = _load_chunk(k_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
        v = _load_chunk(v_ptr, base_v, t0, T, H * V, offs_t, offs_v, V)
        L, Lq, L_last = _decays(g_ptr, i_b, i_h, t0, T, H, K, offs_t, offs_k, PER_CHANNEL, EXCLUSIVE)
        o = tl.dot(q * tl.exp(Lq), S, input_precision=PRECISION)
        A = _pair_scores(q, k, Lq, L, causal, PER_CHANNEL, PRECISION)
        o += tl.dot(A, v, input_precision=PRECISION)
        if EXCLUSIVE:
            o += tl.sum(q * u[None, :] * k, axis=1)[:, None] * v
        t = t0 + offs_t
        o_mask = (t[:, None] < T) & (offs_v[None, :] < V)
        tl.store(o_ptr + part_v + t[:, None] * H * V + offs_v[None, :], o, mask=o_mask)
        k_to_end = k * tl.exp(L_last[None, :] - L)
        S = S * tl.exp(L_last)[:, None] + tl.dot(tl.trans(k_to_end), v, input_precision=PRECISION)
    tl.store(sT_ptr + s_offs, S, mask=s_mask)


@triton.jit(do_not_specialize=["B", "T", "H", "K", "V", "has_s0"])
def _gla_bwd_kernel(
    q_ptr, k_ptr, v_ptr, g_ptr, s0_ptr, do_ptr, dsT_ptr, dq_ptr, dk_ptr, dv_ptr, ds0_ptr,
    B, T, H, K, V, has_s0,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PER_CHANNEL: tl.constexpr, EXCLUSIVE: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """``dq``, ``dk`` (state parts, one partial sum per value block: ``[NV, B, T, H, K]``), ``dv`` (one
    partial sum per key block: ``[NK, B, T, H, V]``) and the initial-state gradient ``ds0``."""
    i_v, i_k, i_bh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b, i_h = (i_bh // H).to(tl.int64), i_bh % H
    offs_t, offs_k = tl.arange(0, BT), i_k * BK + tl.arange(0, BK)
    offs_v = i_v * BV + tl.arange(0, BV)
    base_k, base_v = (i_b * T * H + i_h) * K, (i_b * T * H + i_h) * V
    base_part = i_v.to(tl.int64) * B * T * H * K + base_k
    part_v = i_k.to(tl.int64) * B * T * H * V + base_v
    s_offs = (i_bh * K + offs_k[:, None]).to(tl.int64) * V + offs_v[None, :]
    s_mask = (offs_k[:, None] < K) & (offs_v[None, :] < V)
    s0_mask = (offs_k[:, None] < K * has_s0) & (offs_v[None, :] < V)  # none without an initial state
    if EXCLUSIVE:
        causal = offs_t[:, None] > offs_t[None, :]
    else:
        causal = offs_t[:, None] >= offs_t[None, :]

    # pass 1, forward: the state entering each chunk gives dq
    S = tl.load(s0_ptr + s_offs, mask=s0_mask, other=0.0).to(tl.float32)
    for t0 in range(0, T, BT):
        q = _load_chunk(q_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
        k = _load_chunk(k_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
        v = _load_chunk(v_ptr, base_v, t0, T, H * V, offs_t, offs_v, V)
        do = _load_chunk(do_ptr, base_v, t0, T, H * V, offs_t, offs_v, V)
        L, Lq, L_last = _decays(g_ptr, i_b, i_h, t0, T, H, K, offs_t, offs_k, PER_CHANNEL, EXCLUSIVE)
        dq = tl.dot(do, tl.trans(S), input_precision=PRECISION) * tl.exp(Lq)
        # dO_i . v_j on the causal pairs, spread back over the key channels with the pair decay
        Adv = tl.where(causal, tl.dot(do, tl.trans(v), input_precision=PRECISION), 0.0)
        if PER_CHANNEL:
            factor = tl.exp(tl.minimum(Lq[:, None, :] - L[None, :, :], 0.0))
            dq += tl.sum(Adv[:, :, None] * k[None, :, :] * factor, axis=1)
        else:
            D = tl.exp(tl.minimum(Lq - tl.trans(L), 0.0))
            dq += tl.dot(Adv * D, k, input_precision=PRECISION)
        t = t0 + offs_t
        k_mask = (t[:, None] < T) & (offs_k[None, :] < K)
        tl.store(dq_ptr + base_part + t[:, None] * H * K + offs_k[None, :], dq, mask=k_mask)
        k_to_end = k * tl.exp(L_last[None, :] - L)
        S = S * tl.exp(L_last)[:, None] + tl.dot(tl.trans(k_to_end), v, input_precision=PRECISION)

    # pass 2, reverse: dS (gradient of the state leaving each chunk) gives dk, dv and ds0
    dS = tl.load(dsT_ptr + s_offs, mask=s_mask, other=0.0).to(tl.float32)
    n_chunks = tl.cdiv(T, BT)
    for i_n in range(0, n_chunks):
        t0 = (n_chunks - 1 - i_n) * BT
        q = _load_chunk(q_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
        k = _load_chunk(k_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
        v = _load_chunk(v_ptr, base_v, t0, T, H * V, offs_t, offs_v, V)
        do = _load_chunk(do_ptr, base_v, t0, T, H * V, offs_t, offs_v, V)
        L, Lq, L_last = _decays(g_ptr, i_b, i_h, t0, T, H, K, offs_t, offs_k, PER_CHANNEL, EXCLUSIVE)
        k_to_end = k * tl.exp(L_last[None, :] - L)
        # dk_j = exp(L_C - L_j) (dS v_j) + sum_{i >= j} exp(Lq_i - L_j) q_i (dO_i . v_j)
        dk = tl.dot(v, tl.trans(dS), input_precision=PRECISION) * tl.exp(L_last[None, :] - L)
        Adv = tl.where(causal, tl.dot(do, tl.trans(v), input_precision=PRECISION), 0.0)
        if PER_CHANNEL:
            factor = tl.exp(tl.minimum(Lq[:, None, :] - L[None, :, :], 0.0))
            dk += tl.sum(Adv[:, :, None] * q[:, None, :] * factor, axis=0)
        else:
            D = tl.exp(tl.minimum(Lq - tl.trans(L), 0.0))
            dk += tl.dot(tl.trans(Adv * D), q, input_precision=PRECISION)
        # dv_j = dS^T (k_j exp(L_C - L_j)) + sum_{i >= j} A_ij dO_i
        A = _pair_scores(q, k, Lq, L, causal, PER_CHANNEL, PRECISION)
        dv = tl.dot(k_to_end, dS, input_precision=PRECISION) + tl.dot(
            tl.trans(A), do, input_precision=PRECISION
        )
        t = t0 + offs_t
        k_mask = (t[:, None] < T) & (offs_k[None, :] < K)
        v_mask = (t[:, None] < T) & (offs_v[None, :] < V)
        tl.store(dk_ptr + base_part + t[:, None] * H * K + offs_k[None, :], dk, mask=k_mask)
        tl.store(dv_ptr + part_v + t[:, None] * H * V + offs_v[None, :], dv, mask=v_mask)
        dS = dS * tl.exp(L_last)[:, None] + tl.dot(tl.trans(q * tl.exp(Lq)), do, input_precision=PRECISION)
    tl.store(ds0_ptr + s_offs, dS, mask=s0_mask)


def _block(n: int) -> int:
    """Power-of-two block covering ``n``, at least 16 (``tl.dot``'s smallest tile)."""
    return max(16, triton.next_power_of_2(n))


def _tile_sizes(
    K: int, V: int, chunk: int, key_block: int | None, value_block: int | None
) -> tuple[int, int, int, int, int]:
    """``(BT, BK, BV, NK, NV)``: key and value blocks of at most 64 by default (programs split the state
    ``[K, V]`` into blocks; the per-channel pair block is ``[BT, BT, BK]``)."""
    for name, block in (("key_block", key_block), ("value_block", value_block)):
        if block is not None and (block < 16 or block & (block - 1)):
            raise ValueError(f"{name} must be a power of two of at least 16, got {block}")
    BK = key_block if key_block is not None else min(_block(K), 64)
    BV = value_block if value_block is not None else min(_block(V), 64)
    # any chunk length gives the same result: round up to a power of two (tl.arange), at least 16 (tl.dot)
    return _block(chunk), BK, BV, triton.cdiv(K, BK), triton.cdiv(V, BV)


def _precision(*tensors: torch.Tensor) -> str:
    # fp32 inputs get exact fp32 products (the tests' 5e-3 rel. RMS); bf16 inputs lose nothing to tf32
    return "ieee" if all(t.dtype == torch.float32 for t in tensors) else "tf32"


class _ChunkGLA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, g, u, initial_state, chunk, key_block, value_block):
        B, T, H, K = q.shape
        V = v.shape[-1]
        BT, BK, BV, NK, NV = _tile_sizes(K, V, chunk, key_block, value_block)
        q, k, v, g = (x.contiguous() for x in (q, k, v, g))
        s0 = initial_state.contiguous() if initial_state is not None else None
        # one partial output per key block (written directly when there is one)
        o = torch.empty(NK, B, T, H, V, device=q.device, dtype=v.dtype if NK == 1 else torch.float32)
        sT = torch.empty(B, H, K, V, device=q.device, dtype=torch.float32)
        per_channel, exclusive = g.ndim == 4, u is not None
        precision = _precision(q, k, v)
        _gla_fwd_kernel[(NV, NK, B * H)](
            q, k, v, g, u.contiguous() if exclusive else q, s0 if s0 is not None else q, o, sT,
            B, T, H, K, V, int(s0 is not None), BT=BT, BK=BK, BV=BV,
            PER_CHANNEL=per_channel, EXCLUSIVE=exclusive, PRECISION=precision,
        )  # fmt: skip
        ctx.save_for_backward(q, k, v, g, u, s0, sT)
        ctx.tiles = (BT, BK, BV, NK, NV, precision)
        return (o[0] if NK == 1 else o.sum(0).to(v.dtype)), sT

    @staticmethod
    def backward(ctx, do, dsT):
        q, k, v, g, u, s0, sT = ctx.saved_tensors
        BT, BK, BV, NK, NV, precision = ctx.tiles
        B, T, H, K = q.shape
        V = v.shape[-1]
        per_channel, exclusive = g.ndim == 4, u is not None
        do = do.contiguous() if do is not None else torch.zeros_like(v)
        dsT = dsT.float().contiguous() if dsT is not None else torch.zeros_like(sT)
        dq_parts = torch.empty(NV, B, T, H, K, device=q.device, dtype=torch.float32)
        dk_parts = torch.empty_like(dq_parts)
        dv_parts = torch.empty(NK, B, T, H, V, device=q.device, dtype=torch.float32)
        ds0 = torch.empty(B, H, K, V, device=q.device, dtype=torch.float32) if s0 is not None else None
        _gla_bwd_kernel[(NV, NK, B * H)](
            q, k, v, g, s0 if s0 is not None else q, do, dsT, dq_parts, dk_parts, dv_parts,
            ds0 if ds0 is not None else dv_parts,
            B, T, H, K, V, int(s0 is not None), BT=BT, BK=BK, BV=BV,
            PER_CHANNEL=per_channel, EXCLUSIVE=exclusive, PRECISION=precision,
        )  # fmt: skip
        dq, dk, dv = dq_parts.sum(0), dk_parts.sum(0), dv_parts.sum(0)
        qf, kf = q.float(), k.float()
        dLq, dL = qf * dq, -kf * dk
        dg = (dLq + dL).flip(1).cumsum(1).flip(1)
        if exclusive:
            dg = dg - dLq
        dg = dg + (dsT * sT).sum(-1)[:, None]  # the final state's decay, shared by every token
        if not per_channel:
            dg = dg.sum(-1)
        du = None
        if exclusive:  # the bonus (q_i . (u * k_i)) v_i
            uf = u.float()
            do_v = (do.float() * v.float()).sum(-1, keepdim=True)
            dq = dq + uf * kf * do_v
            dk = dk + uf * qf * do_v
            dv = dv + (qf * uf * kf).sum(-1, keepdim=True) * do.float()
            du = (qf * kf * do_v).sum((0, 1)).to(u.dtype)
        return (
            dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), dg.to(g.dtype), du,
            ds0.to(s0.dtype) if ds0 is not None else None, None, None, None,
        )  # fmt: skip


def chunk_gla(
    q_BTHK: torch.Tensor,
    k_BTHK: torch.Tensor,
    v_BTHV: torch.Tensor,
    g: torch.Tensor,
    u_HK: torch.Tensor | None = None,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
    sub_chunk_size: int = 16,
    key_block: int | None = None,
    value_block: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked gated linear attention in Triton: ``(o_BTHV in v's dtype, final S_BHKV fp32)``, as
    :func:`kernels.gla.chunk.chunk_gla`.

    Per-head decays use chunks of ``chunk_size`` tokens, per-channel decays ``sub_chunk_size`` (their
    pair block is ``[C, C, K]``). Other lengths than powers of two of at least 16 (``tl.arange``,
    ``tl.dot``'s smallest tile) are rounded up to one: the result does not depend on the chunk length.
    ``key_block``, ``value_block``: state rows and columns per program (powers of two of at least 16;
    default ``min(K, 64)`` and ``min(V, 64)`` rounded up; outputs and gradients that sum over the other
    dimension are summed over programs afterwards).
    """
    if g.ndim not in (3, 4):
        raise ValueError(f"g must be [B, T, H] or [B, T, H, K], got shape {tuple(g.shape)}")
    for name, value in (("chunk_size", chunk_size), ("sub_chunk_size", sub_chunk_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    chunk = sub_chunk_size if g.ndim == 4 else chunk_size
    return _ChunkGLA.apply(q_BTHK, k_BTHK, v_BTHV, g, u_HK, initial_state, chunk, key_block, value_block)
