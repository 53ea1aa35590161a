#!/usr/bin/env bash
# One prepared GPU check, under 10 minutes on one GPU: environment, (only missing) installs, the GPU and
# Triton kernel tests, bench/kernels.py, and a tiny sweep through Ray + DeepSpeed on CUDA.
# Everything lands in ${OUT:-bench/results/gpu}: one log per step, steps.tsv (step, exit code, seconds),
# and summary.json, which is also the last line on stdout (ratios first).
#
#   bash bench/gpu_check.sh                  # all steps
#   bash bench/gpu_check.sh --quick          # bench at T=2048, D=64 only
#   bash bench/gpu_check.sh --skip sweep     # leave out steps: install, tests, bench, sweep (repeatable)
#   bash bench/gpu_check.sh --dry-run        # print the plan and exit (works without a GPU)
#
# Exit code: 0 when every step that ran passed, 1 when one failed, 2 on a bad argument, 3 when no CUDA
# GPU is visible (nothing to check).
set -uo pipefail  # not -e: a failing step is recorded and the next one still runs

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=${OUT:-$REPO/bench/results/gpu}
TOTAL_BUDGET_S=${GPU_CHECK_BUDGET_S:-540}  # leaves a margin under the 10-minute device slot
QUICK=0
DRY_RUN=0
SKIP=" "

while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || { echo "gpu_check: --out needs a folder" >&2; exit 2; }; OUT_DIR=$2; shift 2 ;;
    --out=*) OUT_DIR=${1#--out=}; shift ;;
    --quick) QUICK=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --skip)
      [ $# -ge 2 ] || { echo "gpu_check: --skip needs a step name (install, tests, bench, sweep)" >&2; exit 2; }
      case "$2" in
        install|tests|bench|sweep) SKIP="$SKIP$2 "; shift 2 ;;
        *) echo "gpu_check: unknown step '$2' for --skip; steps: install, tests, bench, sweep" >&2; exit 2 ;;
      esac ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$OUT_DIR" ] || { echo "gpu_check: the output folder is empty" >&2; exit 2; }

cd "$REPO" || exit 1
# the first python whose torch sees CUDA (the project's venv, then the machine's: a GPU image brings its
# own torch), else the first with torch at all (to report what is missing)
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  CANDIDATES=()
  [ -x .venv/bin/python ] && CANDIDATES+=(.venv/bin/python)
  for name in python3 python; do command -v "$name" >/dev/null && CANDIDATES+=("$(command -v "$name")"); done
  WITH_TORCH=""
  for candidate in "${CANDIDATES[@]}"; do  # one torch import per candidate (seconds each)
    case $("$candidate" -c "import torch; print(torch.cuda.is_available())" 2>/dev/null) in
      True) PY=$candidate; break ;;
      False) [ -n "$WITH_TORCH" ] || WITH_TORCH=$candidate ;;
    esac
  done
  [ -n "$PY" ] || PY=$WITH_TORCH
  [ -n "$PY" ] || PY=${CANDIDATES[0]:-python3}
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"  # Ray workers inherit it if the package is not installed
unset CEILING_KERNELS                                 # the default: Triton on CUDA

STEPS="env install tests bench sweep"
skipped() { case "$SKIP" in *" $1 "*) return 0 ;; esac; return 1; }

if [ "$DRY_RUN" = 1 ]; then
  echo "gpu_check plan (python: $PY, output: $OUT_DIR, budget: ${TOTAL_BUDGET_S}s, quick: $QUICK)"
  for step in $STEPS; do
    if skipped "$step"; then echo "  $step: skipped"; else echo "  $step"; fi
  done
  exit 0
fi

mkdir -p "$OUT_DIR" || { echo "gpu_check: cannot create $OUT_DIR" >&2; exit 2; }
OUT_DIR=$(cd "$OUT_DIR" && pwd)
printf 'step\texit_code\tseconds\n' > "$OUT_DIR/steps.tsv"
START=$(date +%s)
FAILED=0

# run_step NAME TIMEOUT_S COMMAND...: log to $OUT_DIR/NAME.log, record the exit code; the timeout is cut
# to what is left of the total budget
run_step() {
  local name=$1 limit=$2 left began rc
  shift 2
  left=$((TOTAL_BUDGET_S - ($(date +%s) - START)))
  if [ "$left" -lt 20 ]; then
    echo "== $name: skipped (${left}s of the budget left)"
    printf '%s\t%s\t%s\n' "$name" "skipped" 0 >> "$OUT_DIR/steps.tsv"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (at most ${limit}s): $*"
  began=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$OUT_DIR/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - began))" >> "$OUT_DIR/steps.tsv"
  tail -n 5 "$OUT_DIR/$name.log" | sed 's/^/   | /'
  if [ "$rc" -ne 0 ]; then
    echo "   -> $name failed with exit code $rc (log: $OUT_DIR/$name.log)"
    FAILED=1
  fi
  return 0
}

# -- env: what is here ---------------------------------------------------------------------------------
{
  date -u
  git -C "$REPO" rev-parse HEAD 2>/dev/null || echo "no git: $(basename "$REPO")"
  command -v nvidia-smi >/dev/null && nvidia-smi
  "$PY" - <<'EOF'
import importlib, sys
print("python", sys.version.split()[0])
for name in ["torch", "triton", "deepspeed", "ray", "fla", "pytest", "mlflow"]:
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as error:
        print(name, "MISSING", type(error).__name__, error)
import torch
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
EOF
} > "$OUT_DIR/env.log" 2>&1
cat "$OUT_DIR/env.log"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: no CUDA GPU visible to $PY: nothing to check (bench/kernels.py --cpu-smoke checks the script on CPU)" >&2
  echo '{"gpu": null, "skipped": "no CUDA GPU"}' | tee "$OUT_DIR/summary.json"
  exit 3
fi

# -- install: only what is missing --------------------------------------------------------------------
if ! skipped install; then
  if ! (cd / && "$PY" -c "import orchestrator, models, kernels" 2>/dev/null); then
    run_step install_ceiling 120 "$PY" -m pip install --no-deps --no-build-isolation -e "$REPO"
  fi
  if ! "$PY" -c "import triton" 2>/dev/null; then
    run_step install_triton 90 "$PY" -m pip install --retries 0 --timeout 15 "triton>=3.4"
  fi
  if ! "$PY" -c "import fla" 2>/dev/null; then
    # optional (the comparison point): a failure (e.g. no network) is recorded, not fatal
    "$PY" -m pip install --no-deps --retries 0 --timeout 15 flash-linear-attention > "$OUT_DIR/install_fla.log" 2>&1 \
      && echo "== install_fla: installed" || echo "== install_fla: not installed (see install_fla.log); fla columns stay empty"
  fi
fi

# -- tests: GPU-marked tests and the Triton kernel tests, compiled on CUDA ----------------------------
if ! skipped tests; then
  TIMEOUT_ARGS=()  # pytest-timeout is a dev extra: use it when the GPU image has it
  "$PY" -c "import pytest_timeout" 2>/dev/null && TIMEOUT_ARGS=(--timeout 150)
  run_step tests 200 "$PY" -m pytest -q -p no:cacheprovider ${TIMEOUT_ARGS[@]+"${TIMEOUT_ARGS[@]}"} \
    tests/kernels/test_dispatch.py tests/kernels/test_triton_scans.py \
    tests/kernels/test_triton_gla.py tests/kernels/test_triton_delta.py
  run_step gpu_marked_tests 120 "$PY" -m pytest -q -p no:cacheprovider -m gpu ${TIMEOUT_ARGS[@]+"${TIMEOUT_ARGS[@]}"} tests \
    --ignore=tests/kernels/test_triton_scans.py --ignore=tests/kernels/test_triton_gla.py \
    --ignore=tests/kernels/test_triton_delta.py
fi

# -- bench: ours vs torch vs fla ----------------------------------------------------------------------
if ! skipped bench; then
  BENCH_ARGS=(--out-dir "$OUT_DIR" --repeats 3 --budget-s 150)
  [ "$QUICK" = 1 ] && BENCH_ARGS+=(--quick)
  run_step bench 200 "$PY" bench/kernels.py "${BENCH_ARGS[@]}"
fi

# -- sweep: examples/smoke.yaml on one GPU through Ray + DeepSpeed, with mixers that use the kernels ------
if ! skipped sweep; then
  "$PY" - "$REPO/examples/smoke.yaml" "$OUT_DIR/sweep-gpu.yaml" <<'EOF'
import sys
import yaml
spec = yaml.safe_load(open(sys.argv[1]))
spec["name"] = "smoke-gpu"
spec["architectures"] = ["transformer", "mamba", "hawk"]  # mamba, hawk: the Triton scans in training
spec["sizes"] = spec["sizes"][:1]
spec["budgets"] = {"tokens": spec["budgets"]["tokens"][:1]}
spec["resources"] = {**spec.get("resources", {}), "workers_per_trial": 1, "cpus_per_worker": 2,
                     "gpus_per_worker": 1, "max_concurrent_trials": 1}
yaml.safe_dump(spec, open(sys.argv[2], "w"), sort_keys=False)
EOF
  # forced, so a Triton kernel that cannot run fails the step instead of falling back
  run_step sweep 200 env CEILING_KERNELS=triton "$PY" -c "import sys; from orchestrator.cli import main; sys.argv[0] = 'ceiling'; main()" \
    run "$OUT_DIR/sweep-gpu.yaml" --workdir "$OUT_DIR/sweep" --json
  run_step sweep_runs 60 "$PY" -c "import sys; from orchestrator.cli import main; sys.argv[0] = 'ceiling'; main()" \
    runs smoke-gpu --workdir "$OUT_DIR/sweep" --json
fi

# -- summary ------------------------------------------------------------------------------------------
"$PY" - "$OUT_DIR" "$FAILED" "$(($(date +%s) - START))" <<'EOF' | tee "$OUT_DIR/summary.json"
import csv, json, sys
from pathlib import Path
out, failed, seconds = Path(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
summary = {}
bench = out / "bench.log"
if bench.exists():
    for line in reversed(bench.read_text().splitlines()):
        if line.startswith("{"):
            summary.update(json.loads(line))
            break
runs = out / "sweep_runs.log"
if runs.exists():
    text = runs.read_text()
    try:
        trials = json.loads(text[text.index("{"):])["trials"]
        summary["sweep_trials"] = {t["arch"]: t["status"] for t in trials}
    except (ValueError, KeyError, TypeError):
        summary["sweep_trials"] = "unreadable: see sweep_runs.log"
steps = {row["step"]: row["exit_code"] for row in csv.DictReader(open(out / "steps.tsv"), delimiter="\t")}
summary.update({"all_passed": not failed, "steps": steps, "seconds": seconds})
print(json.dumps(summary))
EOF
exit "$FAILED"
