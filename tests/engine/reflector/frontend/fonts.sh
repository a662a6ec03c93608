#!/bin/sh
# Runs inside the chroot:   sh /tmp/ct-frontend/fonts.sh PACKAGE@VERSION DIR
# Fetches the Poppins font files from npm's @fontsource/poppins into DIR/package/ (files/*.woff2
# and one CSS file per weight), for the build's stand-in of Google Fonts (see
# reflector_frontend.py: `next build` downloads Poppins from Google, which is not reachable here).
set -eu
spec=$1
dir=$2
mkdir -p "$dir"
cd "$dir"
tarball=$(npm pack --silent "$spec")
tar -xzf "$tarball"
rm -f "$tarball"
ls package/files/*.woff2 >/dev/null
echo "ct-setup: fonts from $spec"
