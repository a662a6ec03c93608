#!/bin/sh
# Runs inside the chroot with Reflector's www/ tree and its node_modules in /app:
#   sh /tmp/ct-frontend/build.sh
# Upstream's builder stage: NEXT_TELEMETRY_DISABLED=1 (its ENV, set by reflector_frontend.py),
# `pnpm build-production` (= next build --experimental-build-mode compile, standalone output).
# NEXT_FONT_GOOGLE_MOCKED_RESPONSES points next/font at the local Poppins stand-in.
set -eu
cd /app
pnpm build-production
for built in .next/standalone/server.js .next/standalone/package.json .next/static; do
	[ -e "$built" ] || { echo "ct-setup: the build made no $built" >&2; exit 1; }
done
echo "ct-setup: build done ($(cat .next/BUILD_ID))"
