"""Deterministic batches: the data a step sees depends only on (data seed, step), never on workers.

A global batch of ``sequences_per_step`` windows is drawn for each optimizer step; worker ``rank`` of
``world`` takes an interleaved share and splits it into micro-batches. So a 2-worker trial sees exactly
the sequences a 1-worker trial with twice the gradient accumulation sees, every architecture in a study
sees the same data order, and a resumed trial continues where it stopped without saving a data cursor.
"""

from __future__ import annotations

import numpy as np
import torch


class TrainBatches:
    def __init__(self, tokens: np.ndarray, seq_len: int, sequences_per_step: int, seed: int):
        if len(tokens) <= seq_len + 1:
            raise ValueError(
                f"train split has {len(tokens)} tokens, fewer than data.seq_len + 2 ({seq_len + 2})"
            )
        self.tokens = tokens
        self.seq_len = seq_len
        self.sequences_per_step = sequences_per_step
        self.seed = seed

    def starts(self, step: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, step])
        return rng.integers(0, len(self.tokens) - self.seq_len - 1, size=self.sequences_per_step)

    def micro_batches(
        self, step: int, rank: int, world: int, micro_batch_size: int
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This worker's micro-batches ``(inputs[B,T], targets[B,T])`` for optimizer step ``step``."""
        mine = self.starts(step)[rank::world]
        windows = np.stack([np.asarray(self.tokens[s : s + self.seq_len + 1], dtype=np.int64) for s in mine])
        windows_BT1 = torch.from_numpy(windows)
        return [
            (windows_BT1[i : i + micro_batch_size, :-1], windows_BT1[i : i + micro_batch_size, 1:])
            for i in range(0, len(windows_BT1), micro_batch_size)
        ]


def validation_windows(tokens: np.ndarray, seq_len: int, max_tokens: int) -> torch.Tensor:
    """Fixed, evenly spaced, non-overlapping windows ``[N, T+1]`` from the validation split."""
    count = max(1, min(max_tokens // seq_len, (len(tokens) - 1) // (seq_len + 1)))
    if len(tokens) < seq_len + 1:
        raise ValueError(f"validation split has {len(tokens)} tokens, fewer than data.seq_len + 1")
    starts = np.linspace(0, len(tokens) - seq_len - 1, count).astype(np.int64)
    return torch.from_numpy(
        np.stack([np.asarray(tokens[s : s + seq_len + 1], dtype=np.int64) for s in starts])
    )
