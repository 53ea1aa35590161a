"""fp32 token-by-token reference (the spec) for gated linear attention with a diagonal decay.

State layout ``S_BHKV`` (key rows, value columns), as in :mod:`kernels.delta`. Every sequence argument is
``[B, T, H, *]``; ``g`` is the LOG decay (``<= 0``), either one per head ``[B, T, H]`` (RetNet's fixed
``log(1 - 2^(-5-h))``, Mamba-2's ``dt * A``) or one per key channel ``[B, T, H, K]`` (GLA's
``logsigmoid(.) / 16``, RWKV-6's ``-exp(w)``).

**Without a bonus** (``u_HK is None``: RetNet, GLA, Mamba-2; fla ``naive_recurrent_gla``)::

    S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T
    o_t = S_t^T q_t                                   (the current token is read with weight 1)

**With a bonus** ``u_HK`` (RWKV-6 "Finch"; the official ``wkv6`` kernel, fla ``naive_recurrent_rwkv6``)
the output reads the state *before* this token's write and decay, plus the current token through ``u``::

    o_t = (S_{t-1} + diag(u) k_t v_t^T)^T q_t
    S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T

No scaling is applied to ``q``: callers pass it pre-scaled (``K^-1/2`` for RetNet and GLA, 1 for RWKV-6).
"""

from __future__ import annotations

import torch


def _decay_factor(g: torch.Tensor) -> torch.Tensor:
    """``exp(g)`` shaped to multiply ``S_BHKV``: ``[B, H] -> [B, H, 1, 1]``, ``[B, H, K] -> [B, H, K, 1]``."""
    decay = g.float().exp()
    return decay[..., None, None] if decay.ndim == 2 else decay[..., None]


def gla_step(
    q_BHK: torch.Tensor,
    k_BHK: torch.Tensor,
    v_BHV: torch.Tensor,
    g: torch.Tensor,
    S_BHKV: torch.Tensor,
    u_HK: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token in fp32: returns ``(o_BHV, new S_BHKV)``. ``g``: ``[B, H]`` or ``[B, H, K]`` log decay."""
    q_BHK, k_BHK, v_BHV = q_BHK.float(), k_BHK.float(), v_BHV.float()
    kv_BHKV = k_BHK[..., :, None] * v_BHV[..., None, :]
    decayed_BHKV = _decay_factor(g) * S_BHKV.float()
    if u_HK is None:
        S_BHKV = decayed_BHKV + kv_BHKV
        return torch.einsum("bhk,bhkv->bhv", q_BHK, S_BHKV), S_BHKV
    read_BHKV = S_BHKV.float() + u_HK.float()[..., None] * kv_BHKV
    return torch.einsum("bhk,bhkv->bhv", q_BHK, read_BHKV), decayed_BHKV + kv_BHKV


def gla_ref(
    q_BTHK: torch.Tensor,
    k_BTHK: torch.Tensor,
    v_BTHV: torch.Tensor,
    g: torch.Tensor,
    u_HK: torch.Tensor | None = None,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-by-token gated linear attention: ``(o_BTHV, final S_BHKV)``, both fp32.

    ``g``: log decay ``[B, T, H]`` or ``[B, T, H, K]``; ``u_HK``: RWKV-6 bonus or None;
    ``initial_state``: ``[B, H, K, V]`` or None (zeros).
    """
    if g.ndim not in (3, 4):
        raise ValueError(f"g must be [B, T, H] or [B, T, H, K], got shape {tuple(g.shape)}")
    B, _, H, K = q_BTHK.shape
    V = v_BTHV.shape[-1]
    if initial_state is None:
        S_BHKV = torch.zeros(B, H, K, V, device=q_BTHK.device, dtype=torch.float32)
    else:
        S_BHKV = initial_state.float()
    outputs = []
    # unbind (not x[:, t]) so autograd's backward stays linear in T
    for q_BHK, k_BHK, v_BHV, g_t in zip(*(x.unbind(1) for x in (q_BTHK, k_BTHK, v_BTHV, g)), strict=True):
        o_BHV, S_BHKV = gla_step(q_BHK, k_BHK, v_BHV, g_t, S_BHKV, u_HK)
        outputs.append(o_BHV)
    return torch.stack(outputs, dim=1), S_BHKV
