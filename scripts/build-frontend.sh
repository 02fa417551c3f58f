#!/usr/bin/env bash
# Build the web UI (frontend/) into kraken/web, which `kraken serve`/`kraken server` serve at /.
# Does nothing when the build is current: it rebuilds only when kraken/web/index.html is missing
# or the sources changed since the last build (a hash of frontend's sources kept in
# kraken/web/.build-stamp). `npm ci` runs only when package-lock.json changed.
#   scripts/build-frontend.sh            build if needed; without Node.js, warn and go on
#   scripts/build-frontend.sh --require  fail when the UI cannot be built (also when CI=true)
#   scripts/build-frontend.sh --force    rebuild
# KRAKEN_SKIP_FRONTEND=1 skips it (e.g. on agent-only machines).
set -euo pipefail
cd "$(dirname "$0")/.."

require=0
force=0
for arg in "$@"; do
  case "$arg" in
    --require) require=1 ;;
    --force) force=1 ;;
    *) echo "build-frontend: unknown option $arg" >&2; exit 2 ;;
  esac
done
[ "${CI:-}" = true ] && require=1

if [ "${KRAKEN_SKIP_FRONTEND:-0}" = 1 ] && [ "$require" = 0 ]; then
  exit 0
fi

out=kraken/web
stamp="$out/.build-stamp"

sources_hash() {
  # every file the build reads (tests excluded), sorted so the hash is stable
  (cd frontend && find src index.html package.json package-lock.json vite.config.ts tsconfig.json tsconfig.node.json \
      -type f ! -name '*.test.ts' ! -name '*.test.tsx' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) \
    | sha256sum | cut -d' ' -f1
}

hash=$(sources_hash)
if [ "$force" = 0 ] && [ -f "$out/index.html" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
  exit 0
fi

missing() {
  echo "build-frontend: $1; the web UI is not built (the API works; / says how to build it)." >&2
  if [ "$require" = 1 ]; then exit 1; fi
  exit 0
}

command -v node >/dev/null || missing "Node.js is not installed (Node 20.19+ and npm are needed)"
command -v npm >/dev/null || missing "npm is not installed"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || missing "Node.js $(node --version) is too old (20.19 or newer is needed)"

echo "build-frontend: building the web UI into $out"
lock_hash=$(sha256sum frontend/package-lock.json | cut -d' ' -f1)
if [ ! -d frontend/node_modules ] || [ "$(cat frontend/node_modules/.kraken-lock 2>/dev/null)" != "$lock_hash" ]; then
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" > frontend/node_modules/.kraken-lock
fi
(cd frontend && npm run --silent build)
echo "$hash" > "$stamp"
echo "build-frontend: done ($(du -sh "$out" | cut -f1))"
