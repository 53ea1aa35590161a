"""The delta-rule ops through the optional flash-linear-attention package (``fla``), as a comparison
backend for ``kernels.dispatch`` (``CEILING_KERNELS=fla``). Same signatures, layouts and results as
:mod:`kernels.delta.chunk`; fla is imported only when called (CUDA only).

The mapping, checked against fla's naive references: inputs ``[B, T, H, *]``, state ``[B, H, K, V]``,
log decays, and ``scale=1.0`` (ours applies none; callers pre-scale ``q``/``r``).

- ``chunk_gated_delta_rule`` -> ``fla.ops.gated_delta_rule.chunk_gated_delta_rule`` (``g``, ``beta``
  per head; ``S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T``, no in-kernel q/k norm).
- ``chunk_generalized_delta_rule`` -> ``fla.ops.generalized_delta_rule.chunk_dplr_delta_rule`` with
  ``gk = w`` (log decay) and the same ``a`` (read) and ``b`` (write): its recurrence
  ``S_t = diag(exp(gk_t)) S_{t-1} + b_t (S_{t-1}^T a_t)^T + k_t v_t^T`` is ours. (``chunk_rwkv7`` wraps
  the same op but has taken ``w`` in different conventions across fla versions, so it is not used.)

``chunk_size`` is accepted and ignored: fla picks its own chunking, and the result does not depend on it.
"""

from __future__ import annotations

import torch

__all__ = ["chunk_gated_delta_rule", "chunk_generalized_delta_rule"]


def chunk_gated_delta_rule(
    q_BTHK: torch.Tensor,
    k_BTHK: torch.Tensor,
    v_BTHV: torch.Tensor,
    g_BTH: torch.Tensor,
    beta_BTH: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gated delta rule by fla: ``(o_BTHV in v's dtype, final S_BHKV fp32)``."""
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule as fla_gated_delta_rule

    o, state = fla_gated_delta_rule(
        q=q_BTHK,
        k=k_BTHK,
        v=v_BTHV,
        g=g_BTH,
        beta=beta_BTH,
        scale=1.0,
        initial_state=initial_state.float() if initial_state is not None else None,
        output_final_state=True,
    )
    return o.to(v_BTHV.dtype), state.float()


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
    """Generalised delta rule (RWKV-7) by fla: ``(o_BTHV in v's dtype, final S_BHKV fp32)``."""
    from fla.ops.generalized_delta_rule import chunk_dplr_delta_rule

    o, state = chunk_dplr_delta_rule(
        q=r_BTHK,
        k=k_BTHK,
        v=v_BTHV,
        a=a_BTHK,
        b=b_BTHK,
        gk=w_BTHK,
        scale=1.0,
        initial_state=initial_state.float() if initial_state is not None else None,
        output_final_state=True,
    )
    return o.to(v_BTHV.dtype), state.float()
