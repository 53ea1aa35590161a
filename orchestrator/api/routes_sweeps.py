"""Sweeps: submit (queue), list, get, runs, cancel. Bodies are the CLI's ``--json`` documents."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from orchestrator.api.auth import current_user, forbidden, may_cancel
from orchestrator.api.responses import CliJSONResponse
from orchestrator.operations import sweeps as operations
from orchestrator.operations.errors import SweepNotFound
from orchestrator.store import service_queue
from orchestrator.store.api_tokens import TokenInfo

router = APIRouter(prefix="/v1", tags=["sweeps"], default_response_class=CliJSONResponse)

SPEC_BODY = {
    "requestBody": {
        "required": True,
        "description": "the sweep spec, as in a sweep file (examples/*.yaml): YAML or JSON",
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "text/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}
NOT_FOUND = {404: {"description": "no such sweep; GET /v1/sweeps lists them"}}


def checked_name(name: str) -> str:
    """A path's sweep name; one that cannot be a sweep name (spec.NAME_PATTERN) is simply not found."""
    from orchestrator.spec import NAME_PATTERN

    if not NAME_PATTERN.match(name):
        raise SweepNotFound(name[:80], [])
    return name


@router.post(
    "/sweeps",
    summary="Submit a sweep to the queue (idempotent: the same spec again is the same sweep)",
    status_code=201,
    openapi_extra=SPEC_BODY,
    responses={
        200: {"description": "the same spec was submitted before: that sweep"},
        201: {"description": "queued"},
        409: {"description": "a different spec under the name of a queued or running sweep"},
        413: {"description": "the body is over 1 MiB"},
        422: {"description": "bad spec: each problem's field path and fix"},
    },
)
async def submit(
    request: Request,
    allow_unmatched: bool = Query(
        False, description="run a study whose architectures differ in data order, tokens, batch or schedule"
    ),
    user: TokenInfo = Depends(current_user),
) -> CliJSONResponse:
    from orchestrator.operations.submit import parse_spec_body, submit_sweep

    body = await request.body()
    content_type = request.headers.get("content-type")
    app = request.app

    def work() -> Any:
        spec = parse_spec_body(body, content_type)
        return submit_sweep(
            app.state.store,
            spec,
            owner=user.user,
            workdir=app.state.settings.workdir,
            allow_unmatched=allow_unmatched,
        )

    result = await run_in_threadpool(work)
    if app.state.runner is not None:
        app.state.runner.wake()
    return CliJSONResponse(result.to_json(), status_code=201 if result.created else 200)


@router.get("/sweeps", summary="Every sweep: queue status, owner, times and trial counts")
def list_sweeps(request: Request, _: TokenInfo = Depends(current_user)) -> Any:
    store = request.app.state.store
    queued = {entry.name: entry for entry in service_queue.entries(store)}
    # the store's order, as `ceiling status` lists them (so `--server` prints the same), then any sweep
    # that is only in the queue
    stored = [s.name for s in store.sweeps()]
    names = stored + sorted(set(queued) - set(stored), key=list(queued).index)
    rows = []
    for name in names:
        entry = queued.get(name)
        queue = entry.to_json() if entry else {"status": None, "owner": None, "submitted_at": None}
        rows.append(
            {
                "sweep": name,
                **queue,
                "trials": entry.trials if entry else None,
                "counts": store.status_counts(name),
            }
        )
    return {"sweeps": rows}


@router.get(
    "/sweeps/{name}",
    summary="A sweep's trial counts by status (`ceiling status NAME --json`) and its place in the queue",
    responses=NOT_FOUND,
)
def get_sweep(request: Request, name: str, _: TokenInfo = Depends(current_user)) -> Any:
    store = request.app.state.store
    document = operations.status_document(store, checked_name(name))
    entry = service_queue.get(store, name)
    return document | {"queue": entry.to_json() if entry else None}


@router.get(
    "/sweeps/{name}/runs",
    summary="A sweep's trials: `ceiling runs NAME --json` or `--csv` (`law_points`: the law-points CSV)",
    responses=NOT_FOUND | {200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def get_runs(
    request: Request,
    name: str,
    format: Literal["json", "csv"] = Query("json", description="json | csv"),
    law_points: bool = Query(False, description="with format=csv: one row per law point"),
    evals: bool = Query(False, description="with format=json: every eval row (curves) of each trial"),
    _: TokenInfo = Depends(current_user),
) -> Any:
    store = request.app.state.store
    checked_name(name)
    operations.require_sweep(store, name)
    if law_points:
        operations.check_runs_options(csv_out=format == "csv", law_points=law_points)
        return PlainTextResponse(operations.law_points_csv(store, name), media_type="text/csv")
    if format == "csv":
        return PlainTextResponse(operations.runs_csv(store, name), media_type="text/csv")
    return operations.runs_document(store, name, evals=evals)


@router.post(
    "/sweeps/{name}/cancel",
    summary="Cancel a queued or running sweep (its owner or an admin)",
    responses=NOT_FOUND | {403: {"description": "neither the sweep's owner nor an admin"}},
)
def cancel(request: Request, name: str, user: TokenInfo = Depends(current_user)) -> Any:
    store = request.app.state.store
    checked_name(name)
    entry = service_queue.get(store, name)
    if entry is None:
        known = [e.name for e in service_queue.entries(store)]
        raise SweepNotFound(name, known, known_label="the service's queue holds")
    if not may_cancel(user, entry.owner):
        raise forbidden(f"sweep {name!r} belongs to {entry.owner}; only its owner or an admin may cancel it")
    entry = service_queue.cancel(store, name)
    if request.app.state.runner is not None:
        request.app.state.runner.wake()
    return {"sweep": name, "status": entry.status}
