"""Chunkwise-parallel gated linear attention (the CPU training path): matmuls inside chunks of ``C`` tokens,
a short Python loop carrying the ``[K, V]`` state across chunks. Same arguments, layout and results as
:mod:`kernels.gla.naive` (read its docstring for the recurrence).

Inside a chunk with entering state ``S``, let ``L_i = g_1 + ... + g_i`` (cumulative log decay from the
chunk start, per head or per key channel) and ``Lq_i`` the decay the query at ``i`` sees: ``L_i`` without a
bonus, ``L_{i-1}`` with one (RWKV-6 reads the state before this token's decay). Unrolling the recurrence::

    o_i = (q_i * exp(Lq_i))^T S  +  sum_{j in chunk, j <= i} [sum_k q_ik k_jk exp(Lq_ik - L_jk)] v_j
          (j < i with a bonus, plus the bonus term (q_i . (u * k_i)) v_i)
    S  <- diag(exp(L_C)) S + sum_j (k_j * exp(L_C - L_j)) v_j^T

Every exponent above is a sum of log decays over a stretch of tokens, hence ``<= 0``: nothing can
overflow, however strong the decay. The only care needed is in the intra-chunk pair term:

- **one decay per head** (RetNet, Mamba-2): ``exp(Lq_i - L_j)`` is a scalar per pair, so the term is
  ``((Q K^T) * D) V`` with the ``C x C`` decay matrix ``D`` built in log space (pairs above the diagonal
  capped at exponent 0, then masked, so no ``inf`` reaches the backward).
- **one decay per key channel** (GLA, RWKV-6): the factor differs per channel, so it cannot be pulled out of
  the ``q . k`` sum. It is split around an anchor ``r`` (the cumulative decay before a block of tokens):
  ``exp(Lq_i - L_j) = exp(Lq_i - r) * exp(r - L_j)``, which makes the pair term a matmul
  ``(q * exp(Lq - r)) (k * exp(r - L))^T``. For a key in the block the second factor is ``>= 1`` and can
  overflow when the block decays strongly, so the block is chosen from the data (all exact):

  1. every chunk decays by less than ``e^SPLIT_LIMIT`` in every channel (the usual case: GLA's gates,
     RWKV-6 at init): anchor at the chunk start, one matmul per chunk;
  2. else, if every sub-chunk of ``c`` tokens does (secondary chunking, as fla's ``chunk_gla``): the same on
     each diagonal ``c x c`` sub-block; a query and a key in an EARLIER sub-chunk are split at the start of
     the query's sub-chunk, where both exponents are ``<= 0``;
  3. else (some channel loses more than ``e^-40`` within ``c`` tokens): the diagonal sub-blocks exactly in
     log space per channel, a ``[c, c, K]`` tensor per sub-chunk (about 3x slower than 1 and 2).

Cost per token and head: ``2C(K + V)`` for the pair terms and ``4KV`` for reading and writing the state
(regime 3 adds ``~3cK`` elementwise); memory linear in T. The Python loop runs once per chunk.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Decay factors are computed as exp(max(x, LOG_FLOOR)): below e^-30 (~1e-13, next to contributions of order
# one) fp32 products drift into denormal numbers, which CPUs process ~100x slower. Flooring changes a
# result by less than 1e-13 relative to a unit contribution; the gradient below the floor is dropped.
LOG_FLOOR = -30.0
# A block of tokens whose decay stays within e^SPLIT_LIMIT (every channel) has its pair term computed as one
# matmul of split factors, which stay within [e^-40, e^40]: far from fp32 overflow and denormals.
SPLIT_LIMIT = 40.0


def _decay(exponent: torch.Tensor) -> torch.Tensor:
    """``exp(exponent)`` for exponents ``<= 0``, floored at ``exp(LOG_FLOOR)`` (see above). Positive
    exponents (pairs that a mask drops afterwards) are capped at 0, so no ``inf`` reaches the backward."""
    return exponent.clamp(min=LOG_FLOOR, max=0.0).exp()


def _chunked(x_BTH_: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """``[B, T, H, *]`` -> fp32 ``[B, H, N, C, *]``, zero-padded at the end to N * C tokens."""
    x_BHT_ = x_BTH_.float().transpose(1, 2)
    pad = -x_BHT_.shape[2] % chunk_size
    if pad:
        x_BHT_ = F.pad(x_BHT_, (0, 0) * (x_BHT_.ndim - 3) + (0, pad))
    B, H, T_padded = x_BHT_.shape[:3]
    return x_BHT_.reshape(B, H, T_padded // chunk_size, chunk_size, *x_BHT_.shape[3:])


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _carry_state(
    decay_BHNK1: torch.Tensor, R_BHNKV: torch.Tensor, S_BHKV: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The only sequential part: ``S_{n+1} = exp(L_C) S_n + R_n`` over chunks (one ``addcmul`` each).

    ``decay_BHNK1`` is ``[B, H, N, K, 1]`` (per channel) or ``[B, H, N, 1, 1]`` (per head). Returns the state
    entering every chunk ``[B, H, N, K, V]`` and the final state ``[B, H, K, V]``.
    """
    # chunk-major and unbound once: indexing chunk n inside the loop would make autograd scatter into a
    # full-size zero tensor per chunk (quadratic in the number of chunks)
    decays = decay_BHNK1.movedim(2, 0).contiguous().unbind(0)
    writes = R_BHNKV.movedim(2, 0).contiguous().unbind(0)
    entering = []
    for decay_BHK1, R_BHKV in zip(decays, writes, strict=True):
        entering.append(S_BHKV)
        S_BHKV = torch.addcmul(R_BHKV, decay_BHK1, S_BHKV)
    return torch.stack(entering, dim=2), S_BHKV


def _lower_mask(size: int, inclusive: bool, device: torch.device) -> torch.Tensor:
    return torch.ones(size, size, dtype=torch.bool, device=device).tril(0 if inclusive else -1)


def _intra_per_head(q, k, v, Lq, L, inclusive: bool) -> torch.Tensor:
    """``((Q K^T) * D) V`` with ``D_ij = exp(Lq_i - L_j)`` on the causal pairs; ``Lq, L``: ``[..., C, 1]``."""
    C = q.shape[-2]
    exponent = Lq - L.transpose(-1, -2)  # [..., C, C]
    D = _decay(exponent).masked_fill(~_lower_mask(C, inclusive, q.device), 0.0)
    return ((q @ k.transpose(-1, -2)) * D) @ v


def _spans_within_limit(L, g, sub: int) -> bool:
    """Whether every block of ``sub`` tokens decays by less than ``e^SPLIT_LIMIT`` in every channel."""
    *lead, C, K = L.shape
    Lr = L.reshape(*lead, C // sub, sub, K)
    ref = (L - g).reshape(*lead, C // sub, sub, K)[..., :1, :]
    return bool((Lr[..., -1:, :] - ref).amin() >= -SPLIT_LIMIT)


def _intra_per_channel(q, k, v, g, L, Lq, sub: int, inclusive: bool) -> torch.Tensor:
    """The pair term for per-channel decays (see the module doc). Three regimes, exact in all:

    1. every chunk decays by less than ``e^SPLIT_LIMIT``: one matmul of split factors per chunk;
    2. every sub-chunk of ``sub`` tokens does: split matmuls on the diagonal sub-blocks, and the
       boundary split for earlier sub-chunks;
    3. otherwise: the diagonal sub-blocks in log space per channel (a ``[c, c, K]`` tensor per sub-chunk).

    ``q, k, g, L, Lq``: ``[..., C, K]``; ``v``: ``[..., C, V]``; ``sub`` divides C.
    """
    *lead, C, K = q.shape
    if _spans_within_limit(L, g, C):
        sub, split_blocks = C, True
    else:
        split_blocks = sub < C and _spans_within_limit(L, g, sub)
    V, n = v.shape[-1], C // sub
    qr, kr, vr, Lr, Lqr = (x.reshape(*lead, n, sub, x.shape[-1]) for x in (q, k, v, L, Lq))
    ref = (L - g).reshape(*lead, n, sub, K)[..., :1, :]  # [..., n, 1, K]: decay before each sub-chunk
    mask = _lower_mask(sub, inclusive, q.device)
    if split_blocks:
        # exp(Lq_i - r) <= 1 and 1 <= exp(r - L_j) <= e^SPLIT_LIMIT: no overflow, and no floor needed
        A_diag = (qr * (Lqr - ref).exp()) @ (kr * (ref - Lr).exp()).transpose(-1, -2)
        A_diag = A_diag.masked_fill(~mask, 0.0)
    else:
        # cumulative sums local to the sub-chunk: more precise than differences of chunk-level ones
        gr = g.reshape(*lead, n, sub, K)
        L_loc = gr.cumsum(-2)
        Lq_loc = L_loc if inclusive else L_loc - gr
        D = _decay(Lq_loc[..., :, None, :] - L_loc[..., None, :, :]).masked_fill(~mask[..., None], 0.0)
        A_diag = (qr[..., :, None, :] * kr[..., None, :, :] * D).sum(-1)  # [..., n, c, c]
    out = A_diag @ vr  # [..., n, c, V]
    if n > 1:
        # earlier sub-chunks: split at the start of the query's sub-chunk, both factors <= 1
        q_fac = qr * _decay(Lqr - ref)
        before = torch.arange(C, device=q.device)[None, :] < (torch.arange(n, device=q.device) * sub)[:, None]
        k_fac = k[..., None, :, :] * _decay(ref - L[..., None, :, :]).masked_fill(~before[..., None], 0.0)
        out = out + (q_fac @ k_fac.transpose(-1, -2)) @ v[..., None, :, :]  # [..., n, c, C] @ [..., 1, C, V]
    return out.reshape(*lead, C, V)


def chunk_gla(
    q_BTHK: torch.Tensor,
    k_BTHK: torch.Tensor,
    v_BTHV: torch.Tensor,
    g: torch.Tensor,
    u_HK: torch.Tensor | None = None,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
    sub_chunk_size: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked gated linear attention: ``(o_BTHV in v's dtype, final S_BHKV fp32)``; see the module doc.

    ``g``: log decay ``[B, T, H]`` (per head) or ``[B, T, H, K]`` (per key channel); ``u_HK``: RWKV-6 bonus
    or None; ``sub_chunk_size``: the secondary chunk of the per-channel path (``gcd`` with ``chunk_size``
    is used, so any pair works).
    """
    _check_size("chunk_size", chunk_size)
    _check_size("sub_chunk_size", sub_chunk_size)
    if g.ndim not in (3, 4):
        raise ValueError(f"g must be [B, T, H] or [B, T, H, K], got shape {tuple(g.shape)}")
    per_channel, inclusive = g.ndim == 4, u_HK is None
    B, T, H, K = q_BTHK.shape
    V, C = v_BTHV.shape[-1], chunk_size
    with torch.autocast(device_type=q_BTHK.device.type, enabled=False):
        # zero padding: k = 0 writes nothing and g = 0 decays nothing, so the final state is untouched
        q, k, v = (_chunked(x, C) for x in (q_BTHK, k_BTHK, v_BTHV))  # [B, H, N, C, K|V]
        g_ = _chunked(g if per_channel else g[..., None], C)  # [B, H, N, C, K|1]
        L = g_.cumsum(-2)
        Lq = L if inclusive else L - g_
        L_last = L[..., -1:, :]
        # inter-chunk: read the entering state, then carry it
        R_BHNKV = (k * _decay(L_last - L)).transpose(-1, -2) @ v
        if initial_state is None:
            S0_BHKV = torch.zeros(B, H, K, V, device=q.device, dtype=torch.float32)
        else:
            S0_BHKV = initial_state.float()
        S_in_BHNKV, S_BHKV = _carry_state(_decay(L_last).transpose(-1, -2), R_BHNKV, S0_BHKV)
        out = (q * _decay(Lq)) @ S_in_BHNKV
        # intra-chunk pairs
        if per_channel:
            out = out + _intra_per_channel(q, k, v, g_, L, Lq, math.gcd(C, sub_chunk_size), inclusive)
        else:
            out = out + _intra_per_head(q, k, v, Lq, L, inclusive)
        if u_HK is not None:  # the bonus: (q_i . (u * k_i)) v_i
            out = out + (q * u_HK.float()[None, :, None, None, :] * k).sum(-1, keepdim=True) * v
        o_BTHV = out.reshape(B, H, -1, V)[:, :, :T].transpose(1, 2)
    return o_BTHV.to(v_BTHV.dtype), S_BHKV


def chunk_gla_flops_per_token(
    key_dim: int, value_dim: int, *, chunk_size: int = 64, bonus: bool = False
) -> int:
    """Forward flops per token and head of ``chunk_gla`` in its usual regime: ``2C(K + V)`` for the
    intra-chunk pair matmuls, ``4KV`` for reading and writing the state, ``2KV / C`` for the carried decay,
    ``3K + 2V`` for a bonus. Flat in the sequence length."""
    K, V, C = key_dim, value_dim, chunk_size
    return 2 * C * (K + V) + 4 * K * V + (2 * K * V) // C + (3 * K + 2 * V if bonus else 0)
