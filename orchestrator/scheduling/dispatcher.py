"""Hands trials to warm worker groups, collects results, retries failures, and draws progress."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import ray
from rich.console import Console
from rich.live import Live

from orchestrator.kinds import kind_of
from orchestrator.progress import progress_table
from orchestrator.provenance import code_version
from orchestrator.scheduling.groups import WorkerGroup
from orchestrator.store import StaleAttempt
from orchestrator.store.schema import FINAL_STATUSES
from orchestrator.trial import TrialConfig


class Dispatcher:
    def __init__(
        self,
        *,
        context,
        tracking,
        console: Console,
        max_loss: float | None,
        micro_batch_size: int,
        versions: dict[str, str],
    ):
        self.context, self.tracking, self.console = context, tracking, console
        self.store = context.store
        self.spec = context.spec
        # The command line's --max-loss wins over the spec's training.max_loss.
        self.max_loss = max_loss if max_loss is not None else self.spec.training.max_loss
        self.micro_batch_size, self.versions = micro_batch_size, versions
        self.checkpoint_root = self.spec.storage or str(context.workdir / "checkpoints")
        self.groups: list[WorkerGroup] = []
        self.attempt_of: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.results: dict[str, str] = {}
        self.dependencies = None  # built on first use (orchestrator/scheduling/dependencies.py)

    def _new_group(self) -> WorkerGroup:
        res = self.spec.resources
        from orchestrator.data.prepare import default_cache_dir

        return WorkerGroup(
            workers=res.workers_per_trial,
            cpus=res.cpus_per_worker,
            gpus=res.gpus_per_worker,
            cache_dir=str(default_cache_dir()),
            strategy=res.placement.upper(),
        )

    def _payload(
        self, trial_id: str, config: TrialConfig, attempt: int, mlflow_run_id: str | None, scheduled_at: float
    ) -> dict[str, Any]:
        return {
            "trial_id": trial_id,
            "attempt": attempt,
            "config": config.to_dict(),
            "data": self.context.data.to_dict(),
            "store_url": self.store.url,
            "checkpoint_root": self.checkpoint_root,
            "workdir": str(self.context.workdir),
            "micro_batch_size": kind_of(config).micro_batch_size(config, self.spec, self.micro_batch_size),
            "tracking_uri": self.tracking.uri if self.tracking else None,
            "mlflow_run_id": mlflow_run_id,
            "max_loss": self.max_loss,
            "scheduled_at": scheduled_at,
        }

    def _start(self, group: WorkerGroup, trial_id: str, overrides: dict[str, Any] | None = None) -> None:
        scheduled_at = time.time()
        trial = self.store.get_trial(trial_id)
        if overrides:  # a tuned trial: run with the chosen lr (and beta2), and say so on its row
            self.store.set_trial_lr(trial_id, overrides["lr"], overrides.get("beta2"))
            trial = self.store.get_trial(trial_id)
        config = trial.trial_config
        if overrides:
            config = config.with_training(**overrides)
        attempt = self.store.claim(trial_id, unless_final=True)
        if attempt is None:  # another run of a sweep sharing this trial finished it meanwhile
            self.console.print(
                f"trial {trial.label}: already {self.store.get_trial(trial_id).status}, skipped"
            )
            return
        self.attempt_of[trial_id] = attempt
        run_id = trial.mlflow_run_id
        if self.tracking:
            run_id = self.tracking.child_run(
                trial.id,
                trial.label,
                config.to_dict(),
                trial.mlflow_run_id,
                {"ceiling.code_version": code_version()},
            )
        self.store.heartbeat(
            trial_id,
            attempt,
            mlflow_run_id=run_id,
            corpus_fingerprint=kind_of(config).data_fingerprint(config, self.context.data),
            code_version=code_version(),
            library_versions=self.versions,
        )
        group.start(trial_id, self._payload(trial_id, config, attempt, run_id, scheduled_at))

    def _settle(self, group: WorkerGroup, queue: deque[str], failed: ray.ObjectRef | None = None) -> None:
        trial_id, attempt = group.trial_id, self.attempt_of[group.trial_id]
        try:
            if failed is not None:
                ray.get(failed)  # raises the failing rank's error
            outcomes = ray.get(group.refs)
            status = outcomes[0]["status"]
            self.results[trial_id] = status
            if self.tracking and (run := self.store.get_trial(trial_id).mlflow_run_id):
                self.tracking.end_child(run, status)
            group.finish()
        except (ray.exceptions.RayError, StaleAttempt) as exc:
            message = str(exc)[-4000:]
            self.failures[trial_id] = self.failures.get(trial_id, 0) + 1
            group.finish()
            if isinstance(exc, ray.exceptions.RayActorError) or len(group.actors) > 1:
                # A dead worker, or peers of a failed rank stuck in a collective: replace the group.
                group.kill()
                self.groups[self.groups.index(group)] = self._new_group()
            stored = self.store.get_trial(trial_id)
            if stored is not None and stored.attempts == attempt and stored.status in FINAL_STATUSES:
                # The worker committed its final record, then died (its node lost) before replying:
                # the result stands; releasing it would train it again from scratch.
                self.failures[trial_id] -= 1
                self.results[trial_id] = stored.status
                if self.tracking and stored.mlflow_run_id:
                    self.tracking.end_child(stored.mlflow_run_id, stored.status)
                return
            try:
                if self.failures[trial_id] <= self.spec.resources.retries:
                    self.store.release(trial_id, attempt, f"attempt {attempt} failed, retrying: {message}")
                    queue.append(trial_id)
                else:
                    self.store.fail(trial_id, attempt, message)
                    self.results[trial_id] = "failed"
                    if self.tracking and (run := self.store.get_trial(trial_id).mlflow_run_id):
                        self.tracking.end_child(run, "failed")
            except StaleAttempt:
                pass  # another orchestrator owns the trial now

    def run(self, trial_ids: list[str]) -> dict[str, Any]:
        queue: deque[str] = deque(trial_ids)
        slots = min(self.spec.resources.max_concurrent_trials, len(trial_ids))
        self.groups = [self._new_group() for _ in range(slots)]
        started = time.time()
        try:
            with Live(
                progress_table(self.store, self.spec.name),
                console=self.console,
                refresh_per_second=2,
                transient=False,
            ) as live:
                last_draw = 0.0
                while queue or any(g.busy for g in self.groups):
                    # Only groups the cluster has placed: a replacement for a group lost with its node
                    # may wait for another group's resources, and blocking on it would hang the sweep.
                    free = [g for g in self.groups if not g.busy and g.ready()]
                    picked = self._next_ready(queue, len(free))
                    for group, (trial_id, overrides) in zip(free, picked, strict=False):
                        self._start(group, trial_id, overrides)
                    if queue and free and not picked and not any(g.busy for g in self.groups):
                        self._block_rest(
                            queue
                        )  # nothing runs and nothing queued can start: a dependency failed
                        continue
                    busy_refs = {ref: g for g in self.groups if g.busy for ref in g.refs}
                    if not busy_refs:  # nothing runs yet: the free groups still wait to be placed
                        time.sleep(0.5)
                        continue
                    ready, _ = ray.wait(list(busy_refs), num_returns=1, timeout=0.5)
                    for ref in ready:
                        group = busy_refs[ref]
                        if not group.busy:
                            continue
                        if _failed(ref):
                            self._settle(
                                group, queue, failed=ref
                            )  # one rank failed: don't wait for its peers
                        elif all(_done(r) for r in group.refs):
                            self._settle(group, queue)
                    if time.time() - last_draw > 1.0:
                        live.update(progress_table(self.store, self.spec.name))
                        last_draw = time.time()
                live.update(progress_table(self.store, self.spec.name))
        except KeyboardInterrupt:
            for group in self.groups:
                if group.busy:
                    try:
                        self.store.release(
                            group.trial_id, self.attempt_of[group.trial_id], "interrupted (Ctrl-C)"
                        )
                    except StaleAttempt:
                        pass
            raise
        counts: dict[str, int] = {}
        for status in self.results.values():
            counts[status] = counts.get(status, 0) + 1
        return {
            "ran": len(self.results),
            "outcomes": counts,
            "retries": sum(self.failures.values()),
            "wall_time_s": round(time.time() - started, 1),
        }

    def _next_ready(self, queue: deque[str], wanted: int) -> list[tuple[str, dict[str, Any]]]:
        """Up to ``wanted`` queued trials whose dependencies are met (removed from the queue), in queue
        order; a trial whose dependency can never be met is failed with the reason."""
        if not wanted or not queue:
            return []
        if self.dependencies is None:
            from orchestrator.scheduling.dependencies import Dependencies

            self.dependencies = Dependencies(self.store, self.spec.name)
        by_id = {t.id: t for t in self.store.trials(self.spec.name)}
        picked: list[tuple[str, dict[str, Any]]] = []
        for trial_id in list(queue):
            if len(picked) == wanted:
                break
            trial = by_id.get(trial_id) or self.store.get_trial(trial_id)
            state, info = self.dependencies.check(trial, by_id)
            if state == "ready":
                queue.remove(trial_id)
                picked.append((trial_id, info))
            elif state == "blocked":
                queue.remove(trial_id)
                self._fail_blocked(trial_id, info)
        return picked

    def _block_rest(self, queue: deque[str]) -> None:
        while queue:
            self._fail_blocked(queue.popleft(), "its dependencies can never finish in this run")

    def _fail_blocked(self, trial_id: str, reason: str) -> None:
        try:
            attempt = self.store.claim(trial_id)
            self.store.fail(trial_id, attempt, f"not started: {reason}")
            self.results[trial_id] = "failed"
        except StaleAttempt:
            pass

    def shutdown(self) -> None:
        for group in self.groups:
            try:
                group.kill()
            except Exception:
                pass
        self.groups = []


def _done(ref: ray.ObjectRef) -> bool:
    ready, _ = ray.wait([ref], timeout=0)
    return bool(ready)


def _failed(ref: ray.ObjectRef) -> bool:
    try:
        ray.get(ref, timeout=0)
        return False
    except ray.exceptions.GetTimeoutError:
        return False
    except ray.exceptions.RayError:
        return True
