#!/bin/sh
# docker-entrypoint.sh - the official postgres image's entrypoint, cut down to POSIX sh:
#   * first arg an option (-c ...)      -> `postgres` is prepended
#   * first arg not `postgres`          -> exec'ed as is
#   * as root                           -> fixes ownership of PGDATA, re-runs itself as postgres
#   * PGDATA without PG_VERSION         -> initdb (superuser POSTGRES_USER, password
#                                          POSTGRES_PASSWORD), `host all all all scram-sha-256`,
#                                          listen_addresses='*', CREATE DATABASE POSTGRES_DB,
#                                          then /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz
#                                          against a temporary server on the unix socket only
#   * finally: exec postgres "$@" (PID 1: it gets the stop signal itself)
set -eu

if [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi
if [ "${1:-}" != postgres ]; then
	exec "$@"
fi

PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 00700 "$PGDATA" || :
	chmod 03775 /var/run/postgresql || :
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
	chown postgres:postgres /var/run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

log() { echo "$(date -u '+%Y-%m-%d %H:%M:%S.000 UTC') [$$] entrypoint: $*"; }

POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}

psql_init() { # psql as the superuser over the temporary server's socket, stopping on errors
	PGPASSWORD=${POSTGRES_PASSWORD:-} psql -X -v ON_ERROR_STOP=1 --no-password --no-psqlrc \
		--username "$POSTGRES_USER" "$@"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
		cat >&2 <<-'MSG'
		Error: Database is uninitialized and superuser password is not specified.
		       You must specify POSTGRES_PASSWORD to a non-empty value for the
		       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
		       (or POSTGRES_HOST_AUTH_METHOD=trust, like the official image)
		MSG
		exit 1
	fi
	pwfile=$(mktemp)
	printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options, like upstream
	initdb --username="$POSTGRES_USER" --pwfile="$pwfile" ${POSTGRES_INITDB_ARGS:-}
	rm -f "$pwfile"
	printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
	printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

	pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -p ${PGPORT:-5432}" start
	if [ "$POSTGRES_DB" != postgres ]; then
		psql_init --dbname postgres --set db="$POSTGRES_DB" <<-'SQL'
			CREATE DATABASE :"db" ;
		SQL
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case $f in
		*.sh)
			if [ -x "$f" ]; then
				log "running $f"
				"$f"
			else
				log "sourcing $f"
				# shellcheck disable=SC1090
				. "$f"
			fi
			;;
		*.sql) log "running $f"; psql_init --dbname "$POSTGRES_DB" -f "$f" ;;
		*.sql.gz) log "running $f"; gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB" ;;
		*) log "ignoring $f" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	log "PostgreSQL init process complete; ready for start up."
else
	log "PostgreSQL Database directory appears to contain a database; Skipping initialization"
fi

exec "$@"
