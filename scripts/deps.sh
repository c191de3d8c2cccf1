#!/usr/bin/env bash
# Make the lab's dependencies available: PostgreSQL (with db/init-db.sql
# applied) at DATABASE_URL and Redis at REDIS_URL. Run as `npm run deps`.
#
#   DATABASE_URL  default postgres://lab:lab@localhost:5432/lab
#   REDIS_URL     default redis://localhost:6379
#
# If a service already answers at its URL it is only used (and the schema is
# applied, which is idempotent). Otherwise, for a local URL (localhost,
# 127.0.0.1, ::1) on a Debian-like system where we are root, the service is
# installed with apt-get if needed, started, and PostgreSQL gets the role and
# database from the URL. Anything else is reported with what to start, and
# the script exits 1. Safe to run any number of times; fast when everything
# is already running. Passwords are never printed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=deps
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
readonly SQL_FILE=db/init-db.sql
readonly PG_SOCKET_DIR=/var/run/postgresql

DATABASE_URL="${DATABASE_URL:-postgres://lab:lab@localhost:5432/lab}"
REDIS_URL="${REDIS_URL:-redis://localhost:6379}"
export DEBIAN_FRONTEND=noninteractive


now_ms() { date +%s%3N; }
elapsed() { local ms=$(($(now_ms) - $1)); printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100)); }

# ------------------------------------------------------------------ URLs --

urldecode() {
    local s=$1
    if [[ $s == *%* ]]; then
        s=${s//\\/\\\\}
        printf '%b' "${s//%/\\x}"
    else
        printf '%s' "$s"
    fi
}

# parse_url URL DEFAULT_PORT: sets URL_SCHEME URL_USER URL_PASS URL_HOST
# URL_PORT URL_PATH (user, password and path percent-decoded).
parse_url() {
    local url=$1 rest authority userinfo hostport
    URL_SCHEME=${url%%://*}
    rest=${url#*://}
    rest=${rest%%\?*}
    rest=${rest%%#*}
    authority=${rest%%/*}
    URL_PATH=""
    [[ $rest == */* ]] && URL_PATH=$(urldecode "${rest#*/}")
    URL_USER="" URL_PASS=""
    hostport=$authority
    if [[ $authority == *@* ]]; then
        userinfo=${authority%@*}
        hostport=${authority##*@}
        URL_USER=$(urldecode "${userinfo%%:*}")
        [[ $userinfo == *:* ]] && URL_PASS=$(urldecode "${userinfo#*:}")
    fi
    if [[ $hostport == \[* ]]; then            # [v6 address]:port
        URL_HOST=${hostport%%]*}
        URL_HOST=${URL_HOST#[}
        hostport=${hostport#*]}
        URL_PORT=${hostport#:}
    else
        URL_HOST=${hostport%%:*}
        URL_PORT=""
        [[ $hostport == *:* ]] && URL_PORT=${hostport#*:}
    fi
    URL_HOST=${URL_HOST:-localhost}
    URL_PORT=${URL_PORT:-$2}
    [[ $URL_PORT =~ ^[0-9]+$ ]] || die "invalid port '$URL_PORT' in ${URL_SCHEME} URL"
}

# The URL as shown to people: the password replaced by ***.
masked_url() {
    local url=$1 scheme rest authority
    [[ $url == *://*@* ]] || { printf '%s' "$url"; return; }
    scheme=${url%%://*}
    rest=${url#*://}
    authority=${rest%%/*}
    [[ ${authority%@*} == *:* ]] || { printf '%s' "$url"; return; }
    printf '%s://%s:***@%s' "$scheme" "${authority%%:*}" "${rest#*@}"
}

is_local_host() {
    case $1 in localhost | 127.0.0.1 | ::1 | localhost.localdomain) return 0 ;; *) return 1 ;; esac
}

# ------------------------------------------------------------ PostgreSQL --

parse_url "$DATABASE_URL" 5432
readonly PG_HOST=$URL_HOST PG_PORT=$URL_PORT PG_USER=$URL_USER PG_PASS=$URL_PASS
readonly PG_DB=${URL_PATH:-$URL_USER}
PG_SHOWN="$PG_HOST:$PG_PORT/$PG_DB"
PG_URL_SHOWN=$(masked_url "$DATABASE_URL")

# The gist of a libpq error (first line, without "psql: error: connection
# to server at ... failed: FATAL:"), with the URL (and its password) masked.
pg_error() {
    local err=${1//"$DATABASE_URL"/"$PG_URL_SHOWN"}
    err=$(printf '%s\n' "$err" | sed -n '/[^[:space:]]/{p;q;}')
    err=${err#psql: error: }
    err=${err##*failed: }
    err=${err#FATAL: }
    printf '%s' "${err# }"
}

PG_LAST_ERROR=""
pg_reachable() {
    command -v psql >/dev/null 2>&1 || { PG_LAST_ERROR="psql not installed"; return 1; }
    local err
    if err=$(PGCONNECT_TIMEOUT=5 psql "$DATABASE_URL" -X -q -A -t -c 'select 1' 2>&1 >/dev/null); then
        return 0
    fi
    PG_LAST_ERROR=$(pg_error "$err")
    return 1
}

pg_cannot() {
    die "PostgreSQL is not reachable at $PG_HOST:$PG_PORT ($PG_LAST_ERROR) and $1: start PostgreSQL 15+ and set DATABASE_URL (now $PG_URL_SHOWN)"
}

# Run a command as the postgres OS user (initdb and peer auth need it; root
# cannot run the server). From / so it does not complain about $PWD.
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

# psql as the postgres superuser over the local socket of our cluster.
pg_admin() {
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres "$@"
}

sql_literal() { printf "'%s'" "${1//\'/\'\'}"; }

server_installed() {
    command -v pg_ctlcluster >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 &&
        compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# Prints "version name status" of the cluster configured on PG_PORT, if any.
cluster_on_port() {
    local ver name port status rest
    while read -r ver name port status rest; do
        if [[ $port == "$PG_PORT" ]]; then
            printf '%s %s %s\n' "$ver" "$name" "$status"
            return 0
        fi
    done < <(pg_lsclusters -h 2>/dev/null)
    return 1
}

setup_local_postgres() {
    if ! server_installed; then
        apt_install postgresql
        server_installed || die "apt-get installed postgresql but no server binaries were found"
    fi

    local line ver name status
    if ! line=$(cluster_on_port); then
        # Something else (a container, another install) owns the port: we
        # cannot fix its credentials from here.
        if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 3 >/dev/null 2>&1; then
            die "a PostgreSQL server at $PG_HOST:$PG_PORT that is not a local cluster rejects DATABASE_URL ($PG_LAST_ERROR): fix DATABASE_URL (now $PG_URL_SHOWN) or that server's role/database"
        fi
        ver=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' |
            awk -F/ '{ print $5 }' | sort -V | tail -n 1)
        name=main
        [[ -e /etc/postgresql/$ver/$name ]] && name="lab$PG_PORT"
        log "creating PostgreSQL $ver cluster '$name' on port $PG_PORT"
        # pg_createcluster runs initdb as the postgres user (initdb refuses root).
        pg_createcluster --port "$PG_PORT" --encoding UTF8 --locale C.UTF-8 "$ver" "$name" >/dev/null
        line="$ver $name down"
    fi
    read -r ver name status <<<"$line"

    if [[ $status != online* ]]; then
        log "starting PostgreSQL $ver cluster '$name' (port $PG_PORT)"
        if ! pg_ctlcluster "$ver" "$name" start; then
            tail -n 20 "/var/log/postgresql/postgresql-$ver-$name.log" >&2 || true
            die "could not start PostgreSQL cluster $ver/$name"
        fi
    fi
    local i
    for ((i = 0; i < 60; i++)); do
        pg_isready -q -h "$PG_SOCKET_DIR" -p "$PG_PORT" && break
        sleep 0.5
    done
    pg_isready -q -h "$PG_SOCKET_DIR" -p "$PG_PORT" || die "PostgreSQL cluster $ver/$name did not become ready in 30s"
    # It was only stopped: role and database are already there.
    pg_reachable && return 0

    [[ -n $PG_USER && -n $PG_PASS ]] || die "DATABASE_URL must name a user and password to set PostgreSQL up (now $PG_URL_SHOWN)"

    log "ensuring role '$PG_USER' and database '$PG_DB'"
    # The password goes through stdin, never the command line. An existing
    # role keeps its password: we do not silently change credentials.
    pg_admin -d postgres -v u="$PG_USER" -v d="$PG_DB" <<SQL
SET password_encryption = 'scram-sha-256';
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'u', $(sql_literal "$PG_PASS"))
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'u') \gexec
SELECT CASE WHEN (SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'template1') = 'UTF8'
            THEN format('CREATE DATABASE %I OWNER %I', :'d', :'u')
            ELSE format('CREATE DATABASE %I OWNER %I ENCODING %L LOCALE %L TEMPLATE template0',
                        :'d', :'u', 'UTF8', 'C.UTF-8') END
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'d') \gexec
SQL
    # If the database already existed with another owner, the role still
    # needs to create the lab's tables.
    pg_admin -d "$PG_DB" -v u="$PG_USER" <<'SQL'
GRANT CREATE, USAGE ON SCHEMA public TO :"u";
SQL

    if ! pg_reachable && [[ $PG_LAST_ERROR != *"password authentication failed"* ]]; then
        # Password logins over TCP need a host rule for md5/scram. Debian's
        # default pg_hba.conf has one; add one in front if it was changed
        # (the login then fails with "no pg_hba.conf entry", "Ident ...").
        local hba
        hba=$(pg_admin -d postgres -A -t -c 'SHOW hba_file')
        local marker="# black-friday-lab deps: password logins over TCP for role $PG_USER"
        if ! grep -qxF "$marker" "$hba"; then
            log "allowing password logins for '$PG_USER' over TCP in $hba"
            {
                printf '%s\n' "$marker"
                printf 'host all "%s" 127.0.0.1/32 scram-sha-256\n' "$PG_USER"
                printf 'host all "%s" ::1/128 scram-sha-256\n' "$PG_USER"
                cat "$hba"
            } >"$hba.lab-tmp"
            chown --reference="$hba" "$hba.lab-tmp"
            chmod --reference="$hba" "$hba.lab-tmp"
            mv "$hba.lab-tmp" "$hba"
            pg_admin -d postgres -c 'SELECT pg_reload_conf()' >/dev/null
            sleep 0.5
        fi
    fi
    pg_reachable || die "PostgreSQL is running at $PG_HOST:$PG_PORT but DATABASE_URL cannot log in ($PG_LAST_ERROR): fix the password in DATABASE_URL (now $PG_URL_SHOWN) or ALTER ROLE $PG_USER PASSWORD"
}

ensure_postgres() {
    if pg_reachable; then
        log "PostgreSQL reachable at $PG_SHOWN"
        return
    fi
    if ! is_local_host "$PG_HOST"; then
        if ! command -v psql >/dev/null 2>&1 && can_install; then
            apt_install postgresql-client
            pg_reachable && { log "PostgreSQL reachable at $PG_SHOWN"; return; }
        fi
        pg_cannot "is not local, so it is not started here"
    fi
    can_install || pg_cannot "cannot be installed here (needs root and apt-get)"
    log "PostgreSQL not reachable at $PG_SHOWN ($PG_LAST_ERROR): setting it up locally"
    setup_local_postgres
    log "PostgreSQL reachable at $PG_SHOWN"
}

apply_schema() {
    local t0 err
    t0=$(now_ms)
    if ! err=$(psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -f "$SQL_FILE" 2>&1 >/dev/null); then
        printf '%s\n' "${err//"$DATABASE_URL"/"$PG_URL_SHOWN"}" >&2
        die "applying $SQL_FILE failed"
    fi
    log "applied $SQL_FILE in $(elapsed "$t0")"
}

# ----------------------------------------------------------------- Redis --

parse_url "$REDIS_URL" 6379
readonly REDIS_HOST=$URL_HOST REDIS_PORT=$URL_PORT REDIS_USER=$URL_USER REDIS_PASS=$URL_PASS REDIS_SCHEME=$URL_SCHEME
REDIS_SHOWN="$REDIS_HOST:$REDIS_PORT"

# redis_conf_string VALUE: VALUE as one double-quoted redis.conf argument. Redis reads
# a quoted argument with backslash escapes (\" \\ and \xHH among them), so " and \
# are escaped, and every byte that is not printable ASCII (a newline, a tab, UTF-8)
# is written as \xHH: the value stays one argument of one line, byte for byte.
redis_conf_string() {
    local LC_ALL=C value=$1 out='' c i
    for ((i = 0; i < ${#value}; i++)); do
        c=${value:i:1}
        case $c in
            '"' | \\) out+="\\$c" ;;
            [' '-'~']) out+=$c ;;
            *) out+=$(printf '\\x%02x' "'$c") ;;
        esac
    done
    printf '"%s"' "$out"
}

redis_ping() {
    local reply=""
    if command -v redis-cli >/dev/null 2>&1; then
        # Decoded password through the environment: redis-cli -u does not
        # percent-decode, and the command line is visible to everyone.
        local opts=(-h "$REDIS_HOST" -p "$REDIS_PORT")
        [[ -n $REDIS_USER ]] && opts+=(--user "$REDIS_USER")
        [[ $REDIS_SCHEME == rediss ]] && opts+=(--tls)
        reply=$(REDISCLI_AUTH="$REDIS_PASS" timeout 5 redis-cli "${opts[@]}" ping 2>/dev/null) || true
        [[ $reply == PONG ]]
        return
    fi
    # No redis-cli (yet): speak RESP over bash's /dev/tcp (plain TCP only).
    [[ $REDIS_SCHEME == redis ]] || return 1
    # shellcheck disable=SC2016 # the inner script expands its own arguments
    timeout 5 bash -c '
        LC_ALL=C
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        if [[ -n $4 ]]; then
            if [[ -n $3 ]]; then
                printf "*3\r\n\$4\r\nAUTH\r\n\$%d\r\n%s\r\n\$%d\r\n%s\r\n" "${#3}" "$3" "${#4}" "$4" >&3
            else
                printf "*2\r\n\$4\r\nAUTH\r\n\$%d\r\n%s\r\n" "${#4}" "$4" >&3
            fi
            read -r reply <&3 && [[ $reply == +OK* ]] || exit 1
        fi
        printf "PING\r\n" >&3
        read -r reply <&3 && [[ $reply == +PONG* ]]' _ "$REDIS_HOST" "$REDIS_PORT" "$REDIS_USER" "$REDIS_PASS" 2>/dev/null
}

# Something accepts TCP connections on host:port.
port_open() {
    # shellcheck disable=SC2016 # expanded by the inner shell
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

redis_cannot() {
    die "Redis is not reachable at $REDIS_SHOWN and $1: start Redis 7+ and set REDIS_URL (now $(masked_url "$REDIS_URL"))"
}

ensure_redis() {
    if redis_ping; then
        log "Redis reachable at $REDIS_SHOWN"
        return
    fi
    is_local_host "$REDIS_HOST" || redis_cannot "is not local, so it is not started here"
    can_install || redis_cannot "cannot be installed here (needs root and apt-get)"
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools
    # The package may have started a service on the port (hosts with systemd).
    if ! redis_ping; then
        if port_open "$REDIS_HOST" "$REDIS_PORT"; then
            die "something listens on $REDIS_SHOWN but does not answer PING with the credentials in REDIS_URL (now $(masked_url "$REDIS_URL")): fix REDIS_URL or stop it"
        fi
        log "starting redis-server on port $REDIS_PORT"
        local args=(--daemonize yes --save '' --appendonly no --port "$REDIS_PORT" --bind 127.0.0.1 -::1)
        local run=()
        if id redis >/dev/null 2>&1 && [[ -d /var/lib/redis ]]; then
            # Not as root when the package's user exists.
            run=(runuser -u redis --)
            args+=(--dir /var/lib/redis)
            [[ -d /var/log/redis ]] && args+=(--logfile "/var/log/redis/redis-lab-$REDIS_PORT.log")
        else
            args+=(--dir /tmp)
        fi
        if [[ -n $REDIS_PASS ]]; then
            # Through stdin (redis-server -), not the command line.
            # Quoted and escaped (redis_conf_string): a " or \ or a newline in the
            # password cannot end the argument or start a directive of its own.
            printf 'requirepass %s\n' "$(redis_conf_string "$REDIS_PASS")" | (cd / && "${run[@]}" redis-server - "${args[@]}") >/dev/null
        else
            (cd / && "${run[@]}" redis-server "${args[@]}") >/dev/null
        fi
        local i
        for ((i = 0; i < 40; i++)); do
            redis_ping && break
            sleep 0.25
        done
        redis_ping || die "redis-server did not answer PING at $REDIS_SHOWN within 10s"
    fi
    log "Redis reachable at $REDIS_SHOWN"
}

# ------------------------------------------------------------------ main --

ensure_postgres
apply_schema
counts=$(psql "$DATABASE_URL" -X -q -A -t -F ' ' \
    -c 'SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM order_items)')
read -r n_products n_items <<<"$counts"
ensure_redis
log "PostgreSQL ready at $PG_SHOWN ($n_products products, $n_items order items); Redis ready at $REDIS_SHOWN"
