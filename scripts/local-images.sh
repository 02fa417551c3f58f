#!/usr/bin/env bash
# Build, from Debian packages only (no image registry needed), the images the local
# compose stack uses instead of the public ones:
#   kraken-test/python:3.11   debian bookworm + python3 (3.11) + venv   (BASE for ./Dockerfile)
#   kraken-local/postgres:15  Debian's PostgreSQL, entrypoint with POSTGRES_USER/PASSWORD/DB
#   kraken-local/redis:7      Debian's Redis
# Needs the Debian base image made by scripts/engines.sh (run first; this script calls it
# with ENGINES=docker when the base is missing).  Idempotent: existing images are kept
# unless KRAKEN_IMAGES_REBUILD=1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export DOCKER_BUILDKIT=0
DOCKER=docker
[[ -x /usr/bin/docker ]] && DOCKER=/usr/bin/docker # Debian's client, matching its daemon
REBUILD="${KRAKEN_IMAGES_REBUILD:-0}"
T0=$(date +%s)
log() { printf '[local-images %3ss] %s\n' "$(($(date +%s) - T0))" "$*"; }

if ! $DOCKER image inspect kraken-test/debian:bookworm >/dev/null 2>&1; then
  log "no debian base image: running scripts/engines.sh (docker only)"
  ENGINES=docker "$HERE/engines.sh"
fi

build() { # build TAG DOCKERFILE-TEXT [CONTEXT-FILES...]
  local tag=$1 text=$2
  shift 2
  if [[ "$REBUILD" != 1 ]] && $DOCKER image inspect "$tag" >/dev/null 2>&1; then
    log "$tag exists"
    return
  fi
  local ctx
  ctx=$(mktemp -d)
  printf '%s\n' "$text" >"$ctx/Dockerfile"
  [[ $# -gt 0 ]] && cp "$@" "$ctx/"
  log "building $tag"
  $DOCKER build -q -t "$tag" "$ctx" >/dev/null
  rm -rf "$ctx"
}

APT='apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends'
CLEAN='rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb'

# pip inside builds must trust what the host's pip trusts (a TLS-inspecting proxy's CA on
# some networks): the host's CA bundle goes into this local base only.
CA_DIR=$(mktemp -d)
cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$CA_DIR/host-ca.crt"
build kraken-test/python:3.11 "FROM kraken-test/debian:bookworm
RUN $APT python3 python3-venv ca-certificates && $CLEAN
COPY host-ca.crt /etc/ssl/certs/kraken-host-ca.crt
ENV PIP_CERT=/etc/ssl/certs/kraken-host-ca.crt
CMD [\"python3\"]" "$CA_DIR/host-ca.crt"
rm -rf "$CA_DIR"

build kraken-local/postgres:15 "FROM kraken-test/debian:bookworm
RUN $APT postgresql && $CLEAN
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PGDATA=/var/lib/postgresql/data
EXPOSE 5432
ENTRYPOINT [\"/usr/local/bin/postgres-entrypoint\"]" "$HERE/local-images/postgres-entrypoint.sh"

build kraken-local/redis:7 "FROM kraken-test/debian:bookworm
RUN $APT redis-server && $CLEAN
EXPOSE 6379
USER redis
CMD [\"redis-server\", \"--bind\", \"0.0.0.0\", \"--protected-mode\", \"no\", \"--dir\", \"/var/lib/redis\"]"

log "done"
