"""Fitted laws of a sweep: laws, predict, compare and the report, with the CLI's options as query
parameters (same names in snake_case, same defaults, same checks). Fits come from the fit cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from orchestrator.api.auth import current_user
from orchestrator.api.responses import CliJSONResponse
from orchestrator.api.routes_sweeps import NOT_FOUND, checked_name
from orchestrator.operations import laws as operations
from orchestrator.store.api_tokens import TokenInfo

router = APIRouter(prefix="/v1/sweeps/{name}", tags=["laws"], default_response_class=CliJSONResponse)

MAX_BOOT = 100_000  # resamples: far above any real use (1000 is the default); bounds a request's work
Metric = Query("val_loss", description="val_loss | val_bpb | train_loss | copy_score | recall_accuracy")
Form = Query(
    "auto",
    description="auto | chinchilla | power_n | power_d | power_c (+ _noE) | isoflop | envelope",
    max_length=64,
)
Boot = Query(1000, ge=0, le=MAX_BOOT, description="bootstrap resamples over whole runs (CI width)")
Seed = Query(0, ge=0, le=2**32 - 1, description="bootstrap seed")
Count = dict(max_length=64)


@router.get(
    "/laws",
    summary="Fitted laws per architecture with their health (`ceiling laws NAME --json`)",
    responses=NOT_FOUND,
)
async def laws(
    request: Request,
    name: str,
    arch: str | None = Query(None, max_length=64, description="only this architecture (name or label)"),
    metric: str = Metric,
    form: str = Form,
    n_boot: int = Boot,
    seed: int = Seed,
    backtest: bool = Query(False, description="also fit without the largest size / budget and predict them"),
    cost: str | None = Query(
        None,
        max_length=64,
        description="fit the metric against this inference cost (an efficiency study's final metric, e.g. "
        "decode_ms_per_token_L8192) instead of training compute",
    ),
    _: TokenInfo = Depends(current_user),
) -> Any:
    query = dict(arch=arch, metric=metric, form=form, n_boot=n_boot, seed=seed, backtest=backtest, cost=cost)
    return await _cached(
        request,
        "laws",
        name,
        query,
        lambda sweep: operations.laws_document(request.app.state.store, sweep, **query),
    )


@router.get(
    "/predict",
    summary="The metric at params and tokens, or compute-optimal at a compute (`ceiling predict --json`)",
    responses=NOT_FOUND,
)
async def predict(
    request: Request,
    name: str,
    arch: str = Query(..., max_length=64, description="architecture (name or label) to predict for"),
    params: str | None = Query(None, description="target non-embedding parameters, e.g. 1B", **Count),
    tokens: str | None = Query(None, description="training tokens, e.g. 20B", **Count),
    compute: str | None = Query(None, description="training FLOPs, e.g. 1e21 (compute-optimal)", **Count),
    metric: str = Metric,
    form: str = Form,
    n_boot: int = Boot,
    seed: int = Seed,
    _: TokenInfo = Depends(current_user),
) -> Any:
    query = dict(
        arch=arch,
        params=params,
        tokens=tokens,
        compute=compute,
        metric=metric,
        form=form,
        n_boot=n_boot,
        seed=seed,
    )
    return await _cached(
        request,
        "predict",
        name,
        query,
        lambda sweep: operations.predict_document(request.app.state.store, sweep=sweep, **query),
    )


@router.get(
    "/compare",
    summary="Each architecture against the baseline, with verdicts (`ceiling compare NAME --json`)",
    responses=NOT_FOUND,
)
async def compare(
    request: Request,
    name: str,
    baseline: str = Query("transformer", max_length=64, description="the reference architecture (label)"),
    at: str | None = Query(None, description="target compute in FLOPs for the verdict, e.g. 1e21", **Count),
    metric: str = Metric,
    form: str = Form,
    n_boot: int = Boot,
    seed: int = Seed,
    _: TokenInfo = Depends(current_user),
) -> Any:
    query = dict(baseline=baseline, at=at, metric=metric, form=form, n_boot=n_boot, seed=seed)
    return await _cached(
        request,
        "compare",
        name,
        query,
        lambda sweep: operations.compare_document(request.app.state.store, sweep, **query),
    )


@router.get(
    "/report",
    summary="The sweep's report: the HTML page `ceiling report NAME` writes, or its Markdown summary",
    responses=NOT_FOUND | {200: {"content": {"text/html": {}, "text/markdown": {}}}},
)
def report(
    request: Request,
    name: str,
    format: Literal["html", "md"] = Query("html", description="html | md"),
    metric: str = Metric,
    form: str = Query("auto", max_length=64, description="auto | chinchilla | power_c | power_c_noE"),
    baseline: str = Query("transformer", max_length=64, description="the reference architecture (label)"),
    at: str | None = Query(None, description="target compute in FLOPs for the verdicts, e.g. 1e21", **Count),
    n_boot: int = Boot,
    seed: int = Seed,
    _: TokenInfo = Depends(current_user),
) -> Any:
    from orchestrator.operations.report import report_html, report_markdown, report_settings

    settings = report_settings(metric=metric, form=form, baseline=baseline, at=at, n_boot=n_boot, seed=seed)
    store, sweep = request.app.state.store, checked_name(name)
    with _one_at_a_time(request):
        if format == "md":
            return PlainTextResponse(report_markdown(store, sweep, settings), media_type="text/markdown")
        return HTMLResponse(report_html(store, sweep, settings))


async def _cached(
    request: Request, route: str, name: str, query: dict[str, Any], document: Callable[[str], Any]
) -> Response:
    """The rendered document of ``route`` for the validated ``query`` on sweep ``name``, from the response
    cache while the sweep's law inputs are unchanged (orchestrator/api/response_cache.py). The header
    ``X-Ceiling-Cache`` says ``hit`` or ``miss`` (a waiter handed a concurrent miss's result says ``hit``).

    A hit is answered on the event loop (no store query, no thread); whatever may touch the store or
    compute runs in the thread pool, as a synchronous route would."""
    store, sweep, cache = request.app.state.store, checked_name(name), request.app.state.response_cache
    stamp = cache.fresh_stamp(sweep) or await run_in_threadpool(cache.stamp, store, sweep)
    if stamp is None:  # no such sweep: the document's own check answers (404 with the known sweeps)
        return CliJSONResponse(await run_in_threadpool(document, sweep))
    key = (route, sweep, tuple(sorted(query.items())))
    computed = []

    def render() -> bytes:
        computed.append(True)
        return CliJSONResponse(document(sweep)).body

    body = cache.peek(key, stamp)
    if body is None:
        body = await run_in_threadpool(cache.get, key, stamp, render)
    return Response(
        body,
        media_type=CliJSONResponse.media_type,
        headers={"X-Ceiling-Cache": "miss" if computed else "hit"},
    )


def _one_at_a_time(request: Request):  # type: ignore[no-untyped-def]
    """Identical report queries (path and query string) wait for one another: the first fills the fit
    cache. (Reports also show training curves, which change while trials run: not cached.)"""
    return request.app.state.single_flight(f"{request.url.path}?{request.url.query}")
