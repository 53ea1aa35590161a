"""Third-party log lines (MLflow, alembic, Ray, urllib3, ...) go to the work folder's log file.

A sweep's terminal output is its progress table; "Creating initial MLflow database tables", alembic's
migration lines and Ray's start-up warnings are for debugging, so they go to ``<workdir>/ceiling.log``
while a sweep runs (``ceiling run --verbose`` leaves them on stderr). Our own loggers (``ceiling.*``)
are untouched: what they say is meant for the user.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from pathlib import Path

LOG_FILE = "ceiling.log"
# Loggers to route, with the level to record at (None: keep the library's own level). alembic is
# recorded from INFO (MLflow sets it to WARNING): its migration lines belong in the log file.
LIBRARY_LOGGERS: dict[str, int | None] = {
    "mlflow": None,
    "alembic": logging.INFO,
    "ray": None,
    "urllib3": None,
    "sqlalchemy": None,
    "huey": None,
    "filelock": None,
    "git": None,
}
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def library_logs_to(path: Path | None, *, preload: tuple[str, ...] = ()) -> Iterator[Path | None]:
    """Route the third-party loggers to ``path`` (appended) inside the block; ``None`` does nothing.

    ``preload``: libraries the block will use that set up their own stderr handlers when first imported
    (``mlflow`` replaces the handlers of its loggers, ``ray`` adds one): imported first, so that our
    handler replaces theirs rather than the other way round. Everything is restored afterwards.
    """
    if path is None:
        yield None
        return
    for module in preload:
        importlib.import_module(module)
    path.parent.mkdir(parents=True, exist_ok=True)
    shared = _file_handler(path)
    # Ray's own handler: ray.init(configure_logging=True) sets its format on every handler of the "ray"
    # logger, which would change every other library's lines in the file too.
    for_ray = _file_handler(path)
    saved = []
    for name, level in LIBRARY_LOGGERS.items():
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers, logger.propagate, logger.level if level is not None else None))
        logger.handlers = [for_ray if name == "ray" else shared]
        logger.propagate = False
        if level is not None:
            logger.setLevel(level)
    try:
        yield path
    finally:
        # Levels are restored only where we set one (ray.init sets the "ray" level itself: it stays).
        for logger, handlers, propagate, level in saved:
            logger.handlers, logger.propagate = handlers, propagate
            if level is not None:
                logger.setLevel(level)
        shared.close()
        for_ray.close()


def _file_handler(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler
