#!/usr/bin/env bash
# Start Kraken's scale-out stack (docker-compose.yml) from locally built images only
# (docker-compose.local.yml: Debian-based postgres, redis and Kraken base images).
#
#   scripts/compose-local.sh          # build what is missing and start (up -d); waits for health
#   scripts/compose-local.sh down     # stop and remove (add -v to drop the volumes)
#   scripts/compose-local.sh ps|logs|...   # any other compose command
#
# Compose: `docker compose` (v2 plugin) when present, else Debian 12's `docker-compose`
# (v1.29, installed here if missing: Debian has no compose v2 plugin package).
# Secrets default to throw-away local values; export them to choose your own.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
T0=$(date +%s)
log() { printf '[compose-local %3ss] %s\n' "$(($(date +%s) - T0))" "$*"; }

if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  if ! command -v docker-compose >/dev/null; then
    log "installing docker-compose (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
  fi
  COMPOSE=(docker-compose)
fi
COMPOSE+=(-p "${KRAKEN_COMPOSE_PROJECT:-kraken-local}" -f docker-compose.yml -f docker-compose.local.yml)

export KRAKEN_ADMIN_PASSWORD="${KRAKEN_ADMIN_PASSWORD:-admin}"
export KRAKEN_AGENT_TOKEN="${KRAKEN_AGENT_TOKEN:-local-agent-token}"
export KRAKEN_SECRET_KEY="${KRAKEN_SECRET_KEY:-local-secret-key-not-for-production}"
# a trial stack on one machine: its own agent is approved without a click (set false when others can reach it)
export KRAKEN_AUTO_APPROVE="${KRAKEN_AUTO_APPROVE:-true}"
export KRAKEN_SECRETS_KEY="${KRAKEN_SECRETS_KEY:-bG9jYWwtc2VjcmV0cy1rZXktbm90LWZvci1wcm9kISE=}"  # a throw-away Fernet key
export POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-kraken}"
export DOCKER_GID="${DOCKER_GID:-$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)}"
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

cmd="${1:-up}"
if [[ "$cmd" != up ]]; then
  exec "${COMPOSE[@]}" "$@"
fi
shift || true

ENGINES=docker "$ROOT/scripts/engines.sh"
"$ROOT/scripts/local-images.sh"
log "building kraken:local and starting the stack (${COMPOSE[*]})"
"${COMPOSE[@]}" up -d --build "$@"

port="${KRAKEN_HTTP_PORT_1:-8080}"
log "waiting for http://127.0.0.1:$port/api/health"
for _ in $(seq 1 120); do
  if python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/api/health', timeout=2)" 2>/dev/null; then
    "${COMPOSE[@]}" ps
    log "kraken is up: http://127.0.0.1:$port (admin / \$KRAKEN_ADMIN_PASSWORD)"
    exit 0
  fi
  sleep 1
done
"${COMPOSE[@]}" ps
"${COMPOSE[@]}" logs --tail 30
log "ERROR: the servers did not become healthy"
exit 1
