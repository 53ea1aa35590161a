"""Keep BLAS single-threaded around the many tiny solves of a fit.

scipy's L-BFGS-B makes small BLAS calls every iteration. OpenBLAS hands each to its thread
pool, and on a small shared machine the wake-ups dominate: a bootstrap measured 25x slower
under load. Parallelism here comes from processes over replicates, never from BLAS threads.
threadpoolctl (present with the project's dependencies) does the limiting; without it this is
a no-op and only speed is affected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
