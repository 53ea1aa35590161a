"""What a running service needs to know: where the store, the work folder, Ray and MLflow are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    db_url: str  # SQLAlchemy URL of the store (with its password: never log it, see store.redact)
    workdir: Path  # sweeps' checkpoints, MLflow's default store and the sweep processes' logs
    address: str | None = None  # Ray cluster address for the sweeps; None: each starts an embedded one
    tracking_uri: str | None = None  # MLflow; None: the work folder's default
    no_mlflow: bool = False
    max_running_sweeps: int = 1
    scheduler_interval_s: float = 1.0
    token_cache_s: float = 5.0  # a validated token is trusted this long without the store (revocation lag)
    warm_driver: bool = True  # keep one sweep process started ahead (imports done, Ray joined)
    run_queue: bool = True  # False: serve the API without running sweeps (tests of the API alone)
