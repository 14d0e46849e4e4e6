#!/usr/bin/env bash
# Debian packages the Kubernetes and container tests need on the host (`make host-deps`): the Docker
# engine, debootstrap for a base image without pulls, socat/conntrack for port-forward and kube-proxy,
# dnsmasq for cluster DNS, dpkg-dev and a static libc for scripts/kube/build.sh (which fetches Go and
# etcd as .debs into its own cache, not system-wide), postgresql for the tests of replicated state (their
# fixture runs its own initdb/pg_ctl server in a temporary directory; the packaged service is not used).
# Nothing else is installed system-wide; everything built lands in ~/.cache/btc-forecast.
set -euo pipefail
PACKAGES=(docker.io gcc debootstrap socat conntrack iproute2 iptables dnsmasq-base openssl dpkg-dev libc6-dev xz-utils util-linux postgresql)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "host-deps: missing Debian packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "host-deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
