"""Worker groups: ``workers_per_trial`` warm actors gang-scheduled by a placement group."""

from __future__ import annotations

from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from orchestrator.scheduling.worker import TrialWorker

RemoteTrialWorker = ray.remote(max_restarts=0)(TrialWorker)


class WorkerGroup:
    """One slot of the sweep: runs one trial at a time on all its workers."""

    def __init__(
        self, *, workers: int, cpus: float, gpus: float, cache_dir: str | None, strategy: str = "PACK"
    ):
        bundle = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
        self.placement = placement_group([dict(bundle) for _ in range(workers)], strategy=strategy)
        self.actors = [
            RemoteTrialWorker.options(
                num_cpus=cpus,
                num_gpus=gpus,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    self.placement, placement_group_bundle_index=i
                ),
            ).remote(i, workers, max(1, int(cpus)), cache_dir)
            for i in range(workers)
        ]
        self._joined: ray.ObjectRef | None = None
        self._placed = self.placement.ready()
        self.trial_id: str | None = None
        self.refs: list[ray.ObjectRef] = []

    def ready(self) -> bool:
        """Whether the cluster has placed this group's bundles (never blocks).

        A group made to replace one lost with its node may not fit until another group frees its
        resources; the dispatcher must not wait on it, or a smaller cluster would hang the sweep.
        """
        if self._placed is None:
            return True
        done, _ = ray.wait([self._placed], timeout=0)
        if done:
            self._placed = None
        return bool(done)

    def _ensure_joined(self) -> None:
        if self._joined is None:
            addr, port = ray.get(self.actors[0].rendezvous_address.remote())
            self._joined = [a.join_group.remote(addr, port) for a in self.actors]

    def start(self, trial_id: str, payload: dict[str, Any]) -> None:
        self._ensure_joined()
        self.trial_id = trial_id
        # Calls on one actor run in submission order, so each worker joins its group before training.
        self.refs = [actor.run.remote(payload) for actor in self.actors]

    @property
    def busy(self) -> bool:
        return self.trial_id is not None

    def finish(self) -> None:
        self.trial_id, self.refs = None, []

    def kill(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        remove_placement_group(self.placement)
