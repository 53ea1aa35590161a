"""Chunkwise-parallel forms of the delta-rule family (the CPU training path): matmuls inside a chunk of
``C`` tokens, a short Python loop carrying the ``[K, V]`` state across chunks. Same arguments, layout and
results as :mod:`kernels.delta.naive` (read its docstring for the recurrences).

**Gated delta rule** (WY representation / UT transform; Yang et al. 2024, "Parallelizing Linear
Transformers with the Delta Rule over Sequence Length", and "Gated Delta Networks" section 3.3).
Inside a chunk, with ``G_i = g_1 + ... + g_i`` (cumulative log decay from the chunk start) and the
chunk's initial state ``S``, unrolling ``S_i = exp(g_i) S_{i-1} + k_i u_i^T`` gives::

    u_i = beta_i v_i - beta_i exp(G_i) S^T k_i - sum_{j<i} beta_i exp(G_i - G_j) (k_i . k_j) u_j

so ``(I + A) U = diag(beta) V - diag(beta exp(G)) K S`` with ``A`` strictly lower triangular,
``A_ij = beta_i exp(G_i - G_j) k_i . k_j``. One triangular solve per chunk (all chunks at once) gives
``W = (I + A)^-1 diag(beta exp(G)) K`` and ``U0 = (I + A)^-1 diag(beta) V``, so with the state ``S``
entering the chunk::

    U = U0 - W S
    O = diag(exp(G)) Q S + ((Q K^T) * D) U          D_ij = exp(G_i - G_j) for j <= i, else 0
    S <- exp(G_C) S + (K * exp(G_C - G))^T U  =  M S + R      (M: [K, K], R: [K, V], per chunk)

``M`` and ``R`` are built for all chunks at once; the only sequential step is ``S <- M S + R`` (one
``baddbmm`` per chunk, 2 K^2 V / C flops per token), after which U and O are again batched over chunks.
All exponents are differences ``G_i - G_j <= 0`` of the scalar per-head decay: nothing can overflow.

**Generalised delta rule** (diagonal plus rank one, RWKV-7). With per-channel cumulative log decays
``L_i = w_1 + ... + w_i`` (``L_0 = 0``) and ``x_i = S_{i-1}^T a_i`` the rank-one term becomes a second
"value" written along ``b``, so ``S_i = exp(L_i) S + sum_{j<=i} exp(L_i - L_j) (b_j x_j^T + k_j v_j^T)``
and::

    x_i = S^T (a_i exp(L_{i-1})) + sum_{j<i} [ (a_i exp(L_{i-1} - L_j)) . b_j ] x_j + [ ... . k_j ] v_j

i.e. ``(I - A_ab) X = A_ak V + (a * exp(L_prev)) S``, again one unit-lower-triangular solve per chunk.
Then ``O = (r * exp(L)) S + Q_b X + Q_k V`` (``Q_b``, ``Q_k``: lower triangular incl. the diagonal)
and ``S <- exp(L_C) S + (b * exp(L_C - L))^T X + (k * exp(L_C - L))^T V``, again ``M S + R`` with
``M = diag(exp(L_C)) + (b * exp(L_C - L))^T W`` carried by the same loop. This is the exact chunked
algorithm (no approximation, no fallback to a token loop). The pair factors
``exp(L_i - L_j)`` differ per channel, so they are split as ``exp(L_i - m) * exp(m - L_j)`` around the
chunk's middle ``m`` to keep them matmuls; each factor stays below ``exp(C/2 * max|w|)``: safe in fp32
while ``chunk_size * max|w| < ~150`` (RWKV-7 clamps ``|w| <= 0.61``, so C = 16 gives at most e^5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _chunked(x_BTH_: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """``[B, T, H, *]`` -> fp32 ``[B, H, N, C, *]``, zero-padded at the end to N * C tokens."""
    x_BHT_ = x_BTH_.float().transpose(1, 2)
    T = x_BHT_.shape[2]
    pad = -T % chunk_size
    if pad:
        # F.pad counts dims from the last: (0, 0) for each trailing dim, then (0, pad) on time
        x_BHT_ = F.pad(x_BHT_, (0, 0) * (x_BHT_.ndim - 3) + (0, pad))
    B, H, T_padded = x_BHT_.shape[:3]
    return x_BHT_.reshape(B, H, T_padded // chunk_size, chunk_size, *x_BHT_.shape[3:])


def _unchunked(o_BHNCV: torch.Tensor, T: int) -> torch.Tensor:
    """``[B, H, N, C, V]`` -> ``[B, T, H, V]`` (drops the padding)."""
    B, H, N, C, V = o_BHNCV.shape
    return o_BHNCV.reshape(B, H, N * C, V)[:, :, :T].transpose(1, 2)


def _check_chunk_size(chunk_size: int) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")


def _initial(initial_state: torch.Tensor | None, like: torch.Tensor, K: int, V: int) -> torch.Tensor:
    B, H = like.shape[:2]
    if initial_state is None:
        return torch.zeros(B, H, K, V, device=like.device, dtype=torch.float32)
    return initial_state.float()


def _carry_state(
    M_BHNKK: torch.Tensor, R_BHNKV: torch.Tensor, S_BHKV: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The only sequential part: ``S_{n+1} = M_n S_n + R_n`` over chunks, one ``baddbmm`` each.

    Returns the state entering every chunk ``[B, H, N, K, V]`` and the final state ``[B, H, K, V]``.
    (Chunks are unbound once: indexing chunk n inside the loop would make autograd scatter into a
    full-size zero tensor per chunk, quadratic in the number of chunks.)
    """
    B, H, N, K, V = R_BHNKV.shape
    S_xKV = S_BHKV.reshape(B * H, K, V)
    # chunk-major copies, so each step's operands are contiguous
    M_NxKK = M_BHNKK.reshape(B * H, N, K, K).transpose(0, 1).contiguous()
    R_NxKV = R_BHNKV.reshape(B * H, N, K, V).transpose(0, 1).contiguous()
    entering = []
    for M_xKK, R_xKV in zip(M_NxKK.unbind(0), R_NxKV.unbind(0), strict=True):
        entering.append(S_xKV)
        S_xKV = torch.baddbmm(R_xKV, M_xKK, S_xKV)
    return torch.stack(entering, dim=1).reshape(B, H, N, K, V), S_xKV.reshape(B, H, K, V)


def _unit_lower_inverse(A_strict_xCC: torch.Tensor) -> torch.Tensor:
    """``(I + A)^-1`` for strictly lower-triangular ``A`` (forward substitution, batched)."""
    C = A_strict_xCC.shape[-1]
    eye_CC = torch.eye(C, device=A_strict_xCC.device, dtype=A_strict_xCC.dtype)
    return torch.linalg.solve_triangular(
        A_strict_xCC + eye_CC, eye_CC.expand_as(A_strict_xCC), upper=False, unitriangular=True
    )


def chunk_gated_delta_rule(
    q_BTHK: torch.Tensor,
    k_BTHK: torch.Tensor,
    v_BTHV: torch.Tensor,
    g_BTH: torch.Tensor,
    beta_BTH: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked gated delta rule: ``(o_BTHV in v's dtype, final S_BHKV fp32)``; see the module doc."""
    _check_chunk_size(chunk_size)
    T, K, V, C = q_BTHK.shape[1], q_BTHK.shape[-1], v_BTHV.shape[-1], chunk_size
    with torch.autocast(device_type=q_BTHK.device.type, enabled=False):
        # padding: beta = 0 writes nothing and g = 0 decays nothing, so the final state is untouched
        q, k, v = (_chunked(x, C) for x in (q_BTHK, k_BTHK, v_BTHV))  # [B, H, N, C, K|V]
        g_BHNC, beta_BHNC = (_chunked(x[..., None], C)[..., 0] for x in (g_BTH, beta_BTH))
        G_BHNC = g_BHNC.cumsum(dim=-1)
        lower_incl_CC = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
        # D_ij = exp(G_i - G_j) on and below the diagonal; masked before exp (above it G_i - G_j > 0)
        D_BHNCC = (G_BHNC[..., :, None] - G_BHNC[..., None, :]).masked_fill(~lower_incl_CC, -torch.inf).exp()
        k_T = k.transpose(-1, -2)

        # UT transform: W = (I + A)^-1 diag(beta exp(G)) K, U0 = (I + A)^-1 diag(beta) V
        A_BHNCC = (beta_BHNC[..., :, None] * (k @ k_T) * D_BHNCC).tril(-1)
        T_BHNCC = _unit_lower_inverse(A_BHNCC)
        W_BHNCK = T_BHNCC @ ((beta_BHNC * G_BHNC.exp())[..., None] * k)
        U0_BHNCV = T_BHNCC @ (beta_BHNC[..., None] * v)

        # chunk transition: S <- exp(G_C) S + (K exp(G_C - G))^T (U0 - W S) = M S + R
        G_last_BHN1 = G_BHNC[..., -1:]
        k_to_end_T = k_T * (G_last_BHN1 - G_BHNC).exp()[..., None, :]  # [B, H, N, K, C]
        eye_KK = torch.eye(K, device=q.device, dtype=q.dtype)
        M_BHNKK = G_last_BHN1.exp()[..., None] * eye_KK - k_to_end_T @ W_BHNCK
        S_in_BHNKV, S_BHKV = _carry_state(M_BHNKK, k_to_end_T @ U0_BHNCV, _initial(initial_state, q, K, V))

        U_BHNCV = U0_BHNCV - W_BHNCK @ S_in_BHNKV
        O_BHNCV = (q * G_BHNC.exp()[..., None]) @ S_in_BHNKV + ((q @ k_T) * D_BHNCC) @ U_BHNCV
        o_BTHV = _unchunked(O_BHNCV, T)
    return o_BTHV.to(v_BTHV.dtype), S_BHKV


def chunk_generalized_delta_rule(
    r_BTHK: torch.Tensor,
    w_BTHK: torch.Tensor,
    k_BTHK: torch.Tensor,
    v_BTHV: torch.Tensor,
    a_BTHK: torch.Tensor,
    b_BTHK: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked generalised delta rule: ``(o_BTHV in v's dtype, final S_BHKV fp32)``; see the module doc.

    ``w_BTHK`` is the log decay; keep ``chunk_size * max|w|`` below ~150 (fp32 range of the split
    pair factors).
    """
    _check_chunk_size(chunk_size)
    T, K, V, C = r_BTHK.shape[1], r_BTHK.shape[-1], v_BTHV.shape[-1], chunk_size
    with torch.autocast(device_type=r_BTHK.device.type, enabled=False):
        # zero padding writes, reads and decays nothing
        r, w, k, v, a, b = (_chunked(x, C) for x in (r_BTHK, w_BTHK, k_BTHK, v_BTHV, a_BTHK, b_BTHK))
        L = w.cumsum(dim=-2)  # [B, H, N, C, K]: log decay from the chunk start through token i
        L_prev = L - w  # ... through token i - 1
        L_mid = L[..., C // 2 : C // 2 + 1, :]  # reference point: the split factors stay within e^(C/2 |w|)
        L_last = L[..., -1:, :]
        a_fwd, r_fwd = a * (L_prev - L_mid).exp(), r * (L - L_mid).exp()
        b_back_T, k_back_T = (
            (b * (L_mid - L).exp()).transpose(-1, -2),
            (k * (L_mid - L).exp()).transpose(-1, -2),
        )
        lower_incl_CC = torch.ones(C, C, dtype=torch.bool, device=r.device).tril()

        # (I - A_ab) X = A_ak V + (a exp(L_prev)) S  ->  X = X0 + W S
        T_BHNCC = _unit_lower_inverse(-(a_fwd @ b_back_T).tril(-1))
        A_ak = (a_fwd @ k_back_T).tril(-1)
        W_BHNCK = T_BHNCC @ (a * L_prev.exp())
        X0_BHNCV = T_BHNCC @ (A_ak @ v)

        # chunk transition: S <- exp(L_C) S + (b exp(L_C - L))^T (X0 + W S) + (k exp(L_C - L))^T V
        to_end = (L_last - L).exp()
        b_to_end_T, k_to_end_T = (b * to_end).transpose(-1, -2), (k * to_end).transpose(-1, -2)
        M_BHNKK = torch.diag_embed(L_last[..., 0, :].exp()) + b_to_end_T @ W_BHNCK
        R_BHNKV = b_to_end_T @ X0_BHNCV + k_to_end_T @ v
        S_in_BHNKV, S_BHKV = _carry_state(M_BHNKK, R_BHNKV, _initial(initial_state, r, K, V))

        X_BHNCV = X0_BHNCV + W_BHNCK @ S_in_BHNKV
        Q_b = (r_fwd @ b_back_T).masked_fill(~lower_incl_CC, 0.0)
        Q_k = (r_fwd @ k_back_T).masked_fill(~lower_incl_CC, 0.0)
        O_BHNCV = (r * L.exp()) @ S_in_BHNKV + Q_b @ X_BHNCV + Q_k @ v
        o_BTHV = _unchunked(O_BHNCV, T)
    return o_BTHV.to(v_BTHV.dtype), S_BHKV
