"""Accuracy and loss at the scored positions of a recall task's fixed test sets, sharded over workers.

Per test setting ``<name>`` (``T256_kv16`` for MQAR, ``L32`` for copy) the metrics are

- ``recall_accuracy/<name>``: the fraction of scored positions whose arg-max prediction is the answer
  (MQAR: the value of each query; copy: each character of the second copy, teacher-forced);
- ``recall_loss/<name>``: the mean cross-entropy (nats) there;
- copy only, ``recall_exact/<name>``: the fraction of strings copied with every character right;

and ``recall_accuracy`` / ``recall_loss`` (/ ``recall_exact``) are their means over the test settings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from orchestrator.recall.generators import IGNORE_INDEX


@torch.no_grad()
def recall_metrics(
    model,
    settings: list[Any],
    test_sets: list[tuple[np.ndarray, np.ndarray]],
    *,
    exact: bool,
    rank: int = 0,
    world: int = 1,
    batch_size: int = 32,
    device: torch.device | None = None,
) -> dict[str, float]:
    """Every rank runs the same number of forwards (ZeRO-3 needs it); sums are all-reduced."""
    device = device or torch.device("cpu")
    was_training = model.training
    model.eval()
    # per setting: loss sum, correct, scored positions, exact sequences, sequences
    totals = torch.zeros(len(settings), 5, dtype=torch.float64)
    unsharded = []  # test sets smaller than the worker count: every rank scores all of it
    for index, (inputs, targets) in enumerate(test_sets):
        if len(inputs) >= world:
            per_rank, start = len(inputs) // world, rank * (len(inputs) // world)
        else:
            per_rank, start = len(inputs), 0
            unsharded.append(index)
        mine_in = torch.from_numpy(np.ascontiguousarray(inputs[start : start + per_rank]))
        mine_tg = torch.from_numpy(np.ascontiguousarray(targets[start : start + per_rank]))
        for b in range(0, per_rank, batch_size):
            inputs_BT = mine_in[b : b + batch_size].to(device)
            targets_BT = mine_tg[b : b + batch_size].to(device)
            logits_BTV = model(inputs_BT).float()
            scored_BT = targets_BT != IGNORE_INDEX
            loss = F.cross_entropy(
                logits_BTV.flatten(0, 1), targets_BT.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
            )
            right_BT = (logits_BTV.argmax(-1) == targets_BT) & scored_BT
            all_right_B = (right_BT | ~scored_BT).all(dim=1)
            totals[index] += torch.tensor(
                [
                    loss.item(),
                    right_BT.sum().item(),
                    scored_BT.sum().item(),
                    all_right_B.sum().item(),
                    len(inputs_BT),
                ],
                dtype=torch.float64,
            )
    if world > 1:
        dist.all_reduce(totals)
        totals[unsharded] /= world
    if was_training:
        model.train()
    values: dict[str, float] = {}
    for setting, (loss_sum, right, scored, exact_right, sequences) in zip(
        settings, totals.tolist(), strict=True
    ):
        values[f"recall_accuracy/{setting.name}"] = right / max(scored, 1)
        values[f"recall_loss/{setting.name}"] = loss_sum / max(scored, 1)
        if exact:
            values[f"recall_exact/{setting.name}"] = exact_right / max(sequences, 1)
    for kind in ("recall_accuracy", "recall_loss") + (("recall_exact",) if exact else ()):
        per_setting = [values[f"{kind}/{s.name}"] for s in settings]
        values[kind] = float(np.mean(per_setting))
    return values
