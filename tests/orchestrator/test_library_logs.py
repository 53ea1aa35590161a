"""`library_logs_to`: third-party loggers write to the work folder's log inside the block, as before after it."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from orchestrator.library_logs import library_logs_to


def test_library_lines_go_to_the_file_and_ours_stay_put(tmp_path: Path):
    terminal = io.StringIO()
    mlflow_logger, ours = logging.getLogger("mlflow.store.db.utils"), logging.getLogger("ceiling.store")
    parent = logging.getLogger("mlflow")
    before = (list(parent.handlers), parent.propagate, logging.getLogger("alembic").level, parent.level)
    ours.addHandler(stream := logging.StreamHandler(terminal))
    try:
        parent.handlers = [logging.StreamHandler(terminal)]  # as MLflow's import sets it up
        parent.setLevel(logging.INFO)
        with library_logs_to(tmp_path / "ceiling.log") as path:
            mlflow_logger.info("Creating initial MLflow database tables...")
            logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
            ours.warning("store unreachable; retry 1/7")
        log = path.read_text()
        assert "mlflow.store.db.utils: Creating initial MLflow database tables" in log
        assert "alembic.runtime.migration: Context impl SQLiteImpl." in log
        assert "store unreachable" not in log and "store unreachable" in terminal.getvalue()
        assert "Creating initial" not in terminal.getvalue()
        mlflow_logger.info("after the block")  # the library's own handler again
        assert "after the block" in terminal.getvalue() and "after the block" not in path.read_text()
        assert logging.getLogger("alembic").level == before[2]
    finally:
        ours.removeHandler(stream)
        parent.handlers, parent.propagate = before[0], before[1]
        parent.setLevel(before[3])


def test_no_path_routes_nothing(tmp_path: Path):
    handlers = list(logging.getLogger("ray").handlers)
    with library_logs_to(None) as path:
        assert path is None and logging.getLogger("ray").handlers == handlers
