"""What a running trial tells the world: heartbeats and evals to the store, metrics to MLflow.

Only rank 0 reports. Heartbeats are throttled (they feed the live progress table and the dashboard),
MLflow metrics are batched, and evals go to the store at once: they are what a crash must not lose.
"""

from __future__ import annotations

import time
from typing import Any

from orchestrator.store import Store


class TrialReporter:
    def __init__(
        self,
        *,
        store_url: str,
        trial_id: str,
        attempt: int,
        tracking_uri: str | None,
        mlflow_run_id: str | None,
        heartbeat_every_s: float = 2.0,
    ):
        self.store = Store.open(store_url, create=False)
        self.trial_id = trial_id
        self.attempt = attempt
        self.heartbeat_every_s = heartbeat_every_s
        self._last_heartbeat = 0.0
        self._mlflow = None
        self._mlflow_run_id = mlflow_run_id
        self._pending_metrics: list[Any] = []
        if tracking_uri and mlflow_run_id:
            from mlflow.tracking import MlflowClient

            self._mlflow = MlflowClient(tracking_uri)

    def heartbeat(self, *, force: bool = False, **progress: Any) -> None:
        now = time.monotonic()
        if force or now - self._last_heartbeat >= self.heartbeat_every_s:
            self.store.heartbeat(self.trial_id, self.attempt, **progress)
            self._last_heartbeat = now
            self.flush_metrics()

    def metrics(self, step: int, values: dict[str, float]) -> None:
        if self._mlflow is None:
            return
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self._pending_metrics.extend(Metric(key, float(value), stamp, step) for key, value in values.items())

    def flush_metrics(self) -> None:
        if self._mlflow is None or not self._pending_metrics:
            return
        batch, self._pending_metrics = self._pending_metrics, []
        for start in range(0, len(batch), 900):  # MLflow caps a batch at 1000 metrics
            self._mlflow.log_batch(self._mlflow_run_id, metrics=batch[start : start + 900])

    def evals(self, step: int, tokens_seen: int, flops: float, values: dict[str, float]) -> None:
        rows = [
            {"step": step, "tokens_seen": tokens_seen, "flops": flops, "metric": k, "value": float(v)}
            for k, v in values.items()
        ]
        self.store.record_evals(self.trial_id, self.attempt, rows)
        self.metrics(step, values)

    def log_text(self, text: str, artifact_file: str) -> None:
        """A file on the trial's MLflow run (e.g. a table of measurements); nothing without MLflow."""
        if self._mlflow is not None:
            self._mlflow.log_text(self._mlflow_run_id, text, artifact_file)

    def finish(self, **final: Any) -> None:
        self.flush_metrics()
        self.store.finish(self.trial_id, self.attempt, **final)

    def fail(self, error: str, **extra: Any) -> None:
        self.flush_metrics()
        self.store.fail(self.trial_id, self.attempt, error, **extra)

    def close(self) -> None:
        self.store.close()
