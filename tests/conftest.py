"""Session-wide fixtures: a token cache, one Ray runtime, a throw-away Postgres database."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
POSTGRES_ADMIN_URL = os.environ.get(
    "CEILING_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session", autouse=True)
def token_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tokenize the default corpus once per test run, shared by every test and Ray worker."""
    cache = Path(os.environ.get("CEILING_TEST_CACHE") or tmp_path_factory.mktemp("ceiling-cache"))
    os.environ["CEILING_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session", autouse=True)
def quick_design_power() -> None:
    """`ceiling plan` simulates the design's power by default (40 studies, ~10 s); tests that plan
    for other reasons get a few studies. tests/laws/test_design_power.py sets its own counts."""
    os.environ.setdefault("CEILING_POWER_SIMULATIONS", "4")


@pytest.fixture(scope="session")
def ray_runtime():
    """One embedded Ray runtime for the whole run (it takes 3-5 s to start here)."""
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
        runtime_env={"env_vars": {"CEILING_CACHE": os.environ["CEILING_CACHE"]}},
    )
    yield ray
    ray.shutdown()


def _postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A fresh database on the local PostgreSQL server, dropped after the run."""
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432; .ci/run should have started it")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    import psycopg

    name = f"ceiling_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs against SQLite and against PostgreSQL (a fresh schema per test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"  # a generator fixture: `return` would yield nothing
        return
    base = request.getfixturevalue("postgres_url")
    import psycopg

    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def smoke_run(ray_runtime, tmp_path_factory: pytest.TempPathFactory):
    """examples/smoke.yaml run once through the real CLI (Ray, DeepSpeed, SQLite, MLflow).

    Returns (workdir, the `ceiling run --json` summary). Shared by every test that needs a real store.
    """
    import json

    from typer.testing import CliRunner

    from orchestrator.cli import app

    workdir = tmp_path_factory.mktemp("smoke")
    result = CliRunner().invoke(
        app, ["run", str(EXAMPLES / "smoke.yaml"), "--workdir", str(workdir), "--json"]
    )
    assert result.exit_code == 0, result.output
    return workdir, json.loads(result.stdout)


@pytest.fixture
def chromium() -> str:
    """Headless Chromium for the report and dashboard browser tests: skipped where it is missing,
    except under CI, where scripts/test.sh installs it and a missing one is a failure."""
    from tests.dashboard.cdp import find_chromium

    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; scripts/test.sh installs it (apt-get install chromium)")
        pytest.skip(
            "no chromium on this machine (apt-get install chromium); with CI=1 this test fails instead"
        )
    return binary
