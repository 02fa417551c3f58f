#!/usr/bin/env bash
# Install and start the container engines Kraken's executor tests run against
# (Docker and LXD), and build the local test images.  Made for a Debian 12 host
# run as root without systemd and without access to an image registry: every
# image is built from Debian packages (debootstrap + the Debian mirror).
#
# Idempotent: a second run skips what exists (packages, running daemons, images)
# and takes a few seconds.  Prints what it does.
#
#   scripts/engines.sh            # everything
#   ENGINES="docker" scripts/engines.sh   # only Docker (or "lxd")
#   KRAKEN_ENGINES_REBUILD=1 scripts/engines.sh   # rebuild the test images
#
# Images made:
#   docker: kraken-test/busybox, kraken-test/debian:bookworm,
#           kraken-test/debian-py:bookworm (python3, python3-pytest, git)
#   lxd:    kraken-test/busybox, kraken-test/debian-py (aliases)
set -euo pipefail

ENGINES="${ENGINES:-docker lxd}"
CACHE="${KRAKEN_ENGINES_CACHE:-/var/cache/kraken-engines}"
LOGDIR="${KRAKEN_ENGINES_LOGDIR:-/var/log/kraken-engines}"
REBUILD="${KRAKEN_ENGINES_REBUILD:-0}"
LXD_SUBNET="${KRAKEN_LXD_SUBNET:-10.123.45.1/24}"
SUITE=bookworm
export DEBIAN_FRONTEND=noninteractive
export DOCKER_BUILDKIT=0 # the Debian daemon has no buildx; the classic builder is enough

T0=$(date +%s)
log() { printf '[engines %3ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() {
  log "ERROR: $*"
  exit 1
}
want() { [[ " $ENGINES " == *" $1 "* ]]; }

mkdir -p "$CACHE" "$LOGDIR"

# ---------------------------------------------------------------- packages
debian_mirror() {
  # The first Debian mirror apt uses (deb822 or one-line format), else the default.
  local url=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    url=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  fi
  if [[ -z "$url" && -f /etc/apt/sources.list ]]; then
    url=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
      /etc/apt/sources.list)
  fi
  echo "${url:-http://deb.debian.org/debian}"
}

PKGS=(busybox-static debootstrap iptables ca-certificates gzip tar)
want docker && PKGS+=(docker.io)
want lxd && PKGS+=(lxd lxd-client dnsmasq-base uidmap squashfs-tools xz-utils)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing packages: ${missing[*]}"
  apt-get update -qq
  # No recommends: apparmor / needrestart are of no use here and want systemd.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$LOGDIR/apt.log" 2>&1 ||
    {
      tail -n 30 "$LOGDIR/apt.log"
      die "apt-get install failed"
    }
else
  log "packages present: ${PKGS[*]}"
fi

# Debian's docker.io puts its client in /usr/bin; prefer it (a newer client may be first on PATH).
DOCKER=docker
[[ -x /usr/bin/docker ]] && DOCKER=/usr/bin/docker

# ---------------------------------------------------------------- daemons
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2
  shift 2
  for ((i = 0; i < secs * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "$what not ready after ${secs}s"
}

start_docker() {
  if $DOCKER info >/dev/null 2>&1; then
    log "dockerd already running ($($DOCKER version -f '{{.Server.Version}}'))"
    return
  fi
  log "starting dockerd (log: $LOGDIR/dockerd.log)"
  # Without systemd nothing mounts the cgroup hierarchy; most hosts have it already.
  if [[ ! -d /sys/fs/cgroup/memory && ! -f /sys/fs/cgroup/cgroup.controllers ]] && command -v cgroupfs-mount >/dev/null; then
    cgroupfs-mount
  fi
  rm -f /var/run/docker.pid
  nohup dockerd >>"$LOGDIR/dockerd.log" 2>&1 </dev/null &
  wait_for 60 dockerd $DOCKER info
  log "dockerd ready ($($DOCKER version -f '{{.Server.Version}}'))"
}

start_lxd() {
  getent group lxd >/dev/null || groupadd --system lxd
  if lxc info >/dev/null 2>&1; then
    log "lxd already running"
  else
    log "starting lxd (log: $LOGDIR/lxd.log)"
    mkdir -p /var/log/lxd
    nohup lxd --group lxd --logfile "$LOGDIR/lxd.log" >>"$LOGDIR/lxd.stdout" 2>&1 </dev/null &
    lxd waitready --timeout 60 || die "lxd did not become ready (see $LOGDIR/lxd.log)"
    log "lxd ready ($(lxd --version))"
  fi
  if ! lxc storage show default >/dev/null 2>&1; then
    # `lxd init --auto` picks a subnet by probing, which fails here: name one.
    log "initialising lxd: dir storage pool 'default', bridge lxdbr0 $LXD_SUBNET"
    lxd init --preseed <<EOF
config: {}
networks:
- name: lxdbr0
  type: bridge
  config:
    ipv4.address: $LXD_SUBNET
    ipv4.nat: "true"
    ipv6.address: none
storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
    eth0:
      name: eth0
      network: lxdbr0
      type: nic
EOF
  else
    log "lxd already initialised"
  fi
  # An LXD initialised elsewhere may lack the bridge or the profile's nic: containers would get no link.
  if ! lxc network show lxdbr0 >/dev/null 2>&1; then
    log "creating bridge lxdbr0 $LXD_SUBNET"
    lxc network create lxdbr0 ipv4.address="$LXD_SUBNET" ipv4.nat=true ipv6.address=none >/dev/null
  fi
  if ! lxc profile device show default 2>/dev/null | grep -q 'type: nic'; then
    log "adding nic eth0 on lxdbr0 to the default profile"
    lxc profile device add default eth0 nic network=lxdbr0 name=eth0 >/dev/null
  fi
}

docker_lxd_forwarding() {
  # Docker sets the FORWARD policy to DROP, which also drops lxdbr0's traffic.
  iptables -L DOCKER-USER -n >/dev/null 2>&1 || return 0
  local rule
  for rule in "-i lxdbr0 -j ACCEPT" "-o lxdbr0 -j ACCEPT"; do
    # shellcheck disable=SC2086
    if ! iptables -C DOCKER-USER $rule 2>/dev/null; then
      log "iptables: DOCKER-USER $rule"
      # shellcheck disable=SC2086
      iptables -I DOCKER-USER $rule
    fi
  done
}

want docker && start_docker
want lxd && start_lxd
want docker && want lxd && docker_lxd_forwarding

# ---------------------------------------------------------------- root filesystems
MIRROR=$(debian_mirror)

busybox_rootfs() { # busybox_rootfs DIR: a minimal tree with busybox applets and an /sbin/init
  local dir=$1
  rm -rf "$dir"
  mkdir -p "$dir"/{bin,sbin,etc,tmp,root,proc,sys,dev,run,var/tmp}
  chmod 1777 "$dir/tmp" "$dir/var/tmp"
  cp /bin/busybox "$dir/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [[ "$applet" == busybox || -e "$dir/bin/$applet" ]] || ln -s busybox "$dir/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  write_init "$dir/sbin/init"
}

write_init() { # the container's PID 1 for LXD images: stay alive, reap orphans
  cat >"$1" <<'EOF'
#!/bin/sh
# Kraken test image init: keeps the container running; `wait` reaps orphans.
trap 'exit 0' TERM INT PWR
while :; do
  sleep 3600 &
  wait $!
done
EOF
  chmod 755 "$1"
}

debian_rootfs_tar() { # a cached debootstrap minbase tarball
  local tarball="$CACHE/$SUITE-minbase.tar"
  if [[ -s "$tarball" ]]; then
    log "debootstrap cache hit: $tarball"
  else
    local dir="$CACHE/$SUITE-minbase.tmp"
    rm -rf "$dir"
    log "debootstrap --variant=minbase $SUITE from $MIRROR (a few minutes; log: $LOGDIR/debootstrap.log)"
    debootstrap --variant=minbase "$SUITE" "$dir" "$MIRROR" >"$LOGDIR/debootstrap.log" 2>&1 ||
      {
        tail -n 30 "$LOGDIR/debootstrap.log"
        die "debootstrap failed"
      }
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
    log "debootstrap done: $tarball ($(du -h "$tarball" | cut -f1))"
  fi
  echo "$tarball" >&3
}

# ---------------------------------------------------------------- docker images
have_docker_image() { [[ "$REBUILD" != 1 ]] && $DOCKER image inspect "$1" >/dev/null 2>&1; }

docker_images() {
  if have_docker_image kraken-test/busybox:latest; then
    log "docker image kraken-test/busybox exists"
  else
    log "docker: building kraken-test/busybox (docker import of a busybox-static tree)"
    local dir="$CACHE/busybox-docker"
    busybox_rootfs "$dir"
    tar -C "$dir" -c . | $DOCKER import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin:/sbin' - kraken-test/busybox:latest >/dev/null
    rm -rf "$dir"
  fi
  if have_docker_image kraken-test/debian:bookworm; then
    log "docker image kraken-test/debian:bookworm exists"
  else
    local tarball
    tarball=$(debian_rootfs_tar 3>&1 >&2)
    log "docker: importing kraken-test/debian:bookworm"
    $DOCKER import -c 'CMD ["/bin/bash"]' \
      -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      "$tarball" kraken-test/debian:bookworm >/dev/null
  fi
  if have_docker_image kraken-test/debian-py:bookworm; then
    log "docker image kraken-test/debian-py:bookworm exists"
  else
    log "docker: building kraken-test/debian-py:bookworm (python3, pytest, git; log: $LOGDIR/build-debian-py.log)"
    local ctx
    ctx=$(mktemp -d)
    cat >"$ctx/Dockerfile" <<'EOF'
FROM kraken-test/debian:bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-pytest git \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
EOF
    $DOCKER build -t kraken-test/debian-py:bookworm "$ctx" >"$LOGDIR/build-debian-py.log" 2>&1 ||
      {
        tail -n 30 "$LOGDIR/build-debian-py.log"
        die "docker build of kraken-test/debian-py failed"
      }
    rm -rf "$ctx"
  fi
}

# ---------------------------------------------------------------- lxd images
have_lxd_image() { [[ "$REBUILD" != 1 ]] && lxc image info "$1" >/dev/null 2>&1; }

lxd_metadata() { # lxd_metadata OUT.tar.gz OS DESCRIPTION
  local dir
  dir=$(mktemp -d)
  cat >"$dir/metadata.yaml" <<EOF
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  os: $2
  release: "$SUITE"
  description: "$3"
EOF
  tar -C "$dir" -czf "$1" metadata.yaml
  rm -rf "$dir"
}

lxd_import() { # lxd_import ALIAS META ROOTFS
  lxc image delete "$1" >/dev/null 2>&1 || true
  lxc image import "$2" "$3" --alias "$1" >/dev/null
}

lxd_images() {
  if have_lxd_image kraken-test/busybox; then
    log "lxd image kraken-test/busybox exists"
  else
    log "lxd: importing kraken-test/busybox"
    local dir="$CACHE/busybox-lxd"
    busybox_rootfs "$dir"
    lxd_metadata "$CACHE/busybox-meta.tar.gz" busybox "Kraken test busybox"
    tar -C "$dir" -czf "$CACHE/busybox-rootfs.tar.gz" .
    lxd_import kraken-test/busybox "$CACHE/busybox-meta.tar.gz" "$CACHE/busybox-rootfs.tar.gz"
    rm -rf "$dir" "$CACHE/busybox-rootfs.tar.gz"
  fi
  if have_lxd_image kraken-test/debian-py; then
    log "lxd image kraken-test/debian-py exists"
  else
    # The rootfs is the Docker image's (same packages); its init is a shell loop.
    $DOCKER image inspect kraken-test/debian-py:bookworm >/dev/null 2>&1 ||
      die "lxd image kraken-test/debian-py is made from the docker image kraken-test/debian-py:bookworm (run with docker)"
    log "lxd: importing kraken-test/debian-py (rootfs exported from the docker image)"
    local dir="$CACHE/debian-py-lxd" cid
    rm -rf "$dir"
    mkdir -p "$dir"
    cid=$($DOCKER create kraken-test/debian-py:bookworm /bin/true)
    $DOCKER export "$cid" | tar -C "$dir" -x
    $DOCKER rm "$cid" >/dev/null
    rm -f "$dir/.dockerenv"
    write_init "$dir/usr/sbin/init"
    [[ -e "$dir/sbin/init" ]] || ln -s /usr/sbin/init "$dir/sbin/init"
    lxd_metadata "$CACHE/debian-py-meta.tar.gz" debian "Kraken test debian + python3, pytest, git"
    tar -C "$dir" -cf - . | gzip -1 >"$CACHE/debian-py-rootfs.tar.gz"
    lxd_import kraken-test/debian-py "$CACHE/debian-py-meta.tar.gz" "$CACHE/debian-py-rootfs.tar.gz"
    rm -rf "$dir" "$CACHE/debian-py-rootfs.tar.gz"
  fi
}

want docker && docker_images
want lxd && lxd_images

log "done: engines ready ($ENGINES)"
