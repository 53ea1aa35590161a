"""`ceiling serve` under load: many clients querying cached laws and comparisons, and submit -> first step.

Fills a SQLite store with a synthetic two-architecture ladder (law points only: nothing is trained), makes
an admin token with `ceiling token create --json`, starts a real `ceiling serve` on 127.0.0.1 (uvicorn in
its own process), warms the fit cache with one `laws` and one `compare` request, then runs ``--clients``
concurrent clients for ``--seconds``, each alternating ``GET /v1/sweeps/NAME/laws`` and ``.../compare``
on its own keep-alive connection (closed loop: a client sends its next request when the last answer
arrives, after ``--think-ms``). Latency is measured per request by the clients, so it includes the
queueing a busy server causes; with no think time, Little's law ties p50 to ``clients / throughput``.

    python bench/api.py                          # 50 clients, 30 s (~1 min with start-up and warm-up)
    python bench/api.py --clients 2 --seconds 2  # the test's tiny run
    python bench/api.py --submit                 # submit -> first trial step on a warm server (target < 10 s)
    python bench/api.py --submit --no-warm-driver  # the same, each sweep's process started cold

The clients and the server share this machine's cores, as they would on a laptop; numbers from a 2-core
box are a floor, not a server's capacity. Prints a table, then one JSON line with the headline figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator.store import Store  # noqa: E402

CEILING = str(Path(sys.executable).with_name("ceiling"))
SWEEP = "bench-laws"
ARCHS = {"transformer": 0.0, "gla": 0.03}  # loss offsets: gla a little worse at every size
TARGET_P99_MS = 100.0
TARGET_SUBMIT_S = 10.0


# -- the store and the server ---------------------------------------------------------------------------


def chinchilla_loss(n: float, d: float, offset: float) -> float:
    return 1.69 + offset + 406.4 / n**0.34 + 410.7 / d**0.28  # Hoffmann et al.'s fit, nats/token


def fill_store(url: str, sweep: str = SWEEP) -> int:
    """A finished synthetic ladder: per architecture 7 sizes x 5 tokens-per-parameter ratios, 1% noise.
    Returns the number of trials written."""
    rng = np.random.default_rng(0)
    store = Store.open(url)
    store.upsert_sweep(sweep, {"name": sweep}, workdir=None, code_version="bench")
    rows, losses = [], {}
    for arch, offset in ARCHS.items():
        for n in np.geomspace(1e6, 3e8, 7):
            for ratio in (5, 10, 20, 40, 80):
                d = n * ratio
                trial_id = f"{arch}-{int(n)}-{ratio}"
                rows.append(
                    {
                        "id": trial_id,
                        "arch": arch,
                        "label": arch,
                        "size_target": float(n),
                        "params_total": int(n * 1.2),
                        "params_embedding": int(n * 0.2),
                        "params_non_embedding": int(n),
                        "state_size": 1024,
                        "seq_len": 64,
                        "tokens": int(d),
                        "steps_total": 100,
                        "flops_6nd": 6.0 * n * d,
                        "flops_exact": 6.6 * n * d,
                        "seed": 0,
                        "lr": 3e-3,
                        "config": {"arch": arch, "id_hint": trial_id},
                    }
                )
                losses[trial_id] = chinchilla_loss(n, d, offset) * float(np.exp(rng.normal(0, 0.01)))
    store.add_trials(sweep, rows)
    for trial_id, value in losses.items():
        attempt = store.claim(trial_id)
        store.finish(trial_id, attempt, final_val_loss=value, final_val_bpb=value / np.log(2))
    store.close()
    return len(rows)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_token(store_args: list[str], user: str = "bench") -> str:
    """An admin token from `ceiling token create --json` (the token is in the document, shown once)."""
    done = subprocess.run(
        [CEILING, "token", "create", "--user", user, "--admin", "--json", *store_args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"`ceiling token create` failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)["token"]


class Server:
    """`ceiling serve` in its own process group on 127.0.0.1, its output in a log file."""

    def __init__(
        self,
        store_args: list[str],
        folder: Path,
        port: int | None = None,
        address: str | None = None,
        extra: tuple[str, ...] = (),
    ):
        self.port = port or free_port()
        self.log_path = folder / "serve.log"
        command = [CEILING, "serve", *store_args, "--host", "127.0.0.1", "--port", str(self.port), *extra]
        command += ["--address", address] if address else []
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 120.0) -> float:
        """Seconds until ``/v1/ready`` answers 200."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if self.process.poll() is not None:
                raise SystemExit(f"`ceiling serve` exited {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                status, _ = request(self.port, "GET", "/v1/ready", token=None, timeout=5)
                if status == 200:
                    return time.monotonic() - start
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"`ceiling serve` not ready after {timeout_s:.0f} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def request(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None,
    body: bytes | None = None,
    content_type: str | None = None,
    timeout: float = 600,
) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if content_type:
            headers["Content-Type"] = content_type
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# -- the load -------------------------------------------------------------------------------------------


def run_clients(
    port: int, token: str, paths: list[str], clients: int, seconds: float, think_ms: float
) -> tuple[list[tuple[str, float]], dict[str, int]]:
    """``clients`` threads, each on its own keep-alive connection, cycling through ``paths`` until
    ``seconds`` have passed. Returns (path, latency ms) per answered request and the count of errors by kind."""
    results: list[tuple[str, float]] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    start_line = threading.Barrier(clients + 1)
    headers = {"Authorization": f"Bearer {token}"}

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[tuple[str, float]] = []
        my_errors: dict[str, int] = {}
        start_line.wait()
        deadline = time.monotonic() + seconds
        turn = index  # clients start at different paths, so both endpoints are busy from the start
        while time.monotonic() < deadline:
            path = paths[turn % len(paths)]
            turn += 1
            sent = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                kind = type(exc).__name__
                my_errors[kind] = my_errors.get(kind, 0) + 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            elapsed_ms = (time.perf_counter() - sent) * 1000
            if response.status == 200:
                mine.append((path, elapsed_ms))
            else:
                my_errors[f"HTTP {response.status}"] = my_errors.get(f"HTTP {response.status}", 0) + 1
            if think_ms:
                time.sleep(think_ms / 1000)
        connection.close()
        with lock:
            results.extend(mine)
            for kind, count in my_errors.items():
                errors[kind] = errors.get(kind, 0) + count

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    return results, errors


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def timed_get(port: int, path: str, token: str) -> float:
    """Seconds one GET takes; it must answer 200."""
    start = time.perf_counter()
    status, body = request(port, "GET", path, token=token)
    if status != 200:
        raise SystemExit(f"GET {path} answered {status}: {body[:500]!r}")
    return time.perf_counter() - start


def bench_queries(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    db = f"sqlite:///{folder / 'store.db'}"
    store_args = ["--db", db, "--workdir", str(folder / "work")]
    trials = fill_store(db)
    token = create_token(store_args)
    # The API alone: no sweep runs here, so no Ray cluster and no warm driver taking CPU from the clients.
    server = Server(store_args, folder, extra=("--max-running-sweeps", "0"))
    try:
        ready_s = server.wait_ready()
        query = f"?n_boot={args.n_boot}" if args.n_boot is not None else ""
        laws_path, compare_path = f"/v1/sweeps/{SWEEP}/laws{query}", f"/v1/sweeps/{SWEEP}/compare{query}"
        cold = {
            "laws": timed_get(server.port, laws_path, token),
            "compare": timed_get(server.port, compare_path, token),
        }
        warm = {
            "laws": timed_get(server.port, laws_path, token),
            "compare": timed_get(server.port, compare_path, token),
        }
        sizes = {
            name: len(request(server.port, "GET", path, token=token)[1])
            for name, path in (("laws", laws_path), ("compare", compare_path))
        }
        results, errors = run_clients(
            server.port, token, [laws_path, compare_path], args.clients, args.seconds, args.think_ms
        )
        # The floor: the same clients on /v1/health (no token, no store, no fit): what the HTTP stack alone
        # costs on this machine, the yardstick for the figures above when the machine is busy.
        floor = run_clients(
            server.port, token, ["/v1/health"], args.clients, args.floor_seconds, args.think_ms
        )
    finally:
        server.stop()
    latencies = [ms for _, ms in results]
    by_path = {
        name: [ms for p, ms in results if p == path]
        for name, path in (("laws", laws_path), ("compare", compare_path))
    }
    return {
        "trials": trials,
        "ready_s": ready_s,
        "cold_s": cold,
        "warm_s": warm,
        "body_bytes": sizes,
        "latencies": latencies,
        "by_path": by_path,
        "errors": errors,
        "floor": [ms for _, ms in floor[0]],
    }


# -- submit -> first step ---------------------------------------------------------------------------------


def tiny_sweep(name: str, seed: int) -> dict[str, Any]:
    """One 20k-parameter Transformer trial of 16 steps on the stdlib corpus (no download)."""
    return {
        "name": name,
        "architectures": ["transformer"],
        "sizes": ["20k"],
        "seeds": [seed],
        "budgets": {"tokens": [4096]},
        "data": {"corpus": "stdlib", "tokenizer": "byte", "seq_len": 32, "val_tokens": 2048},
        "training": {"batch_tokens": 256, "micro_batch_size": 4, "precision": "fp32", "eval_interval": 8},
        "resources": {"workers_per_trial": 1, "cpus_per_worker": 1, "max_concurrent_trials": 1},
    }


def submit_and_time(port: int, token: str, spec: dict[str, Any], timeout_s: float) -> dict[str, float]:
    """POST the spec, then poll its runs until a trial has taken a step and until the sweep is done.
    Returns seconds from the POST to each."""
    name = spec["name"]
    start = time.monotonic()
    status, body = request(
        port,
        "POST",
        "/v1/sweeps",
        token=token,
        body=json.dumps(spec).encode(),
        content_type="application/json",
    )
    if status not in (200, 201):
        raise SystemExit(f"POST /v1/sweeps answered {status}: {body[:1000]!r}")
    first_step = None
    while time.monotonic() - start < timeout_s:
        status, body = request(port, "GET", f"/v1/sweeps/{name}/runs?format=json", token=token)
        if status == 200:
            trials = json.loads(body)["trials"]
            if first_step is None and any((t.get("steps_done") or 0) > 0 for t in trials):
                first_step = time.monotonic() - start
            status, body = request(port, "GET", f"/v1/sweeps/{name}", token=token)
            queue = json.loads(body).get("queue", {}) if status == 200 else {}
            if queue.get("status") in ("done", "failed", "cancelled"):
                if queue["status"] != "done":
                    raise SystemExit(f"sweep {name} ended {queue['status']}: {body[:1000]!r}")
                return {
                    "first_step_s": first_step or time.monotonic() - start,
                    "done_s": time.monotonic() - start,
                }
        time.sleep(0.1)
    raise SystemExit(f"sweep {name} not done within {timeout_s:.0f} s")


def bench_submit(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    if not args.ray_cluster:
        return submit_to(args, folder, address=None)
    # As deployed: a Ray cluster that is already up (here one node on this machine, in its own process
    # group and temp folder, so no other Ray on the machine is touched), the server given its address.
    from tests.loopback_cluster import LoopbackCluster

    with LoopbackCluster(workers=1, cpus_per_worker=os.cpu_count() or 2) as cluster:
        return submit_to(args, folder, address=cluster.address)


def submit_to(args: argparse.Namespace, folder: Path, address: str | None) -> dict[str, Any]:
    db = f"sqlite:///{folder / 'store.db'}"
    store_args = ["--db", db, "--workdir", str(folder / "work")]
    token = create_token(store_args)
    extra = ("--no-warm-driver",) if args.no_warm_driver else ()
    server = Server(store_args, folder, address=address, extra=extra)
    try:
        ready_s = server.wait_ready()
        # The first sweep pays for starting Ray, the worker and the corpus cache: a cold server.
        cold = submit_and_time(server.port, token, tiny_sweep("bench-submit-cold", 0), args.submit_timeout)
        warm = submit_and_time(server.port, token, tiny_sweep("bench-submit-warm", 1), args.submit_timeout)
    finally:
        server.stop()
    return {"ready_s": ready_s, "cold": cold, "warm": warm}


# -- main -------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the clients query (default 30)")
    parser.add_argument("--think-ms", type=float, default=0.0, help="pause of each client between requests")
    parser.add_argument(
        "--n-boot",
        type=int,
        default=None,
        help="bootstrap resamples of the queried fits (default: the server's, 1000)",
    )
    parser.add_argument(
        "--floor-seconds",
        type=float,
        default=5.0,
        help="seconds of the same clients on /v1/health (the floor)",
    )
    parser.add_argument("--submit", action="store_true", help="measure submit -> first trial step instead")
    parser.add_argument(
        "--ray-cluster",
        action="store_true",
        help="with --submit: start a local Ray cluster first and serve with --address, as a deployment does "
        "(default: the server starts one embedded Ray cluster with its first sweep and keeps it)",
    )
    parser.add_argument(
        "--no-warm-driver",
        action="store_true",
        help="with --submit: serve with --no-warm-driver (each sweep's process started cold: the 'before')",
    )
    parser.add_argument("--submit-timeout", type=float, default=300.0, help="seconds to wait for each sweep")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the store and the server log in this folder"
    )
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.floor_seconds <= 0:
        parser.error("--clients must be >= 1, --seconds and --floor-seconds > 0")

    with tempfile.TemporaryDirectory(prefix="ceiling-bench-api-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if args.submit:
            result = bench_submit(args, folder)
            document = {
                "submit_to_first_step_s": round(result["warm"]["first_step_s"], 2),
                "target_submit_s": TARGET_SUBMIT_S,
                "ratio_to_target": round(result["warm"]["first_step_s"] / TARGET_SUBMIT_S, 3),
                "submit_to_done_s": round(result["warm"]["done_s"], 2),
                "cold_submit_to_first_step_s": round(result["cold"]["first_step_s"], 2),
                "cold_submit_to_done_s": round(result["cold"]["done_s"], 2),
                "server_ready_s": round(result["ready_s"], 2),
                "ray": "a running cluster (--address)" if args.ray_cluster else "embedded, one per server",
                "warm_driver": not args.no_warm_driver,
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
            print(f"{'':28}{'first step':>12}{'done':>10}")
            for which in ("cold", "warm"):
                print(
                    f"{which + ' server':28}{result[which]['first_step_s']:>11.2f}s{result[which]['done_s']:>9.2f}s"
                )
            print(
                f"target: submit -> first step < {TARGET_SUBMIT_S:.0f} s on a warm server "
                f"({'no ' if args.no_warm_driver else ''}warm driver; load average {os.getloadavg()[0]:.1f})"
            )
            print(json.dumps(document))
            return document

        result = bench_queries(args, folder)
    latencies = result["latencies"]
    throughput = len(latencies) / args.seconds
    document = {
        "p99_ms": round(percentile(latencies, 99), 2),
        "p50_ms": round(percentile(latencies, 50), 2),
        "throughput_rps": round(throughput, 1),
        "clients": args.clients,
        "seconds": args.seconds,
        "target_p99_ms": TARGET_P99_MS,
        "p99_ratio_to_target": round(percentile(latencies, 99) / TARGET_P99_MS, 3),
        "think_ms": args.think_ms,
        "requests": len(latencies),
        "errors": sum(result["errors"].values()),
        "error_kinds": result["errors"],
        "floor_p99_ms": round(percentile(result["floor"], 99), 2),
        "floor_throughput_rps": round(len(result["floor"]) / args.floor_seconds, 1),
        "throughput_ratio_vs_floor": round(throughput / (len(result["floor"]) / args.floor_seconds), 3)
        if result["floor"]
        else None,
        "p99_ratio_vs_floor_p99": round(percentile(latencies, 99) / percentile(result["floor"], 99), 3)
        if result["floor"]
        else None,
        "p99_ms_laws": round(percentile(result["by_path"]["laws"], 99), 2),
        "p99_ms_compare": round(percentile(result["by_path"]["compare"], 99), 2),
        "cold_fit_s": {k: round(v, 2) for k, v in result["cold_s"].items()},
        "body_bytes": result["body_bytes"],
        "law_points": result["trials"],
        "n_boot": args.n_boot if args.n_boot is not None else 1000,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],  # 1, 5, 15 min: the machine's business
    }
    print(f"{result['trials']} law points, 2 architectures; server ready in {result['ready_s']:.1f} s")
    for name in ("laws", "compare"):
        print(
            f"  {name:8} first (fit) {result['cold_s'][name]:7.2f} s   cached {result['warm_s'][name] * 1000:7.1f} ms"
            f"   body {result['body_bytes'][name] / 1024:.0f} KiB"
        )
    print(f"{args.clients} clients x {args.seconds:g} s (think {args.think_ms:g} ms):")
    print(f"{'endpoint':10}{'requests':>10}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, values in (*result["by_path"].items(), ("all", latencies), ("(floor)", result["floor"])):
        print(
            f"{name:10}{len(values):>10}{percentile(values, 50):>10.1f}{percentile(values, 90):>10.1f}"
            f"{percentile(values, 99):>10.1f}{max(values, default=float('nan')):>10.1f}"
        )
    print(
        f"throughput {throughput:.1f} requests/s; errors {result['errors'] or 'none'}; target p99 < {TARGET_P99_MS:.0f} ms; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(json.dumps(document))
    return document


if __name__ == "__main__":
    main()
