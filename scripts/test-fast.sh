#!/usr/bin/env bash
# The fast lane, for the edit-test loop: lint, import contracts, types and the unit tests
# (tests/unit) on SQLite only (their PostgreSQL twins spend seconds creating a database each; the
# whole suite, scripts/test.sh, runs both). It starts no Kraken process and needs no service.
# Extra arguments go to pytest (e.g. -k scheduler).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${KRAKEN_VENV:-.venv}/bin
echo "== ruff"; "$bin/ruff" check . && "$bin/ruff" format --check .
echo "== import contracts"; "$bin/lint-imports"
echo "== mypy"; "$bin/mypy" kraken
echo "== unit tests"; "$bin/python" -m pytest -q -p no:cacheprovider tests/unit -k "not postgresql" "$@"
