"""References for local causal softmax attention, fp32, one query at a time (the spec).

Two kinds of locality:

- **sliding window** (Griffin's local attention): the query at position ``t`` attends the keys at
  ``t - window + 1 .. t`` (``window`` keys, itself included).
- **chunked** (Mega): the sequence is cut into chunks of ``chunk`` tokens; a query attends the keys of
  its own chunk up to itself, plus ``rel_bias[i - j]`` (a learned bias per offset) on its scores.

Shapes: ``q_BHTK``, ``k_BGTK``, ``v_BGTV`` with ``G`` key/value heads dividing ``H`` query heads (``G = 1``
is multi-query attention). ``scale`` defaults to ``K ** -0.5``.

State (for continuing a sequence): ``(k_BGSK, v_BGSV)``, the keys and values a later query can still
see: the last ``min(window - 1, seen)`` tokens for the sliding window, the tokens of the unfinished
chunk for chunked attention. ``initial_state=None`` is the empty state; both functions return
``(o_BHTV, final_state)``. ``masked_attention_ref`` is the same attention as one masked ``T x T`` softmax,
a second, independent spec for small ``T``.
"""

from __future__ import annotations

import torch


def _empty_state(k_BGTK: torch.Tensor, v_BGTV: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    B, G, _, K = k_BGTK.shape
    return k_BGTK.new_zeros(B, G, 0, K), v_BGTV.new_zeros(B, G, 0, v_BGTV.shape[-1])


def _attend_one(q_BHK, k_BGSK, v_BGSV, scale, bias_S=None):
    """One query per (batch, head) against the keys given: softmax(q.k * scale + bias) @ v, fp32."""
    H, G = q_BHK.shape[1], k_BGSK.shape[1]
    k_BHSK = k_BGSK.float().repeat_interleave(H // G, dim=1)
    v_BHSV = v_BGSV.float().repeat_interleave(H // G, dim=1)
    scores_BHS = torch.einsum("bhk,bhsk->bhs", q_BHK.float(), k_BHSK) * scale
    if bias_S is not None:
        scores_BHS = scores_BHS + bias_S.float()
    return torch.einsum("bhs,bhsv->bhv", torch.softmax(scores_BHS, dim=-1), v_BHSV)


def sliding_window_attention_ref(q_BHTK, k_BGTK, v_BGTV, *, window: int, scale=None, initial_state=None):
    """Each query attends its last ``window`` keys (itself included). Returns ``(o_BHTV, (k, v))``."""
    scale = q_BHTK.shape[-1] ** -0.5 if scale is None else scale
    k_prev, v_prev = _empty_state(k_BGTK, v_BGTV) if initial_state is None else initial_state
    k_all = torch.cat([k_prev.float(), k_BGTK.float()], dim=2)
    v_all = torch.cat([v_prev.float(), v_BGTV.float()], dim=2)
    S, T = k_prev.shape[2], q_BHTK.shape[2]
    outputs = []
    for t in range(T):
        end = S + t + 1  # keys [end - window, end) of the concatenated sequence
        start = max(0, end - window)
        outputs.append(_attend_one(q_BHTK[:, :, t], k_all[:, :, start:end], v_all[:, :, start:end], scale))
    keep = max(0, S + T - (window - 1))
    return torch.stack(outputs, dim=2), (k_all[:, :, keep:], v_all[:, :, keep:])


def chunk_attention_ref(q_BHTK, k_BGTK, v_BGTV, *, chunk: int, scale=None, rel_bias=None, initial_state=None):
    """Each query attends its own chunk up to itself, plus ``rel_bias[i - j]``. ``(o_BHTV, (k, v))``.

    With an ``initial_state`` of ``S`` tokens (``S < chunk``) the new tokens continue that chunk.
    """
    scale = q_BHTK.shape[-1] ** -0.5 if scale is None else scale
    k_prev, v_prev = _empty_state(k_BGTK, v_BGTV) if initial_state is None else initial_state
    k_all = torch.cat([k_prev.float(), k_BGTK.float()], dim=2)
    v_all = torch.cat([v_prev.float(), v_BGTV.float()], dim=2)
    S, T = k_prev.shape[2], q_BHTK.shape[2]
    if S >= chunk:
        raise ValueError(f"a chunk state holds fewer than chunk={chunk} tokens, got {S}")
    outputs = []
    for t in range(T):
        i = S + t  # position in the concatenated sequence
        start = (i // chunk) * chunk
        bias_S = None if rel_bias is None else rel_bias[: i - start + 1].flip(0)  # offsets i-j, j=start..i
        outputs.append(
            _attend_one(
                q_BHTK[:, :, t], k_all[:, :, start : i + 1], v_all[:, :, start : i + 1], scale, bias_S
            )
        )
    keep = ((S + T) // chunk) * chunk
    return torch.stack(outputs, dim=2), (k_all[:, :, keep:], v_all[:, :, keep:])


def masked_attention_ref(q_BHTK, k_BGTK, v_BGTV, *, window=None, chunk=None, scale=None, rel_bias=None):
    """Full ``T x T`` masked softmax attention (no state): sliding window or chunked, for small ``T``."""
    B, H, T, K = q_BHTK.shape
    scale = K**-0.5 if scale is None else scale
    groups = H // k_BGTK.shape[1]
    k_BHTK = k_BGTK.float().repeat_interleave(groups, dim=1)
    v_BHTV = v_BGTV.float().repeat_interleave(groups, dim=1)
    i_T1 = torch.arange(T)[:, None]
    j_1T = torch.arange(T)[None, :]
    allowed_TT = j_1T <= i_T1
    if window is not None:
        allowed_TT &= i_T1 - j_1T < window
    if chunk is not None:
        allowed_TT &= i_T1 // chunk == j_1T // chunk
    scores_BHTT = torch.einsum("bhik,bhjk->bhij", q_BHTK.float(), k_BHTK) * scale
    if rel_bias is not None:
        offsets_TT = (i_T1 - j_1T).clamp(0, rel_bias.shape[0] - 1)
        scores_BHTT = scores_BHTT + rel_bias.float()[offsets_TT]
    scores_BHTT = scores_BHTT.masked_fill(~allowed_TT, float("-inf"))
    return torch.einsum("bhij,bhjv->bhiv", torch.softmax(scores_BHTT, dim=-1), v_BHTV), None
