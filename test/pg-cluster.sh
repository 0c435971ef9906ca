#!/bin/bash
# Starts or stops a throwaway PostgreSQL 15 cluster for tests and demos.
#
#   test/pg-cluster.sh start DIR [-c name=value ...]   initdb DIR/data, start it on a
#                                                      Unix socket in DIR (no TCP)
#   test/pg-cluster.sh stop DIR                        stop it and remove DIR
#
# The server never runs as root: when called by root (as CI is), it runs as
# the "postgres" system user, which Debian's postgresql package creates.
# Authentication is "trust" on the socket only, so clients of any operating
# system user connect as PGUSER=postgres.  Prints the environment to use:
#   export PGHOST=DIR PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
set -euo pipefail

PG_BIN=${PG_BIN:-$(pg_config --bindir)}
action=${1:?usage: pg-cluster.sh start|stop DIR}
dir=${2:?usage: pg-cluster.sh start|stop DIR}
shift 2

as_server_user() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

case "$action" in
start)
	mkdir -p "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$dir"
	fi
	chmod 755 "$dir"
	as_server_user "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust \
		--encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$dir'"
		echo "fsync = off"
		echo "max_parallel_workers_per_gather = 2"
		for setting in "$@"; do
			case "$setting" in
			-c) ;;
			*) echo "$setting" | sed "s/=\(.*\)/ = '\1'/" ;;
			esac
		done
	} | as_server_user tee -a "$dir/data/postgresql.conf" >/dev/null
	as_server_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
		{ cat "$dir/server.log" >&2; exit 1; }
	echo "export PGHOST=$dir PGPORT=5432 PGUSER=postgres PGDATABASE=postgres"
	;;
stop)
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_server_user "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
	fi
	rm -rf "$dir"
	;;
*)
	echo "usage: pg-cluster.sh start|stop DIR" >&2
	exit 2
	;;
esac
