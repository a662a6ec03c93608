#!/usr/bin/env bash
# Make sure a Docker Engine answers. On a Debian machine where we are root and none is
# installed, install Debian's docker.io; start dockerd when no init system runs it.
set -euo pipefail
docker info >/dev/null 2>&1 && exit 0
if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "Docker Engine is not installed: see https://docs.docker.com/engine/install/" >&2
    exit 1
  fi
  echo "installing Docker Engine (Debian package docker.io)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io iptables >/dev/null
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "the Docker daemon is not running: start it (e.g. sudo systemctl start docker)" >&2
  exit 1
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
  systemctl start docker
else
  echo "starting dockerd (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not start; see /var/log/dockerd.log" >&2
exit 1
