#!/usr/bin/env bash
# Make a Python base image without pulling anything: Debian bookworm from its apt mirror (debootstrap),
# imported into the Docker engine that DOCKER_HOST points at. Used where no registry can be reached
# (scripts/images.sh with LOCAL_BUILD=1 passes it as PYTHON_IMAGE). Needs root and debootstrap.
#   scripts/base-image.sh                 # prints the image name on its last line
#   scripts/base-image.sh --rootfs-only   # only make the cached root filesystem (no Docker engine needed)
#   BASE_IMAGE_NAME=my/python:bookworm DEBIAN_MIRROR=http://deb.debian.org/debian scripts/base-image.sh
# The root filesystem is cached as a tarball under $CACHE/base: about 2.5 min once, seconds afterwards.
# Its Python is Debian's 3.11 in /usr/bin (`python` through python-is-python3), with venv (ensurepip's
# bundled wheels) but no system pip: the images make their own virtual environment. Like Debian's slim
# images it leaves out docs, man pages and translations (/usr/share/locale), so it is close in size to
# python:3.11-slim (docs/images.md compares them).
set -euo pipefail

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/btc-forecast"
BASE_DIR="$CACHE/base"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# "-slim": the slimmed root filesystem (no system pip, no translations); a new name, so an engine that
# holds the earlier, larger base (btc-forecast/python-base:bookworm) does not keep using it.
NAME="${BASE_IMAGE_NAME:-btc-forecast/python-base:${SUITE}-slim}"
PACKAGES="ca-certificates,python3,python3-venv,python-is-python3"
TARBALL="$BASE_DIR/${SUITE}-python-slim.tar"
ROOTFS_ONLY=0
[ "${1:-}" = --rootfs-only ] && ROOTFS_ONLY=1

log() { echo "base-image: $*" >&2; }

if [ "$ROOTFS_ONLY" = 0 ]; then
  command -v docker >/dev/null || { log "docker CLI is not installed"; exit 1; }
  docker info >/dev/null 2>&1 || { log "no Docker engine answers at ${DOCKER_HOST:-the default socket}"; exit 1; }
  if docker image inspect "$NAME" >/dev/null 2>&1; then
    log "$NAME is present"
    echo "$NAME"
    exit 0
  fi
fi

if [ ! -s "$TARBALL" ]; then
  command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
  [ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 1; }
  mkdir -p "$BASE_DIR"
  root="$(mktemp -d "$BASE_DIR/root.XXXXXX")"
  trap 'rm -rf "$root" "$TARBALL.tmp"' EXIT
  start=$SECONDS
  log "debootstrap --variant=minbase $SUITE ($MIRROR) into $root"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$BASE_DIR/debootstrap.log" 2>&1 \
    || { tail -n 30 "$BASE_DIR/debootstrap.log" >&2; log "debootstrap failed (log: $BASE_DIR/debootstrap.log)"; exit 1; }
  # What an image does not need: downloaded packages, apt lists, docs, translations (locale.alias stays,
  # as in Debian's slim images), and the build host's resolver.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/tmp/* 2>/dev/null || true
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  : >"$root/etc/resolv.conf"
  echo "$SUITE" >"$root/etc/btcf-base-suite"
  tar --numeric-owner -C "$root" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  log "root filesystem cached in $TARBALL ($((SECONDS - start)) s)"
fi
if [ "$ROOTFS_ONLY" = 1 ]; then
  echo "$TARBALL"
  exit 0
fi

docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debootstrap --variant=minbase $SUITE + $PACKAGES" \
  "$TARBALL" "$NAME" >/dev/null
log "imported $NAME ($(docker image inspect -f '{{.Size}}' "$NAME" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$NAME"
