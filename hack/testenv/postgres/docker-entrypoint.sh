#!/usr/bin/env bash
# Entrypoint of the orchestrator's PostgreSQL test stand-in (Debian's
# postgresql-15 in a debootstrap rootfs). It follows the contract of the
# official `postgres` image that the platform's compose file relies on, so the
# same service definition works with the upstream image and with this one:
#
#   POSTGRES_PASSWORD / POSTGRES_PASSWORD_FILE  superuser password (required
#                                               unless POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER(_FILE)                        superuser name (default postgres)
#   POSTGRES_DB(_FILE)                          database created on first start (default: the user)
#   POSTGRES_INITDB_ARGS(_FILE)                 extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD                   pg_hba method for TCP (default scram-sha-256)
#   PGDATA                                      data directory (default /var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz   run once, on an empty data dir
#
# Not supported (unneeded by the platform): POSTGRES_INITDB_WALDIR, *.sql.xz/zst.
set -Eeuo pipefail

# file_env VAR [DEFAULT]: VAR or the contents of the file named by VAR_FILE,
# so secrets can come from mounted files instead of the environment.
file_env() {
	local var="$1" def="${2:-}"
	local fileVar="${var}_FILE"
	if [ -n "${!var:-}" ] && [ -n "${!fileVar:-}" ]; then
		echo >&2 "error: both $var and $fileVar are set (but are exclusive)"
		exit 1
	fi
	local val="$def"
	if [ -n "${!var:-}" ]; then
		val="${!var}"
	elif [ -n "${!fileVar:-}" ]; then
		if [ ! -r "${!fileVar}" ]; then
			echo >&2 "error: $fileVar=${!fileVar} is not a readable file"
			exit 1
		fi
		val="$(<"${!fileVar}")"
	fi
	export "$var"="$val"
	unset "$fileVar"
}

setup_env() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
	export POSTGRES_HOST_AUTH_METHOD
	export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
	DATABASE_ALREADY_EXISTS=
	if [ -s "$PGDATA/PG_VERSION" ]; then
		DATABASE_ALREADY_EXISTS=true
	fi
}

# Runs as root: a fresh named volume is owned by root, and postgres refuses a
# data directory it does not own or that others can read.
create_db_directories() {
	mkdir -p "$PGDATA"
	chmod 00700 "$PGDATA" || :
	mkdir -p /var/run/postgresql
	chmod 03775 /var/run/postgresql || :
	if [ "$(id -u)" = 0 ]; then
		find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
		find /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
	fi
}

verify_minimum_env() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		cat >&2 <<-'EOM'
			error: the database is uninitialized and no superuser password is set.
			       Set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (or, for tests only,
			       POSTGRES_HOST_AUTH_METHOD=trust).
		EOM
		exit 1
	fi
}

init_database_dir() {
	# The password goes through a pipe, never argv or a file in the volume.
	# Local (socket) connections trust, as in the official image, so
	# `docker exec ... psql -U $POSTGRES_USER` works without a password.
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list by contract
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		--auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" \
		-D "$PGDATA" $POSTGRES_INITDB_ARGS
	printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
	printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

# Init scripts talk to a server that listens on the socket only, so clients
# never see a half-initialised database.
temp_server_start() {
	PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
}

temp_server_stop() {
	PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
}

psql_init() {
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

setup_db() {
	if [ "$POSTGRES_DB" != postgres ]; then
		# psql interpolates :'db' only in input it reads, not in -c, so the
		# statements go through stdin; the quoting then is psql's, not ours.
		local exists
		exists="$(psql_init --dbname postgres --set db="$POSTGRES_DB" -tA <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")"
		if [ -z "$exists" ]; then
			psql_init --dbname postgres --set db="$POSTGRES_DB" -q <<<'CREATE DATABASE :"db";'
		fi
	fi
}

process_init_files() {
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			# Executable scripts run on their own; others are sourced so they
			# can use this script's variables and psql_init, like upstream.
			if [ -x "$f" ]; then
				echo "$0: running $f"
				"$f"
			else
				echo "$0: sourcing $f"
				# shellcheck disable=SC1090
				. "$f"
			fi
			;;
		*.sql)
			echo "$0: running $f"
			psql_init --dbname "$POSTGRES_DB" -f "$f"
			;;
		*.sql.gz)
			echo "$0: running $f"
			gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB"
			;;
		*) echo "$0: ignoring $f" ;;
		esac
	done
}

main() {
	# `docker run IMAGE -c foo=bar` means `postgres -c foo=bar`, as upstream.
	if [ "$#" -eq 0 ] || [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi

	if [ "$1" = postgres ]; then
		setup_env
		create_db_directories
		if [ "$(id -u)" = 0 ]; then
			# setpriv (util-linux, essential in Debian) drops to postgres without
			# gosu and without an extra shell level between docker and the server.
			# setpriv keeps root's HOME; psql and init scripts expect postgres's.
			export HOME=/var/lib/postgresql
			exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
		fi
		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			verify_minimum_env
			init_database_dir
			export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
			temp_server_start
			setup_db
			process_init_files
			temp_server_stop
			unset PGPASSWORD
			echo "$0: PostgreSQL init process complete; ready for start up."
		else
			echo "$0: PostgreSQL database directory appears to contain a database; skipping initialization"
		fi
	fi

	exec "$@"
}

main "$@"
