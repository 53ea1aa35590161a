"""What the training loop asks of a trial's task; each kind of study provides one (``StudyKind.make_task``).

The loop (``orchestrator.training.loop``) is the same for every trial. Its task gives it:

- ``micro_batches(step, rank, world, micro)``: this worker's ``(inputs[B,T], targets[B,T])`` for an
  optimizer step (targets hold -100 where nothing is scored), a function of (seed, step) so a resumed
  trial sees the data an uninterrupted one would;
- ``evaluate(engine, ...)``: the metrics of a periodic evaluation;
- ``final_evaluate(engine, ...)``: extra metrics measured once, at the end;
- ``tokens_seen(step)`` and ``flops_seq_len`` for accounting;
- optionally ``record_results(reporter)``: called on rank 0 after the final evaluation and before the
  final record, for results that are not metrics (the efficiency study's measurement table).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class TrainingTask(Protocol):
    flops_seq_len: int  # the sequence length FLOPs per token are counted at

    def tokens_seen(self, step: int) -> int: ...

    def micro_batches(
        self, step: int, rank: int, world: int, micro: int
    ) -> list[tuple[torch.Tensor, torch.Tensor]]: ...

    def evaluate(
        self, engine: Any, *, rank: int, world: int, batch_size: int, device: torch.device
    ) -> dict[str, float]: ...

    def final_evaluate(
        self, engine: Any, *, rank: int, world: int, batch_size: int, device: torch.device
    ) -> dict[str, float]: ...
