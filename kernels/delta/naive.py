"""fp32 token-by-token references (the spec) for the delta-rule family.

State layout: ``S_BHKV`` (key rows, value columns); the output reads ``o_t = S_t^T q_t``. Every tensor
argument is ``[B, T, H, *]``; the references compute in fp32 and return ``(o_BTHV, S_BHKV)``.

**Gated delta rule** (Yang, Kautz & Hatamizadeh 2024, "Gated Delta Networks", eq. 10; fla
``fla/ops/gated_delta_rule``), with a scalar log decay ``g_t <= 0`` and write strength ``beta_t`` per head::

    S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T
        = exp(g_t) S_{t-1} + k_t u_t^T,   u_t = beta_t (v_t - exp(g_t) S_{t-1}^T k_t)
    o_t = S_t^T q_t

(the paper writes the transpose, ``S_t = S_{t-1} alpha_t (I - beta_t k_t k_t^T) + beta_t v_t k_t^T``,
``o_t = S_t q_t``, with ``S`` as ``[V, K]``).

**Generalised delta rule** (RWKV-7 "Goose", Peng et al. 2025; fla ``fla/ops/rwkv7``,
``generalized_delta_rule``): a diagonal-plus-rank-one transition with a per-key-channel log decay
``w_t <= 0``, a read vector ``a_t`` and a write vector ``b_t``::

    S_t = (diag(exp(w_t)) + b_t a_t^T) S_{t-1} + k_t v_t^T
        = diag(exp(w_t)) S_{t-1} + b_t x_t^T + k_t v_t^T,   x_t = S_{t-1}^T a_t
    o_t = S_t^T r_t

This is the transpose of the official RWKV-7 kernel's ``S_t = S_{t-1} (diag(w_t) + a_t b_t^T) + v_t k_t^T``
(``S`` as ``[V, K]``, ``o_t = S_t r_t``); RWKV-7 calls it with ``a = -kk``, ``b = kk * iclr`` so that
``diag(w) - kk (iclr * kk)^T`` removes the old value stored under the normalised key ``kk``.
"""

from __future__ import annotations

import torch


def _initial_state(
    initial_state: torch.Tensor | None, B: int, H: int, K: int, V: int, device: torch.device
) -> torch.Tensor:
    if initial_state is None:
        return torch.zeros(B, H, K, V, device=device, dtype=torch.float32)
    return initial_state.float()


# -- gated delta rule -----------------------------------------------------------------------------------


def gated_delta_rule_step(
    q_BHK: torch.Tensor,
    k_BHK: torch.Tensor,
    v_BHV: torch.Tensor,
    g_BH: torch.Tensor,
    beta_BH: torch.Tensor,
    S_BHKV: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token of the gated delta rule in fp32: returns ``(o_BHV, S_BHKV)`` (the new state)."""
    q_BHK, k_BHK, v_BHV, g_BH, beta_BH = (x.float() for x in (q_BHK, k_BHK, v_BHV, g_BH, beta_BH))
    S_BHKV = S_BHKV.float() * g_BH.exp()[..., None, None]  # decay first: the delta reads alpha S
    recalled_BHV = torch.einsum("bhk,bhkv->bhv", k_BHK, S_BHKV)
    u_BHV = beta_BH[..., None] * (v_BHV - recalled_BHV)
    S_BHKV = S_BHKV + k_BHK[..., :, None] * u_BHV[..., None, :]
    o_BHV = torch.einsum("bhk,bhkv->bhv", q_BHK, S_BHKV)
    return o_BHV, S_BHKV


def gated_delta_rule_ref(
    q_BTHK: torch.Tensor,
    k_BTHK: torch.Tensor,
    v_BTHV: torch.Tensor,
    g_BTH: torch.Tensor,
    beta_BTH: torch.Tensor,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-by-token gated delta rule: ``(o_BTHV, final S_BHKV)``, both fp32.

    ``g_BTH``: log decay (``alpha_t = exp(g_t)``); ``beta_BTH``: write strength in [0, 1] (sigmoid);
    ``initial_state``: ``[B, H, K, V]`` or None (zeros).
    """
    B, _, H, K = q_BTHK.shape
    V = v_BTHV.shape[-1]
    S_BHKV = _initial_state(initial_state, B, H, K, V, q_BTHK.device)
    outputs = []
    # unbind (not x[:, t]) so autograd's backward stays linear in T
    for q_BHK, k_BHK, v_BHV, g_BH, beta_BH in zip(
        *(x.unbind(1) for x in (q_BTHK, k_BTHK, v_BTHV, g_BTH, beta_BTH)), strict=True
    ):
        o_BHV, S_BHKV = gated_delta_rule_step(q_BHK, k_BHK, v_BHV, g_BH, beta_BH, S_BHKV)
        outputs.append(o_BHV)
    return torch.stack(outputs, dim=1), S_BHKV


# -- generalised delta rule (RWKV-7) ----------------------------------------------------------------------


def generalized_delta_rule_step(
    r_BHK: torch.Tensor,
    w_BHK: torch.Tensor,
    k_BHK: torch.Tensor,
    v_BHV: torch.Tensor,
    a_BHK: torch.Tensor,
    b_BHK: torch.Tensor,
    S_BHKV: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token of the generalised delta rule in fp32: returns ``(o_BHV, S_BHKV)`` (the new state)."""
    r_BHK, w_BHK, k_BHK, v_BHV, a_BHK, b_BHK = (x.float() for x in (r_BHK, w_BHK, k_BHK, v_BHV, a_BHK, b_BHK))
    S_BHKV = S_BHKV.float()
    x_BHV = torch.einsum("bhk,bhkv->bhv", a_BHK, S_BHKV)  # read with a (RWKV-7: -kk)
    S_BHKV = (
        w_BHK.exp()[..., :, None] * S_BHKV
        + b_BHK[..., :, None] * x_BHV[..., None, :]  # write back along b (RWKV-7: kk * iclr)
        + k_BHK[..., :, None] * v_BHV[..., None, :]
    )
    o_BHV = torch.einsum("bhk,bhkv->bhv", r_BHK, S_BHKV)
    return o_BHV, S_BHKV


def generalized_delta_rule_ref(
    r_BTHK: torch.Tensor,
    w_BTHK: torch.Tensor,
    k_BTHK: torch.Tensor,
    v_BTHV: torch.Tensor,
    a_BTHK: torch.Tensor,
    b_BTHK: torch.Tensor,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-by-token generalised delta rule: ``(o_BTHV, final S_BHKV)``, both fp32.

    ``w_BTHK``: per-channel log decay (<= 0); ``a``/``b``: read/write vectors of the rank-one term;
    ``initial_state``: ``[B, H, K, V]`` or None (zeros).
    """
    B, _, H, K = r_BTHK.shape
    V = v_BTHV.shape[-1]
    S_BHKV = _initial_state(initial_state, B, H, K, V, r_BTHK.device)
    outputs = []
    for r_BHK, w_BHK, k_BHK, v_BHV, a_BHK, b_BHK in zip(
        *(x.unbind(1) for x in (r_BTHK, w_BTHK, k_BTHK, v_BTHV, a_BTHK, b_BTHK)), strict=True
    ):
        o_BHV, S_BHKV = generalized_delta_rule_step(r_BHK, w_BHK, k_BHK, v_BHV, a_BHK, b_BHK, S_BHKV)
        outputs.append(o_BHV)
    return torch.stack(outputs, dim=1), S_BHKV
