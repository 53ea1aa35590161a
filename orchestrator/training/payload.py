"""What a worker is handed to run one attempt of one trial: plain data, because it crosses Ray."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrialPayload:
    """Everything a worker needs to run one attempt of one trial (plain data: it crosses Ray)."""

    trial_id: str
    attempt: int
    config: dict[str, Any]  # the trial config's stored form (TrialConfig.to_dict); parsed by the worker
    data: dict[str, Any]
    store_url: str
    checkpoint_root: str  # a folder or a pyarrow.fs URI; the trial's checkpoints go under <root>/<trial id>
    workdir: str  # local scratch (the cache of checkpoints mirrored from remote storage)
    micro_batch_size: int
    tracking_uri: str | None = None
    mlflow_run_id: str | None = None
    use_cuda: bool = False
    max_loss: float | None = None  # a finite loss above this counts as divergence
    scheduled_at: float | None = None  # driver's clock when the trial was handed out (start-up latency)
