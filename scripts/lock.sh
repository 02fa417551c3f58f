#!/usr/bin/env bash
# Re-make the lock files of the Python dependencies from pyproject.toml (pinned versions with
# their hashes, for every platform): requirements.lock (runtime) and requirements-dev.lock
# (runtime + dev, consistent with the first). Needs uv (in the dev tools, or pip install uv).
set -euo pipefail
cd "$(dirname "$0")/.."
uv=$(command -v uv || echo .venv/bin/uv)
common=(--python-version 3.11 --universal --generate-hashes --quiet)
"$uv" pip compile pyproject.toml "${common[@]}" "$@" -o requirements.lock  # e.g. --upgrade
"$uv" pip compile pyproject.toml --extra dev "${common[@]}" -c requirements.lock -o requirements-dev.lock
echo "lock: wrote requirements.lock and requirements-dev.lock"
