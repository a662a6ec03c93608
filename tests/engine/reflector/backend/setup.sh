#!/bin/sh
# Runs inside the debootstrapped trixie chroot, as root, with /proc mounted, policy-rc.d in place
# and Reflector's pyproject.toml, uv.lock and README.md already in /app:
#   sh /tmp/ct-setup.sh UV_VERSION PACKAGE...
# What upstream's server/Dockerfile does before it copies the code, on Debian instead of
# python:3.12-slim: the system packages, uv where upstream's installer puts it, and the locked
# dependency set in /app/.venv. Its text is part of the deps image's key.
set -eu
export DEBIAN_FRONTEND=noninteractive
uv_version=$1
shift

# The host's pip and uv settings (local mirrors, find-links) must not leak in: no config file,
# PyPI itself, no cache left in the image. The host's CA bundle (it may trust a TLS-inspecting
# egress proxy that Debian's bundle does not) is in /tmp for these downloads only; the image
# keeps Debian's own bundle.
export PIP_CONFIG_FILE=/dev/null PIP_INDEX_URL=https://pypi.org/simple PIP_NO_CACHE_DIR=1 \
	PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_DEFAULT_TIMEOUT=120 \
	PIP_CERT=/tmp/ct-host-ca.crt
export UV_NO_CONFIG=1 UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never

apt-get update -q
apt-get install -y -q "$@"

# uv: upstream runs astral.sh's install.sh, which puts the binaries in /root/.local/bin (on
# PATH in the image); here they come from PyPI's uv wheel, pinned.
python3 -m venv /tmp/ct-uv
/tmp/ct-uv/bin/pip install -q "uv==$uv_version"
mkdir -p /root/.local/bin
cp /tmp/ct-uv/bin/uv /tmp/ct-uv/bin/uvx /root/.local/bin/
rm -rf /tmp/ct-uv
uv=/root/.local/bin/uv
"$uv" --version

# The locked set upstream's `uv sync --locked` installs, less the groups that cannot be had here
# (silero-vad: torch, pyannote; local: faster-whisper) and those only development needs (dev,
# tests, evaluation). `uv sync` itself refuses: Debian trixie's Python is 3.13 and the project
# says requires-python <3.13 (3.11 lacks what pydantic needs); the locked versions install and
# import on 3.13, so the lock is exported and pip installs exactly that list.
cd /app
"$uv" export --frozen --no-hashes --no-emit-project --no-default-groups --group aws \
	--output-file /tmp/ct-requirements.txt >/dev/null
echo "ct-setup: $(grep -c '==' /tmp/ct-requirements.txt) pinned requirements"
python3 -m venv /app/.venv
/app/.venv/bin/pip install -q -r /tmp/ct-requirements.txt
/app/.venv/bin/pip check
rm -f /tmp/ct-requirements.txt /tmp/ct-host-ca.crt

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old \
	/var/log/apt /var/log/dpkg.log /var/log/alternatives.log /var/log/bootstrap.log /root/.cache
find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/locale/* /usr/share/lintian

# every tool the image and runserver.sh rely on
for tool in /bin/bash /usr/bin/curl /usr/bin/ffmpeg /usr/bin/ffprobe \
	/usr/sbin/update-ca-certificates "$uv" /app/.venv/bin/python /app/.venv/bin/alembic \
	/app/.venv/bin/uvicorn /app/.venv/bin/celery; do
	[ -x "$tool" ] || { echo "ct-setup: $tool is missing" >&2; exit 1; }
done
/app/.venv/bin/python --version
ffmpeg -hide_banner -version | head -n 1
echo "ct-setup: done"
