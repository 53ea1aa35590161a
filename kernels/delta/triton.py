"""Triton form of :func:`kernels.delta.chunk.chunk_gated_delta_rule` (same signature, results and
gradients), for CUDA tensors, or on CPU under the Triton interpreter (``TRITON_INTERPRET=1``, set before
triton is imported). Imported lazily by ``kernels.dispatch``: nothing else imports triton.

One program per (value block, batch x head) walks the chunks with its ``[K, BV]`` fp32 state in registers
(the delta rule's value columns evolve independently, so value blocks need no communication). Per chunk,
with ``G`` the cumulative log decay from the chunk start, ``D_ij = exp(G_i - G_j)`` and the entering state
``S`` (the UT transform of chunk.py, with the state folded into the right-hand side)::

    A = strict_lower(diag(beta) (K K^T) * D)          T = (I + A)^-1   (forward substitution, C steps)
    R = diag(beta) (V - diag(exp(G)) K S)            U = T R
    O = diag(exp(G)) Q S + (lower(Q K^T) * D) U
    S <- exp(G_C) S + (K * exp(G_C - G))^T U

Backward: a forward pass stores the state entering each chunk (``[B, H, N, K, V]`` fp32), then a reverse
pass carries the state gradient and differentiates the lines above (``dR = T^T dU``, ``dA = -dR U^T``...).
The log-decay gradient is accumulated per position of ``G`` and turned into ``dg`` by a reverse cumulative
sum inside each chunk. Gradients that sum over value columns (``dq``, ``dk``, ``dbeta``, ``dg``) are written
once per value block and summed in PyTorch. All exponents are ``<= 0``: no decay strength can overflow.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["chunk_gated_delta_rule", "chunk_generalized_delta_rule"]

# The generalised rule's pair factors are computed per channel as [C, C, K] register blocks: beyond 16
# tokens per chunk they would spill (e.g. 32 x 32 x 64 fp32 = 256 KiB per program), so larger chunk sizes
# run as 16 (the result does not depend on the chunk length).
PAIR_CHUNK_MAX = 16


@triton.jit
def _load_chunk(ptr, base, t0, T, stride_t, offs_t, offs_c, n_c):
    """``[BT, BC]`` fp32 block of a ``[B, T, H, n_c]`` tensor (zeros past T and past n_c)."""
    t = t0 + offs_t
    mask = (t[:, None] < T) & (offs_c[None, :] < n_c)
    return tl.load(ptr + base + t[:, None] * stride_t + offs_c[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _load_heads(ptr, i_b, i_h, t0, T, H, offs_t):
    """``[BT]`` fp32 slice of a ``[B, T, H]`` tensor (zeros past T: no decay, no write)."""
    t = t0 + offs_t
    return tl.load(ptr + (i_b * T + t) * H + i_h, mask=t < T, other=0.0).to(tl.float32)


@triton.jit
def _unit_lower_inverse(A, BT: tl.constexpr):
    """``(I + A)^-1`` for strictly lower-triangular ``A`` by forward substitution:
    ``T_i = e_i - sum_{j < i} A_ij T_j``, one row per step."""
    rows = tl.arange(0, BT)
    Tm = tl.where(rows[:, None] == rows[None, :], 1.0, 0.0)
    for i in range(1, BT):
        a_i = tl.sum(tl.where(rows[:, None] == i, A, 0.0), axis=0)
        t_i = tl.sum(a_i[:, None] * Tm, axis=0)
        Tm = tl.where(rows[:, None] == i, Tm - t_i[None, :], Tm)
    return Tm


@triton.jit
def _chunk_terms(q, k, g, beta, BT: tl.constexpr, PRECISION: tl.constexpr):
    """The state-independent parts of a chunk: ``G, G_C, D, A, T, lower(Q K^T) * D``."""
    offs_t = tl.arange(0, BT)
    G = tl.cumsum(g, axis=0)
    G_C = tl.sum(g, axis=0)
    strict = offs_t[:, None] > offs_t[None, :]
    D = tl.exp(tl.minimum(G[:, None] - G[None, :], 0.0))
    kk = tl.dot(k, tl.trans(k), input_precision=PRECISION)
    A = tl.where(strict, beta[:, None] * kk * D, 0.0)
    Tm = _unit_lower_inverse(A, BT)
    Qm = tl.where(
        offs_t[:, None] >= offs_t[None, :], tl.dot(q, tl.trans(k), input_precision=PRECISION) * D, 0.0
    )
    return G, G_C, D, kk, A, Tm, Qm


# Sizes and flags are plain runtime arguments (not specialised on their values): every compiled variant
# costs tens of seconds, and the kernels gain nothing from knowing T, H or whether a state was given.
@triton.jit(do_not_specialize=["T", "H", "K", "V", "has_s0", "store_chunks"])
def _gdr_fwd_kernel(
    q_ptr, k_ptr, v_ptr, g_ptr, beta_ptr, s0_ptr, o_ptr, sT_ptr, s_chunks_ptr,
    T, H, K, V, has_s0, store_chunks,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """Outputs and the final state; with ``store_chunks`` (the backward's first pass) the state entering
    every chunk, ``[B, H, N, K, V]``, instead of the outputs."""
    i_v, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = (i_bh // H).to(tl.int64), i_bh % H
    offs_t, offs_k = tl.arange(0, BT), tl.arange(0, BK)
    offs_v = i_v * BV + tl.arange(0, BV)
    base_k, base_v = (i_b * T * H + i_h) * K, (i_b * T * H + i_h) * V
    s_offs = offs_k[:, None] * V + offs_v[None, :]
    s_mask = (offs_k[:, None] < K) & (offs_v[None, :] < V)
    s0_mask = (offs_k[:, None] < K * has_s0) & (offs_v[None, :] < V)  # none without an initial state
    n_chunks = tl.cdiv(T, BT)
    S = tl.load(s0_ptr + i_bh.to(tl.int64) * K * V + s_offs, mask=s0_mask, other=0.0).to(tl.float32)
    for i_n in range(0, n_chunks):
        t0 = i_n * BT
        q = _load_chunk(q_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
        k = _load_chunk(k_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
        v = _load_chunk(v_ptr, base_v, t0, T, H * V, offs_t, offs_v, V)
        g = _load_heads(g_ptr, i_b, i_h, t0, T, H, offs_t)
        beta = _load_heads(beta_ptr, i_b, i_h, t0, T, H, offs_t)
        G, G_C, D, kk, A, Tm, Qm = _chunk_terms(q, k, g, beta, BT, PRECISION)
        kS = tl.dot(k, S, input_precision=PRECISION)
        R = beta[:, None] * (v - tl.exp(G)[:, None] * kS)
        U = tl.dot(Tm, R, input_precision=PRECISION)
        if store_chunks != 0:
            chunk_base = (i_bh.to(tl.int64) * n_chunks + i_n) * K * V
            tl.store(s_chunks_ptr + chunk_base + s_offs, S, mask=s_mask)
        else:
            o = tl.exp(G)[:, None] * tl.dot(q, S, input_precision=PRECISION)
            o += tl.dot(Qm, U, input_precision=PRECISION)
            t = t0 + offs_t
            o_mask = (t[:, None] < T) & (offs_v[None, :] < V)
            tl.store(o_ptr + base_v + t[:, None] * H * V + offs_v[None, :], o, mask=o_mask)
        k_end = k * tl.exp(G_C - G)[:, None]
        S = tl.exp(G_C) * S + tl.dot(tl.trans(k_end), U, input_precision=PRECISION)
    tl.store(sT_ptr + i_bh.to(tl.int64) * K * V + s_offs, S, mask=s_mask)


@triton.jit(do_not_specialize=["B", "T", "H", "K", "V", "has_s0"])
def _gdr_bwd_kernel(
    q_ptr, k_ptr, v_ptr, g_ptr, beta_ptr, s_chunks_ptr, do_ptr, dsT_ptr,
    dq_ptr, dk_ptr, dv_ptr, dg_ptr, dbeta_ptr, ds0_ptr,
    B, T, H, K, V, has_s0,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """Reverse pass: ``dv`` and ``ds0`` complete; ``dq, dk`` ``[NV, B, T, H, K]`` and ``dg, dbeta``
    ``[NV, B, T, H]`` as partial sums over value blocks."""
    i_v, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = (i_bh // H).to(tl.int64), i_bh % H
    offs_t, offs_k = tl.arange(0, BT), tl.arange(0, BK)
    offs_v = i_v * BV + tl.arange(0, BV)
    base_k, base_v = (i_b * T * H + i_h) * K, (i_b * T * H + i_h) * V
    part_k = i_v.to(tl.int64) * B * T * H * K + base_k
    part_h = i_v.to(tl.int64) * B * T * H + i_b * T * H + i_h
    s_offs = offs_k[:, None] * V + offs_v[None, :]
    s_mask = (offs_k[:, None] < K) & (offs_v[None, :] < V)
    s0_mask = (offs_k[:, None] < K * has_s0) & (offs_v[None, :] < V)  # none without an initial state
    strict = offs_t[:, None] > offs_t[None, :]
    lower = offs_t[:, None] >= offs_t[None, :]
    n_chunks = tl.cdiv(T, BT)
    dS = tl.load(dsT_ptr + i_bh.to(tl.int64) * K * V + s_offs, mask=s_mask, other=0.0).to(tl.float32)
    for i_n in range(0, n_chunks):
        n = n_chunks - 1 - i_n
        t0 = n * BT
        q = _load_chunk(q_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
        k = _load_chunk(k_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
        v = _load_chunk(v_ptr, base_v, t0, T, H * V, offs_t, offs_v, V)
        do = _load_chunk(do_ptr, base_v, t0, T, H * V, offs_t, offs_v, V)
        g = _load_heads(g_ptr, i_b, i_h, t0, T, H, offs_t)
        beta = _load_heads(beta_ptr, i_b, i_h, t0, T, H, offs_t)
        chunk_base = (i_bh.to(tl.int64) * n_chunks + n) * K * V
        S = tl.load(s_chunks_ptr + chunk_base + s_offs, mask=s_mask, other=0.0)
        # recompute the chunk
        G, G_C, D, kk, A, Tm, Qm = _chunk_terms(q, k, g, beta, BT, PRECISION)
        eG = tl.exp(G)
        kS = tl.dot(k, S, input_precision=PRECISION)
        rhs = v - eG[:, None] * kS
        U = tl.dot(Tm, beta[:, None] * rhs, input_precision=PRECISION)
        to_end = tl.exp(G_C - G)
        k_end = k * to_end[:, None]
        # through O = diag(exp G) Q S + Qm U and S' = exp(G_C) S + k_end^T U
        dU = tl.dot(tl.trans(Qm), do, input_precision=PRECISION) + tl.dot(
            k_end, dS, input_precision=PRECISION
        )
        dR = tl.dot(tl.trans(Tm), dU, input_precision=PRECISION)  # U = T R
        dv = beta[:, None] * dR
        dbeta = tl.sum(dR * rhs, axis=1)
        dkS = -(beta * eG)[:, None] * dR  # R = diag(beta) (V - diag(exp G) kS)
        dA = tl.where(strict, -tl.dot(dR, tl.trans(U), input_precision=PRECISION), 0.0)
        dQm = tl.where(lower, tl.dot(do, tl.trans(U), input_precision=PRECISION), 0.0)
        qS_do = tl.sum(tl.dot(q, S, input_precision=PRECISION) * do, axis=1)
        dq = eG[:, None] * tl.dot(do, tl.trans(S), input_precision=PRECISION)
        dq += tl.dot(dQm * D, k, input_precision=PRECISION)
        dk = tl.dot(tl.trans(dQm * D), q, input_precision=PRECISION)
        U_dS = tl.dot(U, tl.trans(dS), input_precision=PRECISION)  # [BT, BK]
        dk += to_end[:, None] * U_dS
        dk += tl.dot(dkS, tl.trans(S), input_precision=PRECISION)
        dkk = dA * beta[:, None] * D  # A = strict(diag(beta) K K^T * D)
        dk += tl.dot(dkk, k, input_precision=PRECISION) + tl.dot(tl.trans(dkk), k, input_precision=PRECISION)
        dbeta += tl.sum(dA * kk * D, axis=1)
        # gradient per position of G (the cumulative decay), then dg = reverse cumsum within the chunk
        X = dQm * Qm
        Y = dA * A
        Z = tl.sum(k_end * U_dS, axis=1)
        dG = eG * qS_do + tl.sum(X, axis=1) - tl.sum(X, axis=0) + tl.sum(Y, axis=1) - tl.sum(Y, axis=0)
        dG += tl.sum(dkS * kS, axis=1) - Z
        dG_C = tl.sum(Z, axis=0) + tl.exp(G_C) * tl.sum(tl.sum(dS * S, axis=1), axis=0)
        dG += tl.where(offs_t == BT - 1, dG_C, 0.0)
        dg = tl.sum(dG, axis=0) - tl.cumsum(dG, axis=0) + dG
        # the state gradient entering the chunk
        dS = tl.exp(G_C) * dS + tl.dot(tl.trans(q * eG[:, None]), do, input_precision=PRECISION)
        dS += tl.dot(tl.trans(k), dkS, input_precision=PRECISION)
        t = t0 + offs_t
        k_mask = (t[:, None] < T) & (offs_k[None, :] < K)
        v_mask = (t[:, None] < T) & (offs_v[None, :] < V)
        tl.store(dq_ptr + part_k + t[:, None] * H * K + offs_k[None, :], dq, mask=k_mask)
        tl.store(dk_ptr + part_k + t[:, None] * H * K + offs_k[None, :], dk, mask=k_mask)
        tl.store(dv_ptr + base_v + t[:, None] * H * V + offs_v[None, :], dv, mask=v_mask)
        tl.store(dg_ptr + part_h + t * H, dg, mask=t < T)
        tl.store(dbeta_ptr + part_h + t * H, dbeta, mask=t < T)
    tl.store(ds0_ptr + i_bh.to(tl.int64) * K * V + s_offs, dS, mask=s0_mask)


# -- generalised delta rule (RWKV-7) ----------------------------------------------------------------------


@triton.jit
def _pair(a, b, La, Lb, mask):
    """``P_ij = sum_k a_ik b_jk exp(La_ik - Lb_jk)`` on ``mask`` (0 elsewhere), exactly in log space per
    channel (a ``[C, C, K]`` block): no split factor can overflow, whatever the decays."""
    factor = tl.exp(tl.minimum(La[:, None, :] - Lb[None, :, :], 0.0))
    return tl.where(mask, tl.sum(a[:, None, :] * b[None, :, :] * factor, axis=2), 0.0)


@triton.jit
def _pair_grads(dP, a, b, La, Lb):
    """Gradients of ``_pair`` given ``dP`` (already masked): ``(da, db)``; those of the log decays are
    ``dLa = a * da`` and ``dLb = -b * db``."""
    factor = tl.exp(tl.minimum(La[:, None, :] - Lb[None, :, :], 0.0)) * dP[:, :, None]
    return tl.sum(factor * b[None, :, :], axis=1), tl.sum(factor * a[:, None, :], axis=0)


@triton.jit
def _gen_chunk(
    r_ptr, w_ptr, k_ptr, v_ptr, a_ptr, b_ptr, base_k, base_v, t0, T, H, K, V, offs_t, offs_k, offs_v,
    BT: tl.constexpr,
):  # fmt: skip
    """One chunk's inputs (fp32) and its state-independent terms."""
    r = _load_chunk(r_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
    w = _load_chunk(w_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
    k = _load_chunk(k_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
    v = _load_chunk(v_ptr, base_v, t0, T, H * V, offs_t, offs_v, V)
    a = _load_chunk(a_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
    b = _load_chunk(b_ptr, base_k, t0, T, H * K, offs_t, offs_k, K)
    L = tl.cumsum(w, axis=0)
    L_prev = L - w
    L_C = tl.sum(w, axis=0)
    strict = offs_t[:, None] > offs_t[None, :]
    lower = offs_t[:, None] >= offs_t[None, :]
    A_ab = _pair(a, b, L_prev, L, strict)
    Tm = _unit_lower_inverse(-A_ab, BT)
    return r, k, v, a, b, L, L_prev, L_C, strict, lower, Tm


@triton.jit(do_not_specialize=["T", "H", "K", "V", "has_s0", "store_chunks"])
def _gen_fwd_kernel(
    r_ptr, w_ptr, k_ptr, v_ptr, a_ptr, b_ptr, s0_ptr, o_ptr, sT_ptr, s_chunks_ptr,
    T, H, K, V, has_s0, store_chunks,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """Per chunk: ``X = (I - A_ab)^-1 (A_ak V + (a exp(L_prev)) S)``, ``O = (r exp(L)) S + Q_b X + Q_k V``,
    ``S <- exp(L_C) S + (b exp(L_C - L))^T X + (k exp(L_C - L))^T V``. With ``store_chunks`` the state
    entering every chunk is written instead of the outputs."""
    i_v, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = (i_bh // H).to(tl.int64), i_bh % H
    offs_t, offs_k = tl.arange(0, BT), tl.arange(0, BK)
    offs_v = i_v * BV + tl.arange(0, BV)
    base_k, base_v = (i_b * T * H + i_h) * K, (i_b * T * H + i_h) * V
    s_offs = offs_k[:, None] * V + offs_v[None, :]
    s_mask = (offs_k[:, None] < K) & (offs_v[None, :] < V)
    s0_mask = (offs_k[:, None] < K * has_s0) & (offs_v[None, :] < V)  # none without an initial state
    n_chunks = tl.cdiv(T, BT)
    S = tl.load(s0_ptr + i_bh.to(tl.int64) * K * V + s_offs, mask=s0_mask, other=0.0).to(tl.float32)
    for i_n in range(0, n_chunks):
        t0 = i_n * BT
        r, k, v, a, b, L, L_prev, L_C, strict, lower, Tm = _gen_chunk(
            r_ptr,
            w_ptr,
            k_ptr,
            v_ptr,
            a_ptr,
            b_ptr,
            base_k,
            base_v,
            t0,
            T,
            H,
            K,
            V,
            offs_t,
            offs_k,
            offs_v,
            BT,
        )
        A_ak = _pair(a, k, L_prev, L, strict)
        Y = tl.dot(A_ak, v, input_precision=PRECISION) + tl.dot(
            a * tl.exp(L_prev), S, input_precision=PRECISION
        )
        X = tl.dot(Tm, Y, input_precision=PRECISION)
        if store_chunks != 0:
            chunk_base = (i_bh.to(tl.int64) * n_chunks + i_n) * K * V
            tl.store(s_chunks_ptr + chunk_base + s_offs, S, mask=s_mask)
        else:
            o = tl.dot(r * tl.exp(L), S, input_precision=PRECISION)
            o += tl.dot(_pair(r, b, L, L, lower), X, input_precision=PRECISION)
            o += tl.dot(_pair(r, k, L, L, lower), v, input_precision=PRECISION)
            t = t0 + offs_t
            o_mask = (t[:, None] < T) & (offs_v[None, :] < V)
            tl.store(o_ptr + base_v + t[:, None] * H * V + offs_v[None, :], o, mask=o_mask)
        to_end = tl.exp(L_C[None, :] - L)
        S = tl.exp(L_C)[:, None] * S + tl.dot(tl.trans(b * to_end), X, input_precision=PRECISION)
        S += tl.dot(tl.trans(k * to_end), v, input_precision=PRECISION)
    tl.store(sT_ptr + i_bh.to(tl.int64) * K * V + s_offs, S, mask=s_mask)


@triton.jit(do_not_specialize=["B", "T", "H", "K", "V", "has_s0"])
def _gen_bwd_kernel(
    r_ptr, w_ptr, k_ptr, v_ptr, a_ptr, b_ptr, s_chunks_ptr, do_ptr, dsT_ptr,
    dr_ptr, dw_ptr, dk_ptr, dv_ptr, da_ptr, db_ptr, ds0_ptr,
    B, T, H, K, V, has_s0,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """Reverse pass: ``dv`` and ``ds0`` complete; ``dr, dw, dk, da, db`` ``[NV, B, T, H, K]`` as partial
    sums over value blocks."""
    i_v, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = (i_bh // H).to(tl.int64), i_bh % H
    offs_t, offs_k = tl.arange(0, BT), tl.arange(0, BK)
    offs_v = i_v * BV + tl.arange(0, BV)
    base_k, base_v = (i_b * T * H + i_h) * K, (i_b * T * H + i_h) * V
    part_k = i_v.to(tl.int64) * B * T * H * K + base_k
    s_offs = offs_k[:, None] * V + offs_v[None, :]
    s_mask = (offs_k[:, None] < K) & (offs_v[None, :] < V)
    s0_mask = (offs_k[:, None] < K * has_s0) & (offs_v[None, :] < V)  # none without an initial state
    n_chunks = tl.cdiv(T, BT)
    dS = tl.load(dsT_ptr + i_bh.to(tl.int64) * K * V + s_offs, mask=s_mask, other=0.0).to(tl.float32)
    for i_n in range(0, n_chunks):
        n = n_chunks - 1 - i_n
        t0 = n * BT
        r, k, v, a, b, L, L_prev, L_C, strict, lower, Tm = _gen_chunk(
            r_ptr,
            w_ptr,
            k_ptr,
            v_ptr,
            a_ptr,
            b_ptr,
            base_k,
            base_v,
            t0,
            T,
            H,
            K,
            V,
            offs_t,
            offs_k,
            offs_v,
            BT,
        )
        do = _load_chunk(do_ptr, base_v, t0, T, H * V, offs_t, offs_v, V)
        chunk_base = (i_bh.to(tl.int64) * n_chunks + n) * K * V
        S = tl.load(s_chunks_ptr + chunk_base + s_offs, mask=s_mask, other=0.0)
        # recompute the chunk
        eL, eL_prev, to_end = tl.exp(L), tl.exp(L_prev), tl.exp(L_C[None, :] - L)
        A_ak = _pair(a, k, L_prev, L, strict)
        Y = tl.dot(A_ak, v, input_precision=PRECISION) + tl.dot(a * eL_prev, S, input_precision=PRECISION)
        X = tl.dot(Tm, Y, input_precision=PRECISION)
        Q_b = _pair(r, b, L, L, lower)
        Q_k = _pair(r, k, L, L, lower)
        b_end, k_end = b * to_end, k * to_end
        # O = (r exp(L)) S + Q_b X + Q_k V and S' = exp(L_C) S + b_end^T X + k_end^T V
        dX = tl.dot(tl.trans(Q_b), do, input_precision=PRECISION) + tl.dot(
            b_end, dS, input_precision=PRECISION
        )
        dv = tl.dot(tl.trans(Q_k), do, input_precision=PRECISION) + tl.dot(
            k_end, dS, input_precision=PRECISION
        )
        dr = eL * tl.dot(do, tl.trans(S), input_precision=PRECISION)
        dL = r * dr  # through r exp(L)
        # through b_end, k_end = (b, k) exp(L_C - L) and exp(L_C) S
        db = to_end * tl.dot(X, tl.trans(dS), input_precision=PRECISION)
        dk = to_end * tl.dot(v, tl.trans(dS), input_precision=PRECISION)
        Z = b * db + k * dk
        dL -= Z
        dL_C = tl.sum(Z, axis=0) + tl.exp(L_C) * tl.sum(dS * S, axis=1)
        dL += tl.where(offs_t[:, None] == BT - 1, dL_C[None, :], 0.0)
        # X = T Y with T = (I - A_ab)^-1: dY = T^T dX, dA_ab = dY X^T
        dY = tl.dot(tl.trans(Tm), dX, input_precision=PRECISION)
        dA_ab = tl.where(strict, tl.dot(dY, tl.trans(X), input_precision=PRECISION), 0.0)
        dA_ak = tl.where(strict, tl.dot(dY, tl.trans(v), input_precision=PRECISION), 0.0)
        dv += tl.dot(tl.trans(A_ak), dY, input_precision=PRECISION)
        da = eL_prev * tl.dot(dY, tl.trans(S), input_precision=PRECISION)  # through a exp(L_prev)
        dQ_b = tl.where(lower, tl.dot(do, tl.trans(X), input_precision=PRECISION), 0.0)
        dQ_k = tl.where(lower, tl.dot(do, tl.trans(v), input_precision=PRECISION), 0.0)
        # the pair terms: each P(x, y, Lx, Ly) adds x * dx to dLx and -y * dy to dLy
        da_ab, db_ab = _pair_grads(dA_ab, a, b, L_prev, L)
        da_ak, dk_ak = _pair_grads(dA_ak, a, k, L_prev, L)
        dr_b, db_r = _pair_grads(dQ_b, r, b, L, L)
        dr_k, dk_r = _pair_grads(dQ_k, r, k, L, L)
        da += da_ab + da_ak
        db += db_ab + db_r
        dk += dk_ak + dk_r
        dr += dr_b + dr_k
        dL_prev = a * da  # every use of a is through a exp(L_prev)
        dL += r * (dr_b + dr_k) - b * (db_ab + db_r) - k * (dk_ak + dk_r)
        # L = cumsum(w) and L_prev = L - w: dw_t = sum_{i >= t} (dL_i + dL_prev_i) - dL_prev_t
        dL_all = dL + dL_prev
        dw = tl.sum(dL_all, axis=0)[None, :] - tl.cumsum(dL_all, axis=0) + dL_all - dL_prev
        # the state gradient entering the chunk
        dS = tl.exp(L_C)[:, None] * dS + tl.dot(tl.trans(r * eL), do, input_precision=PRECISION)
        dS += tl.dot(tl.trans(a * eL_prev), dY, input_precision=PRECISION)
        t = t0 + offs_t
        k_mask = (t[:, None] < T) & (offs_k[None, :] < K)
        k_offs = part_k + t[:, None] * H * K + offs_k[None, :]
        tl.store(dr_ptr + k_offs, dr, mask=k_mask)
        tl.store(dw_ptr + k_offs, dw, mask=k_mask)
        tl.store(dk_ptr + k_offs, dk, mask=k_mask)
        tl.store(da_ptr + k_offs, da, mask=k_mask)
        tl.store(db_ptr + k_offs, db, mask=k_mask)
        v_mask = (t[:, None] < T) & (offs_v[None, :] < V)
        tl.store(dv_ptr + base_v + t[:, None] * H * V + offs_v[None, :], dv, mask=v_mask)
    tl.store(ds0_ptr + i_bh.to(tl.int64) * K * V + s_offs, dS, mask=s0_mask)


def _block(n: int) -> int:
    """Power-of-two block covering ``n``, at least 16 (``tl.dot``'s smallest tile)."""
    return max(16, triton.next_power_of_2(n))


def _check_chunk_size(chunk_size: int) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")


def _value_tile(V: int, value_block: int | None) -> int:
    if value_block is None:
        return min(_block(V), 64)
    if value_block < 16 or value_block & (value_block - 1):
        raise ValueError(f"value_block must be a power of two of at least 16, got {value_block}")
    return value_block


def _precision(*tensors: torch.Tensor) -> str:
    # fp32 inputs get exact fp32 products (the tests' 5e-3 rel. RMS); bf16 inputs lose nothing to tf32
    return "ieee" if all(t.dtype == torch.float32 for t in tensors) else "tf32"


class _ChunkGatedDeltaRule(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, g, beta, initial_state, chunk, value_block):
        B, T, H, K = q.shape
        V = v.shape[-1]
        BT, BK = _block(chunk), _block(K)  # any chunk length gives the same result
        BV = _value_tile(V, value_block)
        NV = triton.cdiv(V, BV)
        q, k, v, g, beta = (x.contiguous() for x in (q, k, v, g, beta))
        s0 = initial_state.float().contiguous() if initial_state is not None else None
        o = torch.empty(B, T, H, V, device=q.device, dtype=v.dtype)
        sT = torch.empty(B, H, K, V, device=q.device, dtype=torch.float32)
        precision = _precision(q, k, v)
        _gdr_fwd_kernel[(NV, B * H)](
            q, k, v, g, beta, s0 if s0 is not None else sT, o, sT, sT,
            T, H, K, V, int(s0 is not None), 0, BT=BT, BK=BK, BV=BV, PRECISION=precision,
        )  # fmt: skip
        ctx.save_for_backward(q, k, v, g, beta, s0)
        ctx.tiles = (BT, BK, BV, NV, precision)
        ctx.initial_dtype = initial_state.dtype if initial_state is not None else None
        return o, sT

    @staticmethod
    def backward(ctx, do, dsT):
        q, k, v, g, beta, s0 = ctx.saved_tensors
        BT, BK, BV, NV, precision = ctx.tiles
        B, T, H, K = q.shape
        V = v.shape[-1]
        N = triton.cdiv(T, BT)
        f32 = {"device": q.device, "dtype": torch.float32}
        s_chunks = torch.empty(B, H, N, K, V, **f32)
        sT_scratch = torch.empty(B, H, K, V, **f32)  # the final state again: written, unused
        _gdr_fwd_kernel[(NV, B * H)](
            q, k, v, g, beta, s0 if s0 is not None else s_chunks, s_chunks, sT_scratch, s_chunks,
            T, H, K, V, int(s0 is not None), 1, BT=BT, BK=BK, BV=BV, PRECISION=precision,
        )  # fmt: skip
        do = do.contiguous() if do is not None else torch.zeros_like(v)
        dsT = dsT.float().contiguous() if dsT is not None else torch.zeros(B, H, K, V, **f32)
        dq, dk = torch.empty(NV, B, T, H, K, **f32), torch.empty(NV, B, T, H, K, **f32)
        dg, dbeta = torch.empty(NV, B, T, H, **f32), torch.empty(NV, B, T, H, **f32)
        dv, ds0 = torch.empty(B, T, H, V, **f32), torch.empty(B, H, K, V, **f32)
        _gdr_bwd_kernel[(NV, B * H)](
            q, k, v, g, beta, s_chunks, do, dsT, dq, dk, dv, dg, dbeta, ds0,
            B, T, H, K, V, int(s0 is not None), BT=BT, BK=BK, BV=BV, PRECISION=precision,
        )  # fmt: skip
        return (
            dq.sum(0).to(q.dtype), dk.sum(0).to(k.dtype), dv.to(v.dtype),
            dg.sum(0).to(g.dtype), dbeta.sum(0).to(beta.dtype),
            ds0.to(ctx.initial_dtype) if s0 is not None else None, None, None,
        )  # fmt: skip


def chunk_gated_delta_rule(
    q_BTHK: torch.Tensor,
    k_BTHK: torch.Tensor,
    v_BTHV: torch.Tensor,
    g_BTH: torch.Tensor,
    beta_BTH: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
    value_block: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked gated delta rule in Triton: ``(o_BTHV in v's dtype, final S_BHKV fp32)``, as
    :func:`kernels.delta.chunk.chunk_gated_delta_rule`. ``chunk_size``: rounded up to a power of two
    of at least 16 (``tl.arange``, ``tl.dot``'s smallest tile); the result does not depend on it.
    ``value_block``: value columns per program (a power of two of at least 16; default ``min(V, 64)``
    rounded up)."""
    _check_chunk_size(chunk_size)
    return _ChunkGatedDeltaRule.apply(
        q_BTHK, k_BTHK, v_BTHV, g_BTH, beta_BTH, initial_state, chunk_size, value_block
    )


class _ChunkGeneralizedDeltaRule(torch.autograd.Function):
    @staticmethod
    def forward(ctx, r, w, k, v, a, b, initial_state, chunk, value_block):
        B, T, H, K = r.shape
        V = v.shape[-1]
        # any chunk length gives the same result; the [C, C, K] pair blocks live in registers, so C <= 16
        BT, BK = min(_block(chunk), PAIR_CHUNK_MAX), _block(K)
        BV = _value_tile(V, value_block)
        NV = triton.cdiv(V, BV)
        r, w, k, v, a, b = (x.contiguous() for x in (r, w, k, v, a, b))
        s0 = initial_state.float().contiguous() if initial_state is not None else None
        o = torch.empty(B, T, H, V, device=r.device, dtype=v.dtype)
        sT = torch.empty(B, H, K, V, device=r.device, dtype=torch.float32)
        precision = _precision(r, k, v, a, b)
        _gen_fwd_kernel[(NV, B * H)](
            r, w, k, v, a, b, s0 if s0 is not None else sT, o, sT, sT,
            T, H, K, V, int(s0 is not None), 0, BT=BT, BK=BK, BV=BV, PRECISION=precision,
        )  # fmt: skip
        ctx.save_for_backward(r, w, k, v, a, b, s0)
        ctx.tiles = (BT, BK, BV, NV, precision)
        ctx.initial_dtype = initial_state.dtype if initial_state is not None else None
        return o, sT

    @staticmethod
    def backward(ctx, do, dsT):
        r, w, k, v, a, b, s0 = ctx.saved_tensors
        BT, BK, BV, NV, precision = ctx.tiles
        B, T, H, K = r.shape
        V = v.shape[-1]
        N = triton.cdiv(T, BT)
        f32 = {"device": r.device, "dtype": torch.float32}
        s_chunks = torch.empty(B, H, N, K, V, **f32)
        sT_scratch = torch.empty(B, H, K, V, **f32)  # the final state again: written, unused
        _gen_fwd_kernel[(NV, B * H)](
            r, w, k, v, a, b, s0 if s0 is not None else s_chunks, s_chunks, sT_scratch, s_chunks,
            T, H, K, V, int(s0 is not None), 1, BT=BT, BK=BK, BV=BV, PRECISION=precision,
        )  # fmt: skip
        do = do.contiguous() if do is not None else torch.zeros_like(v)
        dsT = dsT.float().contiguous() if dsT is not None else torch.zeros(B, H, K, V, **f32)
        dr, dw, dk, da, db = (torch.empty(NV, B, T, H, K, **f32) for _ in range(5))
        dv, ds0 = torch.empty(B, T, H, V, **f32), torch.empty(B, H, K, V, **f32)
        _gen_bwd_kernel[(NV, B * H)](
            r, w, k, v, a, b, s_chunks, do, dsT, dr, dw, dk, dv, da, db, ds0,
            B, T, H, K, V, int(s0 is not None), BT=BT, BK=BK, BV=BV, PRECISION=precision,
        )  # fmt: skip
        grads = [x.sum(0).to(y.dtype) for x, y in ((dr, r), (dw, w), (dk, k))]
        return (
            *grads, dv.to(v.dtype), da.sum(0).to(a.dtype), db.sum(0).to(b.dtype),
            ds0.to(ctx.initial_dtype) if s0 is not None else None, None, None,
        )  # fmt: skip


def chunk_generalized_delta_rule(
    r_BTHK: torch.Tensor,
    w_BTHK: torch.Tensor,
    k_BTHK: torch.Tensor,
    v_BTHV: torch.Tensor,
    a_BTHK: torch.Tensor,
    b_BTHK: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 16,
    value_block: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked generalised delta rule (RWKV-7) in Triton: ``(o_BTHV in v's dtype, final S_BHKV fp32)``,
    as :func:`kernels.delta.chunk.chunk_generalized_delta_rule`. The pair factors are exact in log space
    per channel, so any decay strength is safe (no ``chunk_size * max|w|`` limit). ``chunk_size``: rounded
    up to a power of two of at least 16 and capped at ``PAIR_CHUNK_MAX`` (16): the pair blocks are
    ``[C, C, K]`` in registers; ``value_block``: value columns per program."""
    _check_chunk_size(chunk_size)
    return _ChunkGeneralizedDeltaRule.apply(
        r_BTHK, w_BTHK, k_BTHK, v_BTHV, a_BTHK, b_BTHK, initial_state, chunk_size, value_block
    )
