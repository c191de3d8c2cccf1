#!/usr/bin/env bash
# Shared by deploy.sh, rollback.sh and validate.sh (sourced, after lib.sh): their
# configuration, the pinned SSH connection, and running scripts/release-host.sh on
# the host. Not a command of its own.
#
# The connection: ssh with the host key pinned (StrictHostKeyChecking=yes against
# SSH_KNOWN_HOSTS only, never accept-new), BatchMode, the key in SSH_KEY and no
# user or system ssh configuration. SSH_KEY and SSH_KNOWN_HOSTS are either the
# content (GitHub secrets) or the path of a file; both are copied into a private
# temporary directory (0700, files 0600) that is removed on exit. Nothing here
# prints them.

# A setting that cannot work (missing, malformed): exit 2, as each --help says;
# nothing has been sent to the host yet.
bad_setting() { printf '%s: %s\n' "${LOG_PREFIX:-deploy}" "$*" >&2; exit 2; }

# shellcheck disable=SC2034 # the variables below are read by the scripts that source this file

# The environment every command reads, with its default ('' = required).
readonly CONNECTION_HELP="Connection (all three commands):
  DEPLOY_HOST        the host running k3s (required)
  DEPLOY_USER        the SSH user there (required); it runs kubectl and owns DEPLOY_DIR
  DEPLOY_PORT        SSH port (default 22)
  SSH_KEY            the private key: its content (-----BEGIN ...) or a file path (required)
  SSH_KNOWN_HOSTS    the host's public key line(s), known_hosts format, content or a file
                     path (required): ssh-keyscan -p PORT HOST, then check the fingerprint
  NAMESPACE          Kubernetes namespace (default black-friday-lab)
  DEPLOY_DIR         release records on the host, relative to DEPLOY_USER's home or
                     absolute (default black-friday-lab): DEPLOY_DIR/NAMESPACE/
  REMOTE_KUBECTL     the kubectl command on the host (default kubectl; e.g. 'sudo k3s kubectl')
  VALIDATE_TIMEOUT   seconds validation may take before it fails (default 180)
  VALIDATE_INTERVAL  seconds between validation attempts (default 5)
  VALIDATE_FRONTEND_URL  the frontend Service inside the cluster (default http://frontend:8018)
  VALIDATE_READY     the Deployments whose /ready validation asks, space-separated (default
                     the ten services: recommendation currency cart product-catalog shipping
                     checkout payment frontend ad load-generator); one that is missing fails
  DEPLOY_OWNER       who runs this, shown to anyone who finds the lock taken, and
                     written to the host's release record and history: one line of
                     printable ASCII, no tab, at most 200 characters
                     (default: the GitHub run, or USER@hostname)"

: "${DEPLOY_PORT:=22}" "${NAMESPACE:=black-friday-lab}" "${DEPLOY_DIR:=black-friday-lab}" "${REMOTE_KUBECTL:=kubectl}"
: "${VALIDATE_READY:=recommendation currency cart product-catalog shipping checkout payment frontend ad load-generator}"
: "${VALIDATE_FRONTEND_URL:=http://frontend:8018}" "${VALIDATE_TIMEOUT:=180}" "${VALIDATE_INTERVAL:=5}" "${ROLLOUT_TIMEOUT:=300}" "${KEEP_RELEASES:=10}"
# DEPLOY_OWNER goes into key=value and tab-separated files on the host (release,
# history, lock.owner): one line of printable ASCII without a tab, or a newline in
# it would forge a line of the record. A value given is checked (check_config); the
# default is made to fit (anything else becomes '?', cut at OWNER_MAX).
readonly OWNER_MAX=200
if [[ -z ${DEPLOY_OWNER:-} ]]; then
    if [[ -n ${GITHUB_RUN_ID:-} ]]; then
        DEPLOY_OWNER="GitHub ${GITHUB_WORKFLOW:-workflow} run ${GITHUB_RUN_ID} (${GITHUB_ACTOR:-unknown}) ${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY:-}/actions/runs/${GITHUB_RUN_ID}"
    else
        DEPLOY_OWNER="${USER:-$(id -un)}@$(hostname)"
    fi
    DEPLOY_OWNER=$(printf '%s' "$DEPLOY_OWNER" | LC_ALL=C tr -c ' -~' '?' | LC_ALL=C cut -c "1-$OWNER_MAX")
fi
readonly TAG_PATTERN='^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'

require_env() {
    local var
    for var in "$@"; do
        [[ -n ${!var:-} ]] || bad_setting "$var is not set (see --help)"
    done
}

check_number() {
    local var
    for var in "$@"; do
        [[ ${!var} =~ ^[1-9][0-9]*$ ]] || bad_setting "$var must be a positive number of seconds or items, not '${!var}'"
    done
}

check_tag() {
    [[ $2 =~ $TAG_PATTERN ]] || bad_setting "$1 '$2' is not a valid image tag (letters, digits, _ . -; at most 128)"
}

# check_owner: DEPLOY_OWNER fits one field of the host's release record (see above).
check_owner() {
    local LC_ALL=C printable='^[ -~]+$'
    if ((${#DEPLOY_OWNER} > OWNER_MAX)); then
        bad_setting "DEPLOY_OWNER is ${#DEPLOY_OWNER} characters long: at most $OWNER_MAX (it goes into the host's release record)"
    fi
    [[ $DEPLOY_OWNER =~ $printable ]] ||
        bad_setting "DEPLOY_OWNER $(printf '%q' "$DEPLOY_OWNER") must be one line of printable ASCII without a tab or other control character (it goes into the host's release record and history)"
}

# check_config: the connection settings, before anything is written or run.
check_config() {
    require_env DEPLOY_HOST DEPLOY_USER SSH_KEY SSH_KNOWN_HOSTS
    # shellcheck disable=SC2153 # set by the caller; require_env checked it
    [[ $DEPLOY_HOST =~ ^[A-Za-z0-9.:_-]+$ ]] || bad_setting "DEPLOY_HOST '$DEPLOY_HOST' is not a host name or address"
    [[ $DEPLOY_USER =~ ^[A-Za-z0-9._][A-Za-z0-9._-]*$ ]] || bad_setting "DEPLOY_USER '$DEPLOY_USER' is not a user name"
    if [[ ! $DEPLOY_PORT =~ ^[0-9]+$ ]] || ((DEPLOY_PORT < 1 || DEPLOY_PORT > 65535)); then
        bad_setting "DEPLOY_PORT '$DEPLOY_PORT' is not a port"
    fi
    [[ $NAMESPACE =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || bad_setting "NAMESPACE '$NAMESPACE' is not a Kubernetes namespace name"
    [[ $DEPLOY_DIR =~ ^[A-Za-z0-9._/-]+$ && $DEPLOY_DIR != *..* ]] || bad_setting "DEPLOY_DIR '$DEPLOY_DIR' must be a plain path (letters, digits, . _ - /)"
    check_number VALIDATE_TIMEOUT VALIDATE_INTERVAL ROLLOUT_TIMEOUT KEEP_RELEASES
    [[ $VALIDATE_READY =~ ^[a-z0-9][a-z0-9-]*(\ [a-z0-9][a-z0-9-]*)*$ ]] ||
        bad_setting "VALIDATE_READY must list Deployment names separated by single spaces, not '$VALIDATE_READY'"
    check_owner
}

SSH_DIR=
cleanup_ssh() {
    [[ -z $SSH_DIR ]] || rm -rf "$SSH_DIR"
}

# setup_ssh: the key and the pinned host key in a private directory, and SSH_OPTS.
setup_ssh() {
    local host_entry
    SSH_DIR=$(umask 077 && mktemp -d)
    trap 'cleanup_ssh; rm -f "$APT_LOG"' EXIT
    (
        umask 077
        if [[ $SSH_KEY == *"-----BEGIN "* ]]; then
            printf '%s\n' "$SSH_KEY" | tr -d '\r' >"$SSH_DIR/key"
        elif [[ -f $SSH_KEY && -r $SSH_KEY ]]; then
            tr -d '\r' <"$SSH_KEY" >"$SSH_DIR/key"
        else
            bad_setting "SSH_KEY is neither a private key (content starting with -----BEGIN) nor a readable file"
        fi
        if [[ -f $SSH_KNOWN_HOSTS ]]; then
            tr -d '\r' <"$SSH_KNOWN_HOSTS" >"$SSH_DIR/known_hosts"
        else
            printf '%s\n' "$SSH_KNOWN_HOSTS" | tr -d '\r' >"$SSH_DIR/known_hosts"
        fi
    ) || exit 1
    grep -qE '^[^#]*[[:space:]](ssh-ed25519|ssh-rsa|ecdsa-sha2-[a-z0-9]+|sk-[a-z0-9@.-]+)[[:space:]]+[A-Za-z0-9+/=]+' "$SSH_DIR/known_hosts" ||
        bad_setting "SSH_KNOWN_HOSTS holds no host key line (known_hosts format: HOST KEYTYPE BASE64): get one with ssh-keyscan -p $DEPLOY_PORT $DEPLOY_HOST and check its fingerprint"
    if [[ $DEPLOY_PORT == 22 ]]; then host_entry=$DEPLOY_HOST; else host_entry="[$DEPLOY_HOST]:$DEPLOY_PORT"; fi
    ssh-keygen -F "$host_entry" -f "$SSH_DIR/known_hosts" >/dev/null 2>&1 ||
        bad_setting "SSH_KNOWN_HOSTS has no key for $host_entry: get it with ssh-keyscan -p $DEPLOY_PORT $DEPLOY_HOST and check its fingerprint"
    SSH_OPTS=(
        -F /dev/null -p "$DEPLOY_PORT" -i "$SSH_DIR/key"
        -o BatchMode=yes -o IdentitiesOnly=yes
        -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$SSH_DIR/known_hosts" -o GlobalKnownHostsFile=/dev/null
        -o ConnectTimeout=20 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o LogLevel=ERROR
    )
}

# remote_script ACTION [ARG]: the program the host runs: settings, release-host.sh,
# and the call; the release bundle and secrets travel inside it (over SSH, never on
# a command line).
remote_script() {
    local var
    printf 'set -euo pipefail\n'
    for var in NAMESPACE DEPLOY_DIR REMOTE_KUBECTL VALIDATE_TIMEOUT VALIDATE_INTERVAL VALIDATE_FRONTEND_URL VALIDATE_READY ROLLOUT_TIMEOUT KEEP_RELEASES DEPLOY_OWNER; do
        printf '%s=%q\n' "$var" "${!var}"
    done
    if [[ -n ${BUNDLE_FILE:-} ]]; then
        printf "BUNDLE_B64='"
        base64 -w 0 "$BUNDLE_FILE"
        printf "'\n"
    fi
    for var in CORALOGIX_PRIVATE_KEY LAB_CONTROL_TOKEN; do
        if [[ -n ${!var:-} ]]; then
            printf "%s_B64='%s'\n" "$var" "$(printf '%s' "${!var}" | base64 -w 0)"
        fi
    done
    cat "$SCRIPTS_DIR/release-host.sh"
    # One line, stdin closed: nothing the host runs can read the rest of this program.
    printf 'release_host_run'
    printf ' %q' "$@"
    printf ' </dev/null; exit $?\n'
}

# run_remote ACTION [ARG]: run release-host.sh ACTION on the host. Its log goes to
# stderr as it happens; its result lines (key=value) to $SSH_DIR/result. Returns its
# exit status, or 255 when ssh could not run it (connection, host key, login) or the
# connection dropped during a deploy or rollback (then results log names its host log).
run_remote() {
    local status=0
    remote_script "$@" | ssh "${SSH_OPTS[@]}" "$DEPLOY_USER@$DEPLOY_HOST" 'bash -s' >"$SSH_DIR/result" || status=$?
    if [[ $status -eq 255 && -n $(results log) ]]; then
        log "the connection to $DEPLOY_USER@$DEPLOY_HOST:$DEPLOY_PORT dropped while the $1 ran (ssh's message above); it carries on there by itself to the end (rolled back if it fails) and frees the lock: its log on the host is $(results log | tail -n 1); rollback.sh --list shows how it ended" >&2
    elif [[ $status -eq 255 ]]; then
        log "could not run on $DEPLOY_USER@$DEPLOY_HOST:$DEPLOY_PORT over SSH (ssh's message above: a host key that does not match SSH_KNOWN_HOSTS, an unreachable host or a refused login); nothing was run there" >&2
    fi
    return "$status"
}

# results KEY: the values of KEY from the host's result lines, one per line.
results() {
    sed -n "s/^$1=//p" "$SSH_DIR/result" 2>/dev/null || true
}

# summary_add LINE: a Markdown line for the job summary (DEPLOY_SUMMARY_FILE, or
# GITHUB_STEP_SUMMARY in GitHub Actions); nothing when neither is set.
summary_add() {
    local file=${DEPLOY_SUMMARY_FILE:-${GITHUB_STEP_SUMMARY:-}}
    [[ -z $file ]] || printf '%s\n' "$@" >>"$file"
}

# report_refused STATUS: what deploy and rollback both say when the host's lock is
# held (3) or SSH failed (255), in the log and the summary; 1 for any other status.
report_refused() {
    case $1 in
        3)
            log "refused: another deploy or rollback holds the lock: $(results locked | tail -n 1)"
            summary_add "**Refused**: another deploy or rollback holds the lock: $(results locked | tail -n 1)"
            ;;
        255)
            if [[ -n $(results log) ]]; then
                summary_add "**Connection lost** to \`$DEPLOY_HOST\` during the run: it carries on there by itself (rolled back if it fails); \`rollback.sh --list\` shows how it ended."
            else
                summary_add "**Not started**: SSH to \`$DEPLOY_HOST\` was refused (host key, connection or login); nothing ran there."
            fi
            ;;
        *) return 1 ;;
    esac
}

# summary_host_log: the summary's last line, where the host keeps this run's log.
summary_host_log() {
    local host_log
    host_log=$(results log | tail -n 1)
    [[ -z $host_log ]] || summary_add "" "The host's log of this run: \`$host_log\`."
}
