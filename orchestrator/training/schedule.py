"""Learning-rate schedules as multipliers of the peak rate, by optimizer step.

- ``wsd``: linear warmup, constant, then a linear cooldown to ``min_lr_ratio`` over the last
  ``cooldown_steps`` (warmup-stable-decay; Hagele et al. 2024 find it matches cosine at the same budget).
- ``cosine``: linear warmup then cosine decay to ``min_lr_ratio`` at the final step (Chinchilla).
- ``constant``: linear warmup then flat.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def lr_multiplier(
    schedule: str, *, total_steps: int, warmup_steps: int, cooldown_steps: int, min_lr_ratio: float
) -> Callable[[int], float]:
    if schedule not in ("wsd", "cosine", "constant"):
        raise ValueError(f"training.schedule: unknown schedule {schedule!r}; use wsd, cosine or constant")
    total_steps = max(1, total_steps)

    def multiplier(step: int) -> float:
        # ``step`` counts completed optimizer steps; the update about to happen is number step+1.
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        if schedule == "cosine":
            span = max(1, total_steps - warmup_steps)
            progress = min(1.0, (step - warmup_steps) / span)
            return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        decay_start = total_steps - cooldown_steps
        if cooldown_steps and step >= decay_start:
            progress = min(1.0, (step - decay_start + 1) / cooldown_steps)
            return 1.0 - (1.0 - min_lr_ratio) * progress
        return 1.0

    return multiplier
