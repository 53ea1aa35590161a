"""Blocked forms of local causal attention that never build a ``T x T`` matrix (see ``naive.py`` for the
semantics, shapes and state).

- ``sliding_window_attention``: the sequence is cut into blocks of ``chunk_size`` queries; block ``n``
  attends the keys of itself and the ``ceil((window - 1) / chunk_size)`` blocks before it (one strided
  ``unfold`` view), masked to the window. Scores are ``[.., chunk_size, (n_prev + 1) * chunk_size]`` per
  block: memory and work per token depend on the window, not on ``T``.
- ``chunk_attention`` (Mega): chunks are independent; a ``[chunk, chunk]`` causal softmax per chunk.

Both compute in fp32, accept any ``T`` (padding the last block; padded keys sit in every real query's
future, so the causal mask hides them) and an ``initial_state``, and return the final state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels.local_attention.naive import _empty_state


def _with_state(prev_BGSX: torch.Tensor, new_BGTX: torch.Tensor) -> torch.Tensor:
    """The state's keys (or values) followed by the new ones, fp32 (no copy when the state is empty)."""
    if prev_BGSX.shape[2] == 0:
        return new_BGTX.float()
    return torch.cat([prev_BGSX.float(), new_BGTX.float()], dim=2)


def _pad_time(x_BGTX: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Zero-pad the time axis (dim 2); no copy when there is nothing to pad."""
    return F.pad(x_BGTX, (0, 0, before, after)) if before or after else x_BGTX


SEGMENT_ELEMENTS = 1 << 20  # scores per segment of blocks (4 MB fp32): flat cost per token in T


def _softmax_attend(q_BGRNIK, k_BGNJK, v_BGNJV, allowed_NIJ, scale, bias_IJ=None):
    """Blocked attention, fp32: queries ``[.., N blocks, I, K]`` against keys ``[.., N, J, K]``.

    Runs over segments of blocks whose score tensors stay a few MB: very large fresh tensors cost page
    faults and cache misses, which would make the cost per token grow with T. Without a bias each
    segment is one ``scaled_dot_product_attention`` call (blocks as the batch, the R query heads sharing
    a key as its heads, the window as a boolean mask): PyTorch's fused CPU kernel scales, masks and
    softmaxes scores tile by tile, 3-5x faster than separate einsum / mask / softmax passes with their
    layout copies. With a (learned) bias, the explicit form, whose gradient reaches the bias.
    """
    B, G, R, _, n_queries, _ = q_BGRNIK.shape
    n_keys = k_BGNJK.shape[3]
    per_segment = max(1, SEGMENT_ELEMENTS // (B * G * R * n_queries * n_keys))
    # split (not slicing in a loop): its backward is one concatenation, not a zero-filled copy per segment
    q_parts = q_BGRNIK.split(per_segment, dim=3)
    k_parts, v_parts = k_BGNJK.split(per_segment, dim=2), v_BGNJV.split(per_segment, dim=2)
    allowed_parts = (
        allowed_NIJ.split(per_segment) if allowed_NIJ.shape[0] > 1 else [allowed_NIJ] * len(q_parts)
    )
    outputs = []
    for q, k, v, allowed in zip(q_parts, k_parts, v_parts, allowed_parts, strict=True):
        if bias_IJ is None:
            outputs.append(_fused_attend(q, k, v, allowed, scale))
            continue
        scores = torch.einsum("bgrnik,bgnjk->bgrnij", q, k) * scale
        scores = scores + bias_IJ
        scores = scores.masked_fill(~allowed, float("-inf"))
        outputs.append(torch.einsum("bgrnij,bgnjv->bgrniv", torch.softmax(scores, dim=-1), v))
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=3)


def _fused_attend(q_BGRNIK, k_BGNJK, v_BGNJV, allowed_NIJ, scale):
    """``softmax(q k^T scale, masked to allowed) v`` per block by ``F.scaled_dot_product_attention``, fp32."""
    B, G, R, N, n_queries, K = q_BGRNIK.shape
    n_keys, V = k_BGNJK.shape[3], v_BGNJV.shape[-1]
    X = B * G * N  # the blocks of every sequence and key group: the batch of the fused call
    q_XRIK = q_BGRNIK.permute(0, 1, 3, 2, 4, 5).reshape(X, R, n_queries, K)
    k_XRJK = k_BGNJK.reshape(X, 1, n_keys, K).expand(-1, R, -1, -1)
    v_XRJV = v_BGNJV.reshape(X, 1, n_keys, V).expand(-1, R, -1, -1)
    mask_X1IJ = (
        allowed_NIJ.expand(N, n_queries, n_keys).expand(B * G, -1, -1, -1).reshape(X, 1, n_queries, n_keys)
    )
    with torch.autocast(q_BGRNIK.device.type, enabled=False):  # fp32 whatever the caller's autocast
        o_XRIV = F.scaled_dot_product_attention(q_XRIK, k_XRJK, v_XRJV, attn_mask=mask_X1IJ, scale=scale)
    return o_XRIV.reshape(B, G, N, R, n_queries, V).permute(0, 1, 3, 2, 4, 5)


def sliding_window_attention(
    q_BHTK, k_BGTK, v_BGTV, *, window: int, scale=None, initial_state=None, chunk_size: int = 64
):
    """Sliding-window causal attention, blocked. Returns ``(o_BHTV fp32, (k_BGSK, v_BGSV))``."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    B, H, T, K = q_BHTK.shape
    G, V = k_BGTK.shape[1], v_BGTV.shape[-1]
    scale = K**-0.5 if scale is None else scale
    k_prev, v_prev = _empty_state(k_BGTK, v_BGTV) if initial_state is None else initial_state
    S = k_prev.shape[2]
    if S > window - 1:
        raise ValueError(f"a window state holds at most window - 1 = {window - 1} tokens, got {S}")
    k_all, v_all = _with_state(k_prev, k_BGTK), _with_state(v_prev, v_BGTV)
    keep = max(0, S + T - (window - 1))
    final_state = (k_all[:, :, keep:], v_all[:, :, keep:])
    if T == 0:
        return q_BHTK.new_zeros(B, H, 0, V, dtype=torch.float32), final_state

    block = max(1, min(chunk_size, window, T))  # longer blocks would only score keys outside the window
    n_prev = -(-(window - 1) // block)  # look-back blocks that can hold keys within the window
    pad = (-T) % block
    n_blocks = (T + pad) // block
    span = (n_prev + 1) * block
    # keys at positions -n_prev*block .. T+pad-1 (0 = first new token); the state fills -S..-1
    k_pad = _pad_time(k_all, n_prev * block - S, pad)
    v_pad = _pad_time(v_all, n_prev * block - S, pad)
    k_BGNJK = k_pad.unfold(2, span, block).transpose(-1, -2)
    v_BGNJV = v_pad.unfold(2, span, block).transpose(-1, -2)
    q_BGRNIK = _pad_time(q_BHTK.float(), 0, pad).reshape(B, G, H // G, n_blocks, block, K)

    i_I1 = torch.arange(block, device=q_BHTK.device)[:, None]
    j_1J = torch.arange(span, device=q_BHTK.device)[None, :]
    lag_IJ = n_prev * block + i_I1 - j_1J  # query position - key position
    key_pos_NJ = (torch.arange(n_blocks, device=q_BHTK.device)[:, None] - n_prev) * block + j_1J
    allowed_NIJ = ((lag_IJ >= 0) & (lag_IJ < window))[None] & (key_pos_NJ >= -S)[:, None, :]
    o = _softmax_attend(q_BGRNIK, k_BGNJK, v_BGNJV, allowed_NIJ, scale)
    return o.reshape(B, H, n_blocks * block, V)[:, :, :T], final_state


def chunk_attention(q_BHTK, k_BGTK, v_BGTV, *, chunk: int, scale=None, rel_bias=None, initial_state=None):
    """Chunk-local causal attention with a relative-position bias. ``(o_BHTV fp32, (k_BGSK, v_BGSV))``."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    B, H, T, K = q_BHTK.shape
    G, V = k_BGTK.shape[1], v_BGTV.shape[-1]
    scale = K**-0.5 if scale is None else scale
    k_prev, v_prev = _empty_state(k_BGTK, v_BGTV) if initial_state is None else initial_state
    S = k_prev.shape[2]
    if S >= chunk:
        raise ValueError(f"a chunk state holds fewer than chunk={chunk} tokens, got {S}")
    k_all, v_all = _with_state(k_prev, k_BGTK), _with_state(v_prev, v_BGTV)
    L = S + T
    keep = (L // chunk) * chunk
    final_state = (k_all[:, :, keep:], v_all[:, :, keep:])
    if T == 0:
        return q_BHTK.new_zeros(B, H, 0, V, dtype=torch.float32), final_state

    C = min(chunk, L)  # a sequence shorter than one chunk is one (partial) chunk: no padding
    pad = (-L) % C
    n_chunks = (L + pad) // C
    # the S state tokens get dummy queries (zeros) so every chunk is aligned; their outputs are dropped
    q_BGRNIK = _pad_time(q_BHTK.float(), S, pad).reshape(B, G, H // G, n_chunks, C, K)
    k_BGNJK = _pad_time(k_all, 0, pad).reshape(B, G, n_chunks, C, K)
    v_BGNJV = _pad_time(v_all, 0, pad).reshape(B, G, n_chunks, C, V)
    lag_IJ = torch.arange(C, device=q_BHTK.device)[:, None] - torch.arange(C, device=q_BHTK.device)[None, :]
    bias_IJ = None if rel_bias is None else rel_bias.float()[lag_IJ.clamp(min=0)]
    o = _softmax_attend(q_BGRNIK, k_BGNJK, v_BGNJV, (lag_IJ >= 0)[None], scale, bias_IJ)
    return o.reshape(B, H, n_chunks * C, V)[:, :, S : S + T], final_state
