#!/bin/sh
# Runs inside the debootstrapped chroot, as root, with /proc mounted and policy-rc.d in place:
#   sh /tmp/ct-setup.sh PG_MAJOR PACKAGE...
# installs the packages (no recommends), trims what a test image does not need, and checks
# that every tool the derived images use is there. Its text is part of the base image key.
set -eu
export DEBIAN_FRONTEND=noninteractive
pg_major=$1
shift

apt-get update -q
# Debian's postgresql-common creates a "main" cluster when a server is installed unless told
# not to (the official postgres image does the same); our entrypoint runs initdb itself.
apt-get install -y -q postgresql-common
sed -ri 's/^#?[[:space:]]*(create_main_cluster)[[:space:]]*=.*$/\1 = false/' \
	/etc/postgresql-common/createcluster.conf
grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf
apt-get install -y -q "$@"

# postgresql-$pg_major depends on libllvm (~115 MB, + libz3 ~23 MB for it) for JIT alone.
# Without llvmjit.so the server disables JIT silently, so drop them; --force-depends leaves
# dpkg's view of the dependency unmet (nothing installs packages in these images later).
for lib in $(dpkg-query -W -f '${db:Status-Status} ${Package}\n' 'libllvm*' 'libz3-*' 2>/dev/null |
	awk '$1 == "installed" { print $2 }'); do
	dpkg --purge --force-depends "$lib"
done
rm -rf /usr/lib/postgresql/"$pg_major"/lib/llvmjit* /usr/lib/postgresql/"$pg_major"/lib/bitcode

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old \
	/var/log/apt /var/log/dpkg.log /var/log/alternatives.log /var/log/bootstrap.log
find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/locale/* /usr/share/lintian

# every tool the derived images and the tests rely on
bin=/usr/lib/postgresql/$pg_major/bin
for tool in "$bin/postgres" "$bin/initdb" "$bin/pg_ctl" "$bin/psql" "$bin/pg_isready" \
	/usr/bin/redis-server /usr/bin/redis-cli /usr/bin/curl /usr/bin/socat /bin/busybox \
	/usr/bin/setpriv /usr/bin/base64; do
	[ -x "$tool" ] || { echo "ct-setup: $tool is missing" >&2; exit 1; }
done
"$bin/postgres" --version
redis-server --version
id postgres
id redis
echo "ct-setup: done"
