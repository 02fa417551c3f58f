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
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy kraken
echo "== pytest"; .venv/bin/pytest -q -p no:cacheprovider "$@"
