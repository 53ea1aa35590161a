"""The orchestrator's driver: plan, store, schedule on Ray, retry, and show progress.

The store is the source of truth. A sweep run is: write the sweep and its trials (existing trials are
kept, so resubmitting runs nothing twice), hand every not-yet-done trial to a warm worker group, and
collect results. Workers write their own evals and final records; the driver only claims trials
(bumping their attempt number), retries failures from checkpoints, and ends MLflow runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from orchestrator.data import PreparedData, prepare_data
from orchestrator.kinds import plan_trials
from orchestrator.library_logs import library_logs_to
from orchestrator.provenance import code_version, library_versions
from orchestrator.spec import SweepSpec, spec_to_dict
from orchestrator.store import Store, redact
from orchestrator.trial import PlannedTrial

MAX_MICRO_BATCH_TOKENS = 8192
TO_RUN = ("pending", "running", "failed")


class ResourceError(ValueError):
    """The cluster cannot ever fit one trial's workers."""


@dataclass
class SweepContext:
    spec: SweepSpec
    workdir: Path
    store: Store
    tracking_uri: str | None
    data: PreparedData
    trials: list[PlannedTrial]
    new_trials: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def micro_batch_size(spec: SweepSpec) -> int:
    """Sequences per worker per micro step: the spec's, else the largest divisor fitting 8192 tokens."""
    per_worker = spec.training.batch_tokens // spec.data.seq_len // spec.resources.workers_per_trial
    if spec.training.micro_batch_size:
        return spec.training.micro_batch_size
    cap = max(1, MAX_MICRO_BATCH_TOKENS // spec.data.seq_len)
    return max(d for d in range(1, per_worker + 1) if per_worker % d == 0 and d <= cap)


def prepare_spec_data(spec: SweepSpec) -> PreparedData:
    """The sweep's corpus, tokenized (from the cache when it was before)."""
    return prepare_data(
        spec.data.corpus,
        spec.data.tokenizer,
        bpe_vocab_size=spec.data.bpe_vocab_size,
        val_fraction=spec.data.val_fraction,
        text_field=spec.data.text_field,
    )


def prepare_sweep(
    spec: SweepSpec,
    *,
    workdir: Path,
    db_url: str,
    tracking_uri: str | None,
    console: Console,
    write: bool = True,
    check: Any = None,
) -> SweepContext:
    """Tokenize the corpus (cached), plan the trials, and (if ``write``) record sweep and trials."""
    with console.status(f"preparing corpus {spec.data.corpus!r} ({spec.data.tokenizer} tokenizer)"):
        data = prepare_spec_data(spec)
    trials = plan_trials(spec, data.vocab_size)
    if check is not None:  # e.g. the matched-study check: refuse before anything is written
        check(spec, trials)
    store = Store.open(db_url) if write else None
    context = SweepContext(spec, workdir, store, tracking_uri, data, trials)  # type: ignore[arg-type]
    if write:
        store.upsert_sweep(spec.name, spec_to_dict(spec), workdir=str(workdir), code_version=code_version())
        context.new_trials = store.add_trials(spec.name, [t.row() for t in trials])
    return context


def _check_resources(spec: SweepSpec) -> None:
    import ray

    available = ray.cluster_resources()
    res = spec.resources
    need_cpu, need_gpu = (
        res.cpus_per_worker * res.workers_per_trial,
        res.gpus_per_worker * res.workers_per_trial,
    )
    if need_cpu > available.get("CPU", 0) or need_gpu > available.get("GPU", 0):
        raise ResourceError(
            f"resources: one trial needs {need_cpu:g} CPUs and {need_gpu:g} GPUs "
            f"({res.workers_per_trial} workers x {res.cpus_per_worker:g} CPUs / {res.gpus_per_worker:g} GPUs) but the "
            f"Ray cluster has {available.get('CPU', 0):g} CPUs and {available.get('GPU', 0):g} GPUs; lower "
            "resources.cpus_per_worker / gpus_per_worker / workers_per_trial or use a bigger cluster (--address)"
        )


def connect_ray(address: str | None) -> bool:
    """Connect to ``address`` (or RAY_ADDRESS), else start an embedded cluster. True if we started one."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {
        "log_to_driver": False,
        "include_dashboard": False,
        "configure_logging": True,
        "logging_level": "WARNING",
    }
    if address is None:
        # An embedded single-machine cluster. "local" (not None): never join a cluster that a stale
        # /tmp/ray/ray_current_cluster file points at after an unclean `ray start`.
        address = "local"
        kwargs["num_cpus"] = os.cpu_count()
    ray.init(address=address, **kwargs)
    return True


def run_sweep(
    context: SweepContext,
    *,
    address: str | None,
    console: Console,
    resume: bool = False,
    max_loss: float | None = None,
    library_log: Path | None = None,
) -> dict[str, Any]:
    """Run every trial of the sweep that is not done yet; returns a summary.

    ``library_log``: a file for MLflow's, alembic's and Ray's log lines while the sweep runs (see
    ``orchestrator.library_logs``); None leaves them where the libraries put them (stderr).
    """
    spec, store = context.spec, context.store
    interrupted = store.reset_interrupted(spec.name)
    todo = [t for t in store.trials(spec.name) if t.status in TO_RUN]
    summary: dict[str, Any] = {
        "sweep": spec.name,
        "planned": len(context.trials),
        "new": context.new_trials,
        "reset_interrupted": interrupted,
        "to_run": len(todo),
    }
    if not todo:
        return summary | {"ran": 0}
    preload = ("ray", "mlflow") if context.tracking_uri else ("ray",)
    with library_logs_to(library_log, preload=preload):
        return summary | _track_and_dispatch(
            context, todo, address=address, console=console, max_loss=max_loss
        )


def _track_and_dispatch(
    context: SweepContext,
    todo: list[Any],
    *,
    address: str | None,
    console: Console,
    max_loss: float | None,
) -> dict[str, Any]:
    from orchestrator.tracking import SweepTracking

    spec, store = context.spec, context.store
    tracking = None
    if context.tracking_uri:
        sweep_row = store.get_sweep(spec.name)
        with console.status("opening MLflow tracking store"):
            tracking = SweepTracking(
                context.tracking_uri,
                context.workdir,
                spec.name,
                sweep_row.mlflow_run_id if sweep_row else None,
                {"ceiling.code_version": code_version(), "ceiling.store": redact(store.url)},
            )
        store.set_sweep_mlflow(spec.name, tracking.experiment_id, tracking.parent_run_id)

    # Ray's driver prints cluster errors ("(raylet) Raylet is terminated ...", when a node is lost) to
    # whatever sys.stdout is at the time; stdout belongs to `--json`, so they go to stderr meanwhile.
    with contextlib.redirect_stdout(sys.stderr):
        return _dispatch(context, tracking, todo, address=address, console=console, max_loss=max_loss)


def _dispatch(
    context: SweepContext,
    tracking: Any,
    todo: list[Any],
    *,
    address: str | None,
    console: Console,
    max_loss: float | None,
) -> dict[str, Any]:
    import ray

    from orchestrator.scheduling.dispatcher import Dispatcher

    spec, store = context.spec, context.store
    with console.status("starting Ray"):
        owns_ray = connect_ray(address)
    _check_resources(spec)
    dispatcher = Dispatcher(
        context=context,
        tracking=tracking,
        console=console,
        max_loss=max_loss,
        micro_batch_size=micro_batch_size(spec),
        versions=library_versions(),
    )
    try:
        return dispatcher.run([t.id for t in todo])
    finally:
        dispatcher.shutdown()
        if tracking:
            counts = store.status_counts(spec.name)
            tracking.end_parent(
                finished=counts.get("done", 0) + counts.get("diverged", 0) == sum(counts.values())
            )
        if owns_ray:
            ray.shutdown()
