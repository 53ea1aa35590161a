"""The language-model task: windows of the tokenized corpus; validation loss and bits per byte; at the
end the in-context copy score. The LM ladder's ``make_task`` (orchestrator/kinds/ladder.py)."""

from __future__ import annotations

from typing import Any

import torch

from orchestrator.data.batches import TrainBatches, validation_windows
from orchestrator.trial import TrialConfig


class LmTask:
    def __init__(self, config: TrialConfig, data: Any):
        self.seq_len = config.data.seq_len
        self.flops_seq_len = self.seq_len
        self.sequences_per_step = config.training.sequences_per_step
        self.bytes_per_token = data.val_bytes_per_token
        self.batches = TrainBatches(
            data.open("train"), self.seq_len, self.sequences_per_step, seed=config.seed
        )
        self.windows = validation_windows(data.open("val"), self.seq_len, config.data.val_tokens)

    def tokens_seen(self, step: int) -> int:
        return step * self.sequences_per_step * self.seq_len

    def micro_batches(self, step: int, rank: int, world: int, micro: int):
        return self.batches.micro_batches(step, rank, world, micro)

    def evaluate(
        self, engine, *, rank: int, world: int, batch_size: int, device: torch.device
    ) -> dict[str, float]:
        from orchestrator.training.evaluation import evaluate

        return evaluate(
            engine,
            self.windows,
            rank=rank,
            world=world,
            batch_size=batch_size,
            bytes_per_token=self.bytes_per_token,
            device=device,
            autocast_dtype=None,
        )

    def final_evaluate(
        self, engine, *, rank: int, world: int, batch_size: int, device: torch.device
    ) -> dict[str, float]:
        from orchestrator.training.evaluation import copy_score

        return copy_score(engine, self.windows, rank=rank, world=world, batch_size=batch_size, device=device)
