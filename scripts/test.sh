#!/usr/bin/env bash
# Fresh machine -> lint + the whole test suite (CPU only). `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate

# PostgreSQL backs half of the store tests; start the machine's server if it is installed but down.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi

# The dashboard's browser test drives headless Chromium (Debian's package); install it when missing.
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver
fi

ruff check .
ruff format --check .
set +e
# A private temp root: pytest prunes all but the newest three numbered /tmp/pytest-of-$USER/pytest-N
# folders when a session starts, so another pytest run on the machine could delete this run's files.
basetemp=$(mktemp -d /tmp/ceiling-tests.XXXXXX)
python -m pytest -q -p no:cacheprovider --durations=15 --basetemp="$basetemp/t" "$@"
status=$?
rm -rf "$basetemp"
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
