"""MLflow: one parent run per sweep, one child run per trial (params, eval metrics by step, tags).

The orchestrator creates the tracking database, the experiment and every run before any worker
starts: several processes creating a fresh MLflow SQLite database at once corrupt it. Workers then
only log metrics to the run id they are handed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from orchestrator.store import redact


def resolve_tracking_uri(tracking_uri: str | None, workdir: Path) -> str:
    uri = tracking_uri or os.environ.get("CEILING_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(workdir / 'mlflow.db').resolve()}"


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = str(value)[:500]


class SweepTracking:
    def __init__(
        self,
        tracking_uri: str,
        workdir: Path,
        sweep_name: str,
        parent_run_id: str | None,
        tags: dict[str, str],
    ):
        from mlflow.tracking import MlflowClient

        self.uri = tracking_uri
        self.client = MlflowClient(tracking_uri)
        name = f"ceiling/{sweep_name}"
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            artifacts = (
                (workdir / "mlartifacts").resolve().as_uri() if tracking_uri.startswith("sqlite") else None
            )
            self.experiment_id = self.client.create_experiment(name, artifact_location=artifacts)
        else:
            self.experiment_id = experiment.experiment_id
        if parent_run_id is None or not self._exists(parent_run_id):
            run = self.client.create_run(
                self.experiment_id, run_name=sweep_name, tags={"ceiling.sweep": sweep_name, **tags}
            )
            parent_run_id = run.info.run_id
        self.parent_run_id = parent_run_id

    def _exists(self, run_id: str) -> bool:
        try:
            self.client.get_run(run_id)
            return True
        except Exception:
            return False

    def child_run(
        self, trial_id: str, label: str, config: dict[str, Any], existing: str | None, tags: dict[str, str]
    ) -> str:
        if existing and self._exists(existing):
            self.client.update_run(existing, status="RUNNING")
            return existing
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{label}-{trial_id[:8]}",
            tags={"mlflow.parentRunId": self.parent_run_id, "ceiling.trial_id": trial_id, **tags},
        )
        params: dict[str, str] = {}
        _flatten("", config, params)
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in sorted(params.items())]
        for start in range(0, len(items), 90):
            self.client.log_batch(run.info.run_id, params=items[start : start + 90])
        return run.info.run_id

    def end_child(self, run_id: str, status: str) -> None:
        self.client.set_terminated(
            run_id, status={"done": "FINISHED", "diverged": "FAILED"}.get(status, "FAILED")
        )

    def end_parent(self, finished: bool) -> None:
        self.client.set_terminated(self.parent_run_id, status="FINISHED" if finished else "KILLED")

    @property
    def display_uri(self) -> str:
        return redact(self.uri) if "://" in self.uri and "@" in self.uri else self.uri
