#!/usr/bin/env bash
# Start or stop a Ray node for ceiling on machines you own (no Kubernetes, no Slurm).
#
#   clusters/onprem/ray-node.sh head                 # on the head machine; prints the addresses to use
#   clusters/onprem/ray-node.sh worker HEAD_IP:6379  # on every other machine
#   clusters/onprem/ray-node.sh stop                 # on any machine: stops its Ray processes
#
# Then, from any machine with the same environment:
#   ceiling run sweep.yaml --address ray://HEAD_IP:10001 --db postgresql://ceiling@DBHOST/ceiling \
#       --tracking-uri http://MLFLOW_HOST:5000
# or (the driver then runs on the head):  ray job submit --address http://127.0.0.1:8265 -- ceiling run sweep.yaml
#
# Every node needs the same Python environment (same ray, torch, ceiling versions): set CEILING_VENV to it.
# Environment knobs:
#   CEILING_NODE_IP   this node's address on the cluster network (default: the first of `hostname -I`)
#   RAY_PORT          GCS port on the head (default 6379)
#   RAY_CLIENT_PORT   Ray Client port on the head, for `--address ray://...` (default 10001)
#   DASHBOARD_HOST    where the Ray dashboard and job API listen (default 127.0.0.1: reach it through
#                     `ssh -L 8265:127.0.0.1:8265 HEAD`; set 0.0.0.0 only on a trusted, firewalled network)
#   NUM_CPUS / NUM_GPUS  override what Ray detects (e.g. NUM_CPUS=0 keeps trials off the head)
#   CEILING_VENV      a virtual environment to activate first
#   DRY_RUN=1         print the ray commands instead of running them
#
# Security: Ray has no authentication. Its ports (RAY_PORT, RAY_CLIENT_PORT and the node-manager/object
# ports) must be reachable only from the cluster's own network. Never expose them to the internet.
set -euo pipefail

role=${1:-}
if [[ -n "${CEILING_VENV:-}" ]]; then
  # shellcheck disable=SC1091
  . "$CEILING_VENV/bin/activate"
fi
run() {
  if [[ -n "${DRY_RUN:-}" ]]; then echo "$*"; else "$@"; fi
}
[[ -n "${DRY_RUN:-}" ]] || command -v ray >/dev/null || { echo "ray is not on PATH; activate ceiling's environment (CEILING_VENV=...)" >&2; exit 2; }

node_ip=${CEILING_NODE_IP:-$(hostname -I 2>/dev/null | awk '{print $1}')}
node_ip=${node_ip:-127.0.0.1}
port=${RAY_PORT:-6379}
client_port=${RAY_CLIENT_PORT:-10001}
dashboard_host=${DASHBOARD_HOST:-127.0.0.1}
resources=()
[[ -n "${NUM_CPUS:-}" ]] && resources+=(--num-cpus="$NUM_CPUS")
[[ -n "${NUM_GPUS:-}" ]] && resources+=(--num-gpus="$NUM_GPUS")

case "$role" in
  head)
    run ray start --head \
      --node-ip-address="$node_ip" \
      --port="$port" \
      --ray-client-server-port="$client_port" \
      --dashboard-host="$dashboard_host" \
      --disable-usage-stats \
      ${resources[@]+"${resources[@]}"}
    cat <<MSG

Ray head is up on $node_ip.
  workers:   clusters/onprem/ray-node.sh worker $node_ip:$port
  clients:   ceiling run SWEEP.yaml --address ray://$node_ip:$client_port   (or RAY_ADDRESS=ray://$node_ip:$client_port)
  jobs:      ray job submit --address http://$dashboard_host:8265 -- ceiling run SWEEP.yaml ...
A multi-node sweep also needs --db postgresql://..., --tracking-uri http://..., a shared CEILING_CACHE
and shared checkpoint storage (the sweep's storage: field): see clusters/README.md.
MSG
    ;;
  worker)
    head=${2:?usage: $0 worker HEAD_IP:PORT}
    run ray start --address="$head" --node-ip-address="$node_ip" --disable-usage-stats ${resources[@]+"${resources[@]}"}
    ;;
  stop)
    run ray stop
    ;;
  *)
    echo "usage: $0 head | worker HEAD_IP:PORT | stop" >&2
    exit 2
    ;;
esac
