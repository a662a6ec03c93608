#!/bin/sh
# Runs in the debootstrapped trixie chroot, as root, with /proc mounted and policy-rc.d in place:
#   sh /tmp/ct-frontend/system.sh PNPM_VERSION PACKAGE...
# What the base stage of upstream's www/Dockerfile gives (node, pnpm), from Debian instead of
# node:22-alpine. Its text is part of the image's key.
set -eu
export DEBIAN_FRONTEND=noninteractive
pnpm_version=$1
shift

# Deviation: Debian trixie's nodejs (20.19) instead of node:22-alpine's Node 22 (no image
# registry here; Next.js 16 needs Node >= 20.9). glibc, so upstream's `apk add libc6-compat`
# has no counterpart and pnpm picks the -gnu builds of next's SWC, lightningcss and the like.
apt-get update -q
apt-get install -y -q "$@"
node --version

# Deviation: pnpm from npm, pinned, instead of `corepack enable`. Upstream's package.json names no
# packageManager, so corepack takes the pnpm that was latest when the image was built; 10.33.2
# was the latest pnpm 10 on the day of the snapshot's commit (2026-04-24).
npm install -g --no-audit --no-fund "pnpm@$pnpm_version"
if [ "$(pnpm --version)" != "$pnpm_version" ]; then
	echo "ct-setup: pnpm is not $pnpm_version" >&2
	exit 1
fi
echo "ct-setup: node $(node --version), npm $(npm --version), pnpm $(pnpm --version)"
