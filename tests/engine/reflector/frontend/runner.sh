#!/bin/sh
# Runs inside the chroot after the build:   sh /tmp/ct-frontend/runner.sh BUILD_DIR PACKAGE...
# Upstream's runner stage: /app holds public/, the standalone server and .next/static, nothing
# else; user nextjs. Then the build's tools go (pnpm, its store, npm: the PACKAGEs are purged),
# so the image holds node and the app. Its text is part of the image's key.
set -eu
export DEBIAN_FRONTEND=noninteractive
build=$1
shift
mv /app "$build"

# upstream (Alpine): addgroup --system --gid 1001 nodejs; adduser --system --uid 1001 nextjs.
# BusyBox's adduser gives a system user without -G the group nogroup, home /home/nextjs and the
# shell /bin/false; the same here with shadow's tools.
groupadd --system --gid 1001 nodejs
useradd --system --uid 1001 --gid nogroup --home-dir /home/nextjs --no-create-home \
	--shell /bin/false nextjs
mkdir -p /home/nextjs
chown nextjs:nogroup /home/nextjs

# WORKDIR /app (root's); COPY /app/public ./public (no --chown: root's);
# COPY --chown=1001:1001 /app/.next/standalone ./ and /app/.next/static ./.next/static
mkdir /app
cp -a "$build/public" /app/public
chown -R 0:0 /app/public
for entry in "$build"/.next/standalone/* "$build"/.next/standalone/.[!.]*; do
	[ -e "$entry" ] || continue
	cp -a "$entry" /app/
	chown -R -h 1001:1001 "/app/${entry##*/}"
done
cp -a "$build/.next/static" /app/.next/static
chown -R -h 1001:1001 /app/.next/static
rm -rf "$build"

# the build's tools: pnpm (npm's global install), npm and what only it needed, their caches
rm -rf /usr/local/lib/node_modules/pnpm /usr/local/bin/pnpm /usr/local/bin/pnpx
apt-get purge -y -q "$@"
apt-get autoremove --purge -y -q
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old \
	/var/log/apt /var/log/dpkg.log /var/log/alternatives.log /var/log/bootstrap.log \
	/root/.npm /root/.cache /root/.local /root/.config
find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/locale/* /usr/share/lintian

# what the image and its health check rely on; what must be gone
for tool in /usr/bin/node /usr/bin/wget /bin/sh; do
	[ -x "$tool" ] || { echo "ct-setup: $tool is missing" >&2; exit 1; }
done
for gone in npm pnpm; do
	if command -v "$gone" >/dev/null; then echo "ct-setup: $gone is still there" >&2; exit 1; fi
done
for file in /app/server.js /app/package.json /app/.next/BUILD_ID /app/.next/static /app/public; do
	[ -e "$file" ] || { echo "ct-setup: $file is missing" >&2; exit 1; }
done
[ "$(id -u nextjs):$(getent group nodejs | cut -d: -f3)" = "1001:1001" ]
[ "$(stat -c %u:%g /app/server.js /app/.next/static | sort -u)" = "1001:1001" ]
echo "ct-setup: node $(node --version); $(wget --version | head -n 1)"
echo "ct-setup: $(du -sh /app | cut -f1) in /app"
echo "ct-setup: done"
