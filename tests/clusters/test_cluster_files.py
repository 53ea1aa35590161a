"""The launcher files in clusters/: they parse, have the structure their tools need, and bind safely."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from orchestrator.spec import parse_spec
from tests.conftest import REPO

CLUSTERS = REPO / "clusters"
SCRIPTS = [CLUSTERS / "onprem" / "ray-node.sh", CLUSTERS / "slurm" / "ceiling-ray.sbatch"]
YAML_FILES = sorted(CLUSTERS.rglob("*.yaml"))


def _docs(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(CLUSTERS)))
def test_every_yaml_file_safe_loads(path: Path):
    assert _docs(path)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_valid_bash_and_executable(path: Path):
    assert os.access(path, os.X_OK)
    subprocess.run(["bash", "-n", str(path)], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", "-S", "error", str(path)], check=True)


def _ray_node(*args: str, **env: str) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPTS[0]), *args],
        env={**os.environ, "DRY_RUN": "1", "CEILING_NODE_IP": "10.1.2.3", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_onprem_head_binds_the_dashboard_to_localhost_unless_told():
    head = _ray_node("head").splitlines()[0]
    assert head.startswith("ray start --head --node-ip-address=10.1.2.3 --port=6379")
    assert "--ray-client-server-port=10001" in head and "--dashboard-host=127.0.0.1" in head
    assert "--dashboard-host=0.0.0.0" in _ray_node("head", DASHBOARD_HOST="0.0.0.0")
    assert "--num-cpus=0" in _ray_node("head", NUM_CPUS="0")
    worker = _ray_node("worker", "10.1.2.3:6379").strip()
    assert worker == "ray start --address=10.1.2.3:6379 --node-ip-address=10.1.2.3 --disable-usage-stats"
    bad = subprocess.run(["bash", str(SCRIPTS[0]), "bogus"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage:" in bad.stderr


def test_slurm_script_starts_ray_on_every_node_and_runs_ceiling():
    text = SCRIPTS[1].read_text()
    assert "#SBATCH --nodes=" in text and "#SBATCH --gpus-per-node=" in text
    assert "ray start --head --block" in text and 'ray start --block --address="$head_ip:$port"' in text
    assert "--dashboard-host=127.0.0.1" in text
    assert 'RAY_ADDRESS="$head_ip:$port" ceiling run "$sweep" "$@"' in text


def _by_kind(path: Path) -> dict[str, dict]:
    return {d["kind"]: d for d in _docs(path)}


def _containers(cluster_spec: dict) -> list[dict]:
    templates = [cluster_spec["headGroupSpec"]["template"]] + [
        g["template"] for g in cluster_spec["workerGroupSpecs"]
    ]
    return [c for t in templates for c in t["spec"]["containers"]]


def test_kuberay_raycluster_manifest():
    docs = _by_kind(CLUSTERS / "kuberay" / "raycluster.yaml")
    cluster = docs["RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1"
    spec = cluster["spec"]
    assert spec["headGroupSpec"]["serviceType"] == "ClusterIP"
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    for container in _containers(spec):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert {"CEILING_CACHE", "CEILING_DB", "CEILING_TRACKING_URI"} <= env.keys()
        assert make_url(env["CEILING_DB"]).password is None  # passwords come from the secret
        assert container["envFrom"] == [{"secretRef": {"name": "ceiling-secrets"}}]
    assert docs["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_kuberay_rayjob_runs_ceiling_on_a_valid_sweep():
    docs = _by_kind(CLUSTERS / "kuberay" / "rayjob.yaml")
    job = docs["RayJob"]
    assert job["apiVersion"] == "ray.io/v1"
    entrypoint = job["spec"]["entrypoint"]
    assert entrypoint.startswith("ceiling run /etc/ceiling/sweep.yaml")
    sweep = yaml.safe_load(docs["ConfigMap"]["data"]["sweep.yaml"])
    spec = parse_spec(sweep, "rayjob.yaml ConfigMap")
    assert spec.resources.gpus_per_worker >= 1 and spec.deepspeed.preset == "zero2-bf16"
    containers = _containers(job["spec"]["rayClusterSpec"])
    mounts = {m["mountPath"] for c in containers for m in c["volumeMounts"]}
    assert {"/shared", "/etc/ceiling"} <= mounts


def test_cloud_launcher_config_passes_rays_own_validation():
    import jsonschema
    import ray

    config = yaml.safe_load((CLUSTERS / "cloud" / "aws-gpu.yaml").read_text())
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    try:
        from ray.autoscaler._private.util import prepare_config, validate_config
    except ImportError:  # private API moved: the schema check above still ran
        return
    validate_config(prepare_config(config))
    assert config["available_node_types"][config["head_node_type"]]["resources"] == {"CPU": 0}
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start


def test_readme_documents_every_file_and_the_addresses():
    text = (CLUSTERS / "README.md").read_text()
    for path in [*SCRIPTS, *YAML_FILES, CLUSTERS / "kuberay" / "Dockerfile"]:
        assert path.name in text, path
    for phrase in (
        "--address ray://",
        "RAY_ADDRESS",
        "ray job submit",
        "PGPASSWORD",
        "MLFLOW_TRACKING_PASSWORD",
    ):
        assert phrase in text


def test_kuberay_ceiling_serve_runs_the_api_next_to_the_raycluster():
    docs = _by_kind(CLUSTERS / "kuberay" / "ceiling-serve.yaml")
    deployment, service = docs["Deployment"], docs["Service"]
    assert deployment["apiVersion"] == "apps/v1" and service["apiVersion"] == "v1"
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"  # one server runs the queue
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = spec["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["ceiling", "serve"] and command[command.index("--host") + 1] == "0.0.0.0"
    port = int(command[command.index("--port") + 1])
    (container_port,) = container["ports"]
    assert container_port["containerPort"] == port
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/ready", "port": container_port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v1/health", "port": container_port["name"]}
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == container_port["name"] and service["spec"]["type"] == "ClusterIP"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RAY_ADDRESS"].startswith("ray://ceiling-head-svc:")  # the head Service of raycluster.yaml
    assert "CEILING_DB" not in env and "CEILING_TOKEN" not in env  # the store's URL comes from a Secret
    assert {"secretRef": {"name": "ceiling-serve-db"}} in container["envFrom"]
    cluster = _by_kind(CLUSTERS / "kuberay" / "raycluster.yaml")
    claim = cluster["PersistentVolumeClaim"]["metadata"]["name"]
    assert spec["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim


def _unit(path: Path) -> dict[str, dict[str, str]]:
    import configparser

    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text())
    return {section: dict(parser[section]) for section in parser.sections()}


def test_onprem_systemd_unit_runs_ceiling_serve_as_its_own_user(tmp_path: Path):
    path = CLUSTERS / "onprem" / "ceiling-serve.service"
    unit = _unit(path)
    service = unit["Service"]
    assert service["User"] == "ceiling" and service["Restart"] == "on-failure"
    assert service["EnvironmentFile"] == "/etc/ceiling/serve.env"
    assert " serve --host ${CEILING_SERVE_HOST}" in service["ExecStart"]
    assert "CEILING_SERVE_HOST=127.0.0.1" in service["Environment"]  # loopback unless told otherwise
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    if shutil.which("systemd-analyze"):  # systemd's own check, with ExecStart pointing at this venv
        local = tmp_path / path.name
        venv_ceiling = Path(sys.executable).with_name("ceiling")
        local.write_text(path.read_text().replace("/opt/ceiling/.venv/bin/ceiling", str(venv_ceiling)))
        done = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True)
        assert done.returncode == 0 and not done.stderr.strip(), done.stderr
