"""``chunk_gla`` through the optional flash-linear-attention package (``fla``), as a comparison backend
for ``kernels.dispatch`` (``CEILING_KERNELS=fla``). Same signature, layout and results as
:func:`kernels.gla.chunk.chunk_gla`; fla is imported only when called (CUDA only).

The mapping, checked against fla's naive references (``naive_recurrent_gla``, ``naive_recurrent_rwkv6``):
both use ``[B, T, H, K]`` inputs, a ``[B, H, K, V]`` state and log decays; ours applies no scale (callers
pre-scale ``q``), so ``scale=1.0`` is passed. Per case:

- per-head decay, no bonus: ``fla.ops.simple_gla.chunk_simple_gla`` (``g: [B, T, H]``);
- per-channel decay, no bonus: ``fla.ops.gla.chunk_gla`` (inclusive read ``o_t = S_t^T q_t``);
- bonus ``u_HK`` (exclusive read plus ``(q . (u * k)) v``): ``fla.ops.rwkv6.chunk_rwkv6``, a per-head
  decay expanded over the key channels (the same recurrence).

``chunk_size`` and ``sub_chunk_size`` are accepted and ignored: fla picks its own chunking, and the
result does not depend on it.
"""

from __future__ import annotations

import torch

__all__ = ["chunk_gla"]


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
    """Gated linear attention by fla: ``(o_BTHV in v's dtype, final S_BHKV fp32)``."""
    if g.ndim not in (3, 4):
        raise ValueError(f"g must be [B, T, H] or [B, T, H, K], got shape {tuple(g.shape)}")
    s0 = initial_state.float() if initial_state is not None else None
    common = {"scale": 1.0, "initial_state": s0, "output_final_state": True}
    if u_HK is not None:
        from fla.ops.rwkv6 import chunk_rwkv6

        w = g if g.ndim == 4 else g[..., None].expand_as(k_BTHK)
        o, state = chunk_rwkv6(r=q_BTHK, k=k_BTHK, v=v_BTHV, w=w, u=u_HK, **common)
    elif g.ndim == 3:
        from fla.ops.simple_gla import chunk_simple_gla

        o, state = chunk_simple_gla(q=q_BTHK, k=k_BTHK, v=v_BTHV, g=g, **common)
    else:
        from fla.ops.gla import chunk_gla as fla_chunk_gla

        o, state = fla_chunk_gla(q=q_BTHK, k=k_BTHK, v=v_BTHV, g=g, **common)
    return o.to(v_BTHV.dtype), state.float()
