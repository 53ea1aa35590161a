#!/usr/bin/env bash
# Create (or reuse) .venv and install ceiling into it. torch goes first, pinned to the CPU build that
# pip finds on local disk here; the project's torch range admits it, so nothing pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install --quiet "torch==${CEILING_TORCH_VERSION:-2.13.0}" 2>&1 | grep -v "is ignored" || true
fi
# pip's own notices and setuptools' editable-install advice go to a log, shown only on failure: a
# new user's terminal gets one line that says the environment is ready, or the error.
if ! python -m pip install --quiet -e ".[dev]" > .venv/install.log 2>&1; then
  cat .venv/install.log >&2
  echo "set-up failed: pip could not install ceiling (full log above and in .venv/install.log)" >&2
  exit 1
fi
python -c "import torch, deepspeed, ray, mlflow, streamlit; print('ceiling environment ready: torch', torch.__version__)" 2>&1 | tail -1
