#!/usr/bin/env bash
# Fresh machine -> a real small sweep on CPU -> the dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ceiling run examples/quickstart.yaml "$@"
if [ -z "${CEILING_NO_DASHBOARD:-}" ]; then
  echo "opening the dashboard on http://127.0.0.1:8501 (Ctrl-C to stop)"
  exec ceiling dashboard
fi
