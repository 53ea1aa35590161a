"""One computation per identical query at a time: concurrent identical law queries wait for the first,
which fills the fit cache, instead of each fitting the same runs (50 clients on a cold cache would
otherwise run 50 bootstraps side by side)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SingleFlight:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, waiters = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, waiters + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, waiters = self._locks[key]
                if waiters == 1:
                    del self._locks[key]  # the last one out: no lock kept per query ever asked
                else:
                    self._locks[key] = (lock, waiters - 1)
