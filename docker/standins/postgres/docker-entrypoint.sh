#!/usr/bin/env bash
# Stand-in for the official postgres image's entrypoint (docker-library/postgres),
# for Debian's PostgreSQL 15: the documented contract, not the whole script.
#
#   POSTGRES_PASSWORD          required, unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER              superuser (default postgres)
#   POSTGRES_DB                database created at first start (default: POSTGRES_USER)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD  pg_hba.conf method for host connections (default scram-sha-256)
#   PGDATA                     data directory (default /var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d/*.sh, *.sql, *.sql.gz   run in order at first start only
#
# The first argument `postgres` (or an option, which gets `postgres` put before it)
# starts the server as user postgres, listening on every interface; anything else
# is run as it is.
set -Eeuo pipefail

if [[ ${1:-} == -* ]]; then
    set -- postgres "$@"
fi
if [[ ${1:-} != postgres ]]; then
    exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [[ $(id -u) -eq 0 ]]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chmod 00700 "$PGDATA"
    chmod 03775 /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [[ ! -s $PGDATA/PG_VERSION ]]; then
    : "${POSTGRES_USER:=postgres}"
    : "${POSTGRES_DB:=$POSTGRES_USER}"
    : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
    if [[ -z ${POSTGRES_PASSWORD:-} && $POSTGRES_HOST_AUTH_METHOD != trust ]]; then
        cat >&2 <<'EOF'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
       (or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password)
EOF
        exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

    # While the init scripts run, a server on a private Unix socket only: unlike the
    # official image's (listen_addresses='' on the usual socket), it does not answer
    # pg_isready, so a health check does not call a half-initialised database ready.
    init_socket=$(mktemp -d)
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$init_socket -p 5432" -w start >/dev/null
    export PGPASSWORD=${POSTGRES_PASSWORD:-} PGHOST=$init_socket
    psql_base=(psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc --username "$POSTGRES_USER")
    if [[ $POSTGRES_DB != postgres ]]; then
        "${psql_base[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >/dev/null
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        [[ -e $f ]] || continue
        case $f in
            *.sh)
                if [[ -x $f ]]; then
                    echo "$0: running $f"
                    "$f"
                else
                    echo "$0: sourcing $f"
                    # shellcheck disable=SC1090 # the init scripts are the user's
                    . "$f"
                fi
                ;;
            *.sql) echo "$0: running $f"; "${psql_base[@]}" --dbname "$POSTGRES_DB" -f "$f" >/dev/null ;;
            *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql_base[@]}" --dbname "$POSTGRES_DB" >/dev/null ;;
            *) echo "$0: ignoring $f" ;;
        esac
    done
    unset PGPASSWORD PGHOST
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    rmdir "$init_socket"
    echo
    echo 'PostgreSQL init process complete; ready for start up.'
    echo
fi

# listen_addresses = '*' is in postgresql.conf (the image sets it in the sample, as
# the official one does), so a `-c listen_addresses=...` argument still wins.
exec "$@"
