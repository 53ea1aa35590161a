"""Finished law documents, cached per query and per state of the sweep's law inputs.

The fit cache (orchestrator/store/law_inputs.py) saves the fitting, but a request still rebuilt its
document from the cached fits: ~15 ms of CPU for ``laws`` and ~75 ms for ``compare`` (percentiles over
the bootstrap samples), so 50 clients on 2 cores queued for seconds. Here the rendered body itself is
kept, keyed by (route, normalised query) and valid while the sweep's *stamp* is unchanged: one cheap
aggregate over its trials (how many, how many done / failed, the latest ``finished_at``) plus the
fit-cache version, read at most once a second per sweep. A trial that finishes, fails or joins the
sweep changes the stamp, and the first request after it (within ``STAMP_TTL_S``) computes afresh. Identical concurrent misses compute once: the first caller's result is handed
to every caller waiting on it (single flight). Entries are bounded (least recently used goes first).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select

MAX_ENTRIES = 512  # a rendered document is a few kB to ~100 kB: tens of MB at worst
# The stamp itself is remembered this long per sweep: its query is most of a cached answer's cost
# (~1.7 ms of ~3.5 ms on SQLite), and a trial finishing shows in the documents within this delay.
STAMP_TTL_S = 1.0


def sweep_stamp(store: Any, sweep: str) -> tuple[Any, ...] | None:
    """What the law documents of ``sweep`` depend on, in one query; None if there is no such sweep
    (the caller then computes, and answers the usual 404)."""
    from orchestrator.store.law_inputs import FIT_CACHE_VERSION
    from orchestrator.store.schema import Sweep, SweepTrial, Trial

    def op(session: Any) -> tuple[Any, ...] | None:
        updated = session.scalar(select(Sweep.updated_at).where(Sweep.name == sweep))
        if updated is None:
            return None
        row = session.execute(
            select(
                func.count(),
                func.count(case((Trial.status == "done", 1))),
                func.count(case((Trial.status.in_(("failed", "diverged")), 1))),
                func.max(Trial.finished_at),
            )
            .select_from(Trial)
            .join(SweepTrial, SweepTrial.trial_id == Trial.id)
            .where(SweepTrial.sweep_name == sweep)
        ).one()
        return (str(updated), *(str(v) if v is not None else None for v in row), FIT_CACHE_VERSION)

    return store._read(op)


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    failed: bool = False


class ResponseCache:
    """An LRU of ``key -> (stamp, value)`` with single flight per ``(key, stamp)``. Thread-safe: the
    synchronous routes run in uvicorn's thread pool."""

    def __init__(self, max_entries: int = MAX_ENTRIES, stamp_ttl_s: float = STAMP_TTL_S):
        self.max_entries, self.stamp_ttl_s = max_entries, stamp_ttl_s
        self._stamps: dict[str, tuple[tuple[Any, ...], float]] = {}
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._flights: dict[tuple[Hashable, Hashable], _Flight] = {}
        self.hits = self.misses = self.shared = 0  # shared: waiters handed a concurrent miss's result

    def __len__(self) -> int:
        return len(self._entries)

    def fresh_stamp(self, sweep: str) -> tuple[Any, ...] | None:
        """The sweep's remembered stamp if read less than ``stamp_ttl_s`` ago (no store query)."""
        memo = self._stamps.get(sweep)
        return memo[0] if memo is not None and memo[1] > time.monotonic() else None

    def peek(self, key: Hashable, stamp: Hashable) -> Any:
        """The cached value of ``key`` at ``stamp``, or None (never computes, never waits)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != stamp:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def stamp(self, store: Any, sweep: str) -> tuple[Any, ...] | None:
        """:func:`sweep_stamp`, read from the store at most once per ``stamp_ttl_s`` per sweep (an
        unknown sweep is asked every time, so it is found as soon as it is stored)."""
        now = time.monotonic()
        memo = self._stamps.get(sweep)
        if memo is not None and memo[1] > now:
            return memo[0]
        stamp = sweep_stamp(store, sweep)
        with self._lock:
            if stamp is None:
                self._stamps.pop(sweep, None)
            else:
                if len(self._stamps) >= self.max_entries:
                    self._stamps.clear()
                self._stamps[sweep] = (stamp, now + self.stamp_ttl_s)
        return stamp

    def get(self, key: Hashable, stamp: Hashable, compute: Callable[[], Any]) -> Any:
        """The cached value of ``key`` at ``stamp``, else ``compute()`` (once for concurrent callers)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == stamp:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[1]
            flight = self._flights.get((key, stamp))
            leader = flight is None
            if leader:
                flight = self._flights[(key, stamp)] = _Flight()
                self.misses += 1
        assert flight is not None
        if not leader:
            flight.done.wait()
            if not flight.failed:
                with self._lock:
                    self.shared += 1
                return flight.value
            # The first caller's error (bad input, the store away) is not shared: an exception
            # object raised in several threads at once would tangle its traceback. Compute alone.
            return compute()
        try:
            value = compute()
        except BaseException:
            flight.failed = True
            raise
        else:
            flight.value = value
            with self._lock:
                self._entries[key] = (stamp, value)  # replaces the entry of an older stamp
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            return value
        finally:
            with self._lock:
                self._flights.pop((key, stamp), None)
            flight.done.set()
