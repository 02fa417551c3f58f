#!/bin/sh
# A small stand-in for the official postgres image's entrypoint (Debian's PostgreSQL):
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB create the role and database on the
# first start of an empty data directory (PGDATA).
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /run/postgresql
  chown -R postgres:postgres "$PGDATA" /run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "postgres-entrypoint: initialising $PGDATA"
  pwfile=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-postgres}" >"$pwfile"
  "$BIN/initdb" -D "$PGDATA" --username=postgres --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  "$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$POSTGRES_USER" != postgres ]; then
    "$BIN/psql" -v ON_ERROR_STOP=1 -U postgres -d postgres -c \
      "CREATE ROLE \"$POSTGRES_USER\" LOGIN SUPERUSER PASSWORD '${POSTGRES_PASSWORD:-postgres}'" >/dev/null
  fi
  if [ "$POSTGRES_DB" != postgres ]; then
    "$BIN/psql" -v ON_ERROR_STOP=1 -U postgres -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\"" >/dev/null
  fi
  "$BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
