#!/usr/bin/env bash
# The README's second command: set up everything the tests need and run the whole suite
# (lint, types, unit, end-to-end with real PostgreSQL, Redis, Docker, LXD and agent processes).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
bash scripts/services.sh
if [ -f scripts/engines.sh ] && [ "${KRAKEN_SKIP_ENGINES:-0}" != 1 ]; then
  bash scripts/engines.sh
fi
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "test: installing Debian's chromium (for the web UI's end-to-end tests)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v cloc >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "test: installing Debian's cloc (the cloc tool's end-to-end test)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cloc >/dev/null
fi
bash scripts/build-frontend.sh --require
echo "== frontend"; (cd frontend && npm run --silent lint && npm run --silent typecheck && npm test --silent && npm run --silent check:api)
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== import contracts"; .venv/bin/lint-imports
echo "== mypy"; .venv/bin/mypy kraken
echo "== pip-audit"; bash scripts/audit-deps.sh
# Most tests wait on real processes (servers, agents, browsers): three at a time on two cores.
workers="${KRAKEN_TEST_WORKERS:-3}"
echo "== pytest ($workers workers)"; .venv/bin/pytest -q -p no:cacheprovider -n "$workers" --cov=kraken --cov-report= "$@"
echo "== coverage: $(.venv/bin/coverage report --format=total)% of kraken's lines (measured in the pytest process;"\
  "per file: .venv/bin/coverage report)"
