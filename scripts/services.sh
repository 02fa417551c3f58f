#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, user postgres, trust) and Redis (127.0.0.1:6379)
# answer, installing and starting them from Debian's packages when they do not (root, no systemd).
set -euo pipefail

pg_up() { python3 - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(s.connect_ex(("127.0.0.1", 5432)))
PY
}
redis_up() { python3 - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(s.connect_ex(("127.0.0.1", 6379)))
PY
}

if ! pg_up; then
  echo "services: starting PostgreSQL"
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  ver=$(ls /etc/postgresql | sort -n | tail -1)
  conf=/etc/postgresql/$ver/main/pg_hba.conf
  grep -q "kraken-trust" "$conf" || {
    sed -i '1i host all all 127.0.0.1/32 trust # kraken-trust\nlocal all all trust # kraken-trust' "$conf"
  }
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 50); do pg_up && break; sleep 0.2; done
fi
if ! redis_up; then
  echo "services: starting Redis"
  command -v redis-server >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  }
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/kraken.log
  for _ in $(seq 50); do redis_up && break; sleep 0.2; done
fi
# sshd (the git tool's ssh-key test starts its own on a free port; it needs the binary)
if [ ! -x /usr/sbin/sshd ]; then
  echo "services: installing openssh-server"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
fi
# slapd (the LDAP login tests start their own on a free port with their own tree; they need the binaries)
if [ ! -x /usr/sbin/slapd ] || [ ! -x /usr/sbin/slapadd ]; then
  echo "services: installing slapd"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slapd >/dev/null
fi
pg_up && redis_up && echo "services: PostgreSQL and Redis are up"
