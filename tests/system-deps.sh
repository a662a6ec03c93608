#!/usr/bin/env bash
# Debian packages the tests use as real parts: busybox-static and socat (stand-in images),
# dnsmasq-base (a real DNS server on a loopback port), debootstrap (the root filesystem of the
# real PostgreSQL and Redis test images, and of Reflector's own), iproute2 (the second swarm
# node's network namespace), chromium (the real browser of tests/engine/test_real_app.py) and
# libnss3-tools (certutil: Caddy's root CA in that browser's trust store) and systemd
# (systemd-analyze verify: the unit of `compose-tunnel service install`).
# Installs only what is missing.
set -euo pipefail
need=()
command -v busybox >/dev/null 2>&1 && busybox --list | grep -qx httpd || need+=(busybox-static)
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "tests/system-deps.sh: missing ${need[*]}; install them with your package manager" >&2
  exit 0
fi
echo "installing ${need[*]} (Debian packages used by the tests)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
