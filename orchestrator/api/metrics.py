"""Prometheus metrics of the service: request latency by route, queue length by status, running trials.

Each application has its own registry (no global state: tests build several apps in one process).
The queue and trial gauges are read from the store when scraped, so they are right after a restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from orchestrator.store.schema import Trial
from orchestrator.store.service_schema import QUEUE_STATUSES, QueuedSweep

# Cached law queries answer in milliseconds; fits and reports take seconds.
KNOWN_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class StoreGauges(Collector):
    def __init__(self, store: Any):
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        def counts(session: Any) -> tuple[dict[str, int], int]:
            by_status = dict(
                session.execute(select(QueuedSweep.status, func.count()).group_by(QueuedSweep.status)).all()
            )
            running = session.scalar(select(func.count()).select_from(Trial).where(Trial.status == "running"))
            return by_status, int(running or 0)

        by_status, running_trials = self.store._read(counts)
        queue = GaugeMetricFamily(
            "ceiling_queue_sweeps", "sweeps in the service's queue by status", labels=["status"]
        )
        for status in QUEUE_STATUSES:
            queue.add_metric([status], by_status.get(status, 0))
        yield queue
        yield GaugeMetricFamily(
            "ceiling_running_trials", "trials running now (all sweeps)", value=running_trials
        )


class ServiceMetrics:
    def __init__(self, store: Any):
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "ceiling_request_duration_seconds",
            "HTTP request latency by method, route template and status",
            labelnames=("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(StoreGauges(store))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "OTHER"  # a bounded label set, whatever is sent
        self.latency.labels(method, route, str(status)).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
