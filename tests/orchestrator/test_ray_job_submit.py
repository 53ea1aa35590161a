"""`ray job submit -- ceiling run ...` against a real Ray cluster (a head with the job server and one
worker node on this machine): the job's driver is `ceiling run`, which joins the cluster it runs in
(Ray sets RAY_ADDRESS for a job's entrypoint) instead of starting a Ray of its own."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.training.distributed import free_port
from tests.loopback_cluster import LoopbackCluster
from tests.sweep_runs import CEILING, assert_each_done_once, sweep

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))


def test_ray_job_submit_runs_a_sweep_on_the_cluster(tmp_path: Path):
    job_folder = tmp_path / "job"  # uploaded to the cluster as the job's working directory
    job_folder.mkdir()
    (job_folder / "sweep.yaml").write_text(yaml.safe_dump(sweep("job-submit", sizes=("20k", "30k"))))
    db = f"sqlite:///{tmp_path / 'ceiling.db'}"
    port = free_port()
    with LoopbackCluster(workers=1, cpus_per_worker=2, dashboard_port=port) as cluster:
        submit = ["timeout", "-k", "10", "400", RAY, "job", "submit", "--address", f"http://127.0.0.1:{port}"]
        submit += ["--working-dir", str(job_folder), "--"]
        submit += [
            CEILING,
            "run",
            "sweep.yaml",
            "--db",
            db,
            "--workdir",
            str(tmp_path / "work"),
            "--no-mlflow",
        ]
        # The head's dashboard agent, which runs jobs, comes up some seconds after the cluster answers;
        # until then the job server refuses with "No available agent ... try again later".
        deadline = time.monotonic() + 90
        while True:
            result = subprocess.run(submit, capture_output=True, text=True)
            if "No available agent" not in result.stderr + result.stdout or time.monotonic() > deadline:
                break
            time.sleep(2)
        placed = cluster.actor_nodes()
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "succeeded" in result.stdout + result.stderr
    # The trials ran on the cluster's worker node: the job joined the cluster rather than a private Ray.
    assert placed and set(placed) <= set(cluster.node_ids), (placed, cluster.node_ids)
    assert_each_done_once(db, "job-submit", trials=2, evals_per_trial=3)  # steps 0, 8, 16
