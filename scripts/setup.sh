#!/usr/bin/env bash
# Create .venv and install Kraken into it (editable), with the dev tools when asked:
#   scripts/setup.sh        # runtime only
#   scripts/setup.sh dev    # + test and lint tools
# The dependencies come pinned, with their hashes, from requirements.lock (requirements-dev.lock
# with dev); scripts/lock.sh re-makes both after a change of pyproject.toml.
# Needs python3 (>= 3.11) and git; installs python3-venv with apt when it is missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: Kraken needs Python 3.11 or newer; found $(python3 --version)" >&2
  exit 1
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing python3-venv"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  else
    echo "setup: python3's venv module is missing: install the python3-venv package" >&2
    exit 1
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
extras=""
lock=requirements.lock
if [ "${1:-}" = dev ]; then extras="[dev]"; lock=requirements-dev.lock; fi
stamp=".venv/.kraken-installed$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  echo "setup: installing Kraken$extras into .venv (pinned by $lock)"
  pipq() {
    local out status=0
    out=$(.venv/bin/python -m pip install -q "$@" 2>&1) || status=$?
    echo "$out" | grep -v -e "^WARNING: Location" -e "^$" || true
    return $status
  }
  pipq --upgrade pip
  pipq --require-hashes -r "$lock"
  pipq --no-deps -e "."
  # A dependency added to pyproject.toml but not locked yet still gets installed (unpinned);
  # tests/unit/test_lock.py says to re-lock.
  pipq -e ".$extras"
  .venv/bin/python -c 'import kraken.cli' # fail here, not later, when the install did not work
  touch "$stamp"
fi
# dev: openapi-python-client, for tests/e2e/test_openapi_client.py, in a venv of its own (it pins
# typer below the version Kraken uses, so it cannot live in .venv).
OPENAPI_CLIENT_VERSION=0.29.1
if [ "${1:-}" = dev ] && [ ! -f ".venv-openapi/.installed-$OPENAPI_CLIENT_VERSION" ]; then
  echo "setup: installing openapi-python-client $OPENAPI_CLIENT_VERSION into .venv-openapi"
  [ -x .venv-openapi/bin/python ] || python3 -m venv .venv-openapi
  .venv-openapi/bin/python -m pip install -q "openapi-python-client==$OPENAPI_CLIENT_VERSION" 2>&1 | grep -v -e "^WARNING: Location" || true
  .venv-openapi/bin/openapi-python-client --version
  touch ".venv-openapi/.installed-$OPENAPI_CLIENT_VERSION"
fi
bash scripts/build-frontend.sh  # the web UI, when missing or older than its sources
