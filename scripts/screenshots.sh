#!/usr/bin/env bash
# Regenerate the web UI's screenshots in docs/screenshots (linked from the README and docs/ui.md):
# builds the UI if needed, seeds a history, runs a real `kraken serve` and agent, and photographs
# the main pages in Debian's Chromium (installed with apt when missing and we are root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
bash scripts/build-frontend.sh --require
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "screenshots: Chromium is missing (apt-get install chromium)" >&2
    exit 1
  fi
fi
.venv/bin/python -c 'import playwright' 2>/dev/null || .venv/bin/python -m pip install -q playwright
exec .venv/bin/python bench/ui_screenshots.py "$@"
