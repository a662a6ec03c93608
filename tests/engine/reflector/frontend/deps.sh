#!/bin/sh
# Runs inside the chroot with www/package.json (three pins changed, see reflector_frontend.py)
# and www/pnpm-lock.yaml in /app:   sh /tmp/ct-frontend/deps.sh STORE_DIR
# Upstream's deps stage: `pnpm install --frozen-lockfile` with only those two files, so
# www/.npmrc (minimum-release-age=1440: no version younger than a day, next excepted) does not
# govern the install there and does not here either.
set -eu
store=$1
cd /app

# Deviation: --no-frozen-lockfile. The registry here lacks three of the lockfile's pins, so the
# lockfile cannot be installed as it is; pnpm keeps every other locked version and resolves only
# what the changed pins touch (reflector_frontend.py checks that against the snapshot's lockfile).
pnpm install --no-frozen-lockfile --reporter=append-only --store-dir "$store"
[ -x node_modules/.bin/next ] || { echo "ct-setup: next is not installed" >&2; exit 1; }
echo "ct-setup: deps done"
