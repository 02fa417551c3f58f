"""Debian's Chromium, as the UI tests, benchmarks and screenshots launch it (never a downloaded browser)."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("KRAKEN_CHROMIUM", "/usr/bin/chromium")
# Headless as root, and quiet on a machine without internet (no background fetches, no QUIC).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
