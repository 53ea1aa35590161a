"""Prefill (and training) throughput against the sequence length, from the models' chunked forms.

One forward pass over ``[batch, L]`` random tokens (``backward=True``: forward + backward of the next-token
loss, what a training step costs without the optimizer), timed with ``time.perf_counter``, median of
``repeats`` after one untimed warm-up at the shortest length. Tokens per second = ``batch x L / seconds``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from orchestrator.efficiency.decode import random_tokens, synchronize


def _forward_seconds(model: Any, tokens_BT: torch.Tensor) -> float:
    with torch.inference_mode():
        synchronize(tokens_BT.device)
        start = time.perf_counter()
        model(tokens_BT)
        synchronize(tokens_BT.device)
        return time.perf_counter() - start


def _forward_backward_seconds(model: Any, tokens_BT: torch.Tensor) -> float:
    synchronize(tokens_BT.device)
    start = time.perf_counter()
    logits_BTV = model(tokens_BT[:, :-1])
    loss = F.cross_entropy(logits_BTV.flatten(0, 1).float(), tokens_BT[:, 1:].flatten())
    loss.backward()
    synchronize(tokens_BT.device)
    seconds = time.perf_counter() - start
    model.zero_grad(set_to_none=True)  # leave the model as it came: no gradients held
    return seconds


def measure_prefill(
    model: Any, *, seq_lens: Sequence[int], batch: int = 1, repeats: int = 3, backward: bool = False
) -> dict[int, float]:
    """Tokens per second at each length in ``seq_lens`` (forward only, or forward + backward)."""
    if not seq_lens:
        raise ValueError("seq_lens must name at least one length, e.g. (512, 2048)")
    for name, value in (("batch", batch), ("repeats", repeats), *(("seq_lens", n) for n in seq_lens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must hold positive ints, got {value!r}")
    device = next(model.parameters()).device
    vocab_size = model.config.vocab_size
    time_one = _forward_backward_seconds if backward else _forward_seconds
    # backward needs L + 1 tokens (inputs and shifted targets) for L positions of work
    extra = 1 if backward else 0
    lengths = sorted(set(seq_lens))
    time_one(model, random_tokens(vocab_size, batch, lengths[0] + extra, seed=0).to(device))  # warm-up
    throughput: dict[int, float] = {}
    for length in lengths:
        tokens_BT = random_tokens(vocab_size, batch, length + extra, seed=length).to(device)
        seconds = statistics.median(time_one(model, tokens_BT) for _ in range(repeats))
        throughput[length] = batch * length / seconds
    return throughput
