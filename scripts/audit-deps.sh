#!/usr/bin/env bash
# Audit the locked Python dependencies (requirements-dev.lock) for known vulnerabilities with
# pip-audit, when its vulnerability database can be reached. A probe first: a release with
# published vulnerabilities (urllib3 1.26.4) must be flagged; where it is not (no network, or
# only a package index without the vulnerability data), the audit is skipped with a message and
# never fails the run. Where the database answers, any vulnerable or unauditable package fails.
set -euo pipefail
cd "$(dirname "$0")/.."
audit=.venv/bin/pip-audit
[ -x "$audit" ] || { echo "pip-audit: skipped: not installed (bash scripts/setup.sh dev)"; exit 0; }
probe=$(mktemp)
trap 'rm -f "$probe"' EXIT
echo "urllib3==1.26.4" > "$probe"
if ! timeout 120 "$audit" -r "$probe" --no-deps --disable-pip --progress-spinner off 2>/dev/null \
    | grep -q -E "GHSA-|PYSEC-|CVE-"; then
  echo "pip-audit: skipped: its vulnerability database cannot be reached from this machine" \
       "(a release with known vulnerabilities was not flagged); run scripts/audit-deps.sh where it can"
  exit 0
fi
"$audit" -r requirements-dev.lock --require-hashes --disable-pip --strict --progress-spinner off
