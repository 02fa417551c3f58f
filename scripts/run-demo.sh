#!/usr/bin/env bash
# The README's first command: set up and start Kraken here, with the sample project "demo".
# Open http://127.0.0.1:8080; log in as admin with the password printed at first start
# (or set KRAKEN_ADMIN_PASSWORD).  Extra arguments go to `kraken serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/kraken serve --sample-project "$@"
