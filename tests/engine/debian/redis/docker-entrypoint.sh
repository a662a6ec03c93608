#!/bin/sh
# docker-entrypoint.sh - the official redis image's entrypoint in POSIX sh, plus the defaults
# the official binary has compiled in: `redis-server` (or just its options / a .conf file)
# runs as user redis with `--protected-mode no` unless the command sets protected-mode itself;
# anything else is exec'ed as is.
set -eu

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "${1:-}" = redis-server ]; then
	case " $* " in
	*" --protected-mode "*) ;;
	*) set -- "$@" --protected-mode no ;;
	esac
	if [ "$(id -u)" = 0 ]; then
		find . \! -user redis -exec chown redis '{}' +
		exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
	fi
	# the official image tightens the default umask for the dump files
	[ "$(umask)" != 0022 ] || umask 0077
fi

exec "$@"
