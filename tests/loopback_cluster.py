"""A real multi-node Ray cluster on this machine, for tests: a head and N worker nodes.

The cluster (``ray.cluster_utils.Cluster``: one GCS, one raylet per node, each with its own worker
processes) lives in a child process of its own, so it never touches the test process's session Ray,
and its temp folder is private, so it never writes the shared /tmp/ray/ray_current_cluster that
other clients would follow. The child reads one command per line on stdin:

    remove I    kill worker node I (raylet and its workers), as a lost machine would
    actors      print node id, pid and state of every TrialWorker actor ever placed
    (EOF)       shut the cluster down

Run as a script only by :class:`LoopbackCluster`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from orchestrator.training.distributed import free_port

# Lost nodes are declared dead after ~3 s instead of Ray's default ~30 s, so a removal test is short.
FAST_HEALTH_CHECKS = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}
START_TIMEOUT_S = 120


class LoopbackCluster:
    """``with LoopbackCluster(workers=2, cpus_per_worker=2) as cluster: ... cluster.address ...``"""

    def __init__(self, *, workers: int = 2, cpus_per_worker: int = 2, dashboard_port: int = 0):
        self.workers, self.cpus_per_worker = workers, cpus_per_worker
        self.dashboard_port = dashboard_port  # > 0: the head runs Ray's dashboard + job server on 127.0.0.1
        self.address: str = ""
        self.node_ids: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._temp = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # short: Ray's unix sockets cap path length

    def __enter__(self) -> LoopbackCluster:
        env = {**os.environ, "RAY_TMPDIR": self._temp}
        self._process = subprocess.Popen(
            # `timeout` bounds the cluster's whole life: a hung start must not hang the suite.
            [
                "timeout",
                "-k",
                "10",
                "900",
                sys.executable,
                __file__,
                str(self.workers),
                str(self.cpus_per_worker),
                str(self.dashboard_port),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,  # one process group: the cleanup below reaches every raylet it started
        )
        try:
            started = self._reply(START_TIMEOUT_S)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.address, self.node_ids = started["address"], started["node_ids"]
        return self

    def _reply(self, timeout_s: float) -> dict[str, Any]:
        import selectors

        assert self._process is not None and self._process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self._process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if selector.select(timeout=1.0):
                line = self._process.stdout.readline()
                if not line:
                    raise RuntimeError(f"loopback cluster exited (code {self._process.poll()})")
                if line.startswith("{"):
                    return json.loads(line)
        raise TimeoutError(f"loopback cluster: no answer within {timeout_s:.0f} s")

    def _command(self, line: str, timeout_s: float = 60) -> dict[str, Any]:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._reply(timeout_s)

    def remove_node(self, index: int) -> None:
        """Kill worker node ``index`` without warning (its raylet and every worker process on it)."""
        self._command(f"remove {index}")

    def actor_nodes(self) -> list[str]:
        """The node id of every TrialWorker actor placed so far (live or dead), one per actor."""
        return [actor["node"] for actor in self.actors()]

    def actors(self) -> list[dict[str, Any]]:
        """Every TrialWorker actor placed so far: ``{"node": id, "pid": .., "state": "ALIVE" | "DEAD" | ..}``."""
        return self._command("actors")["actors"]

    def __exit__(self, *_exc: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin:
                process.stdin.close()  # EOF: the child shuts the cluster down cleanly
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # anything left of our own process group
            except ProcessLookupError:
                pass
            process.wait()
            subprocess.run(["rm", "-rf", self._temp], check=False)


def _serve(workers: int, cpus_per_worker: int, dashboard_port: int) -> None:
    from ray.cluster_utils import Cluster

    # The head offers no CPUs, so every trial worker runs on a worker node. Every node's dashboard agent
    # gets a free port: at Ray's fixed default (52365) it would lose to another Ray on this machine (the
    # test session's own), and without the head's agent the job server refuses every job.
    head_args: dict[str, Any] = {
        "num_cpus": 0,
        "_system_config": FAST_HEALTH_CHECKS,
        "dashboard_agent_listen_port": free_port(),
    }
    if dashboard_port:
        # the job server (`ray job submit`) lives in the dashboard, which needs ray[default]
        head_args |= {
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": dashboard_port,
        }
    cluster = Cluster(initialize_head=True, head_node_args=head_args)
    nodes = [
        cluster.add_node(num_cpus=cpus_per_worker, dashboard_agent_listen_port=free_port())
        for _ in range(workers)
    ]
    cluster.wait_for_nodes()
    print(json.dumps({"address": cluster.address, "node_ids": [n.node_id for n in nodes]}), flush=True)
    try:
        for line in sys.stdin:
            command = line.split()
            if command[:1] == ["remove"]:
                cluster.remove_node(nodes[int(command[1])], allow_graceful=False)
                print(json.dumps({"removed": int(command[1])}), flush=True)
            elif command[:1] == ["actors"]:
                table = cluster.global_state.actor_table(None)
                placed = [
                    {"node": actor["Address"]["NodeID"], "pid": actor["Pid"], "state": actor["State"]}
                    for actor in table.values()
                    if actor["ActorClassName"].endswith("TrialWorker") and actor["Address"]["NodeID"]
                ]
                print(json.dumps({"actors": placed}), flush=True)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
