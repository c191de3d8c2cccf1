#!/usr/bin/env bash
# The host side of deploy.sh, rollback.sh and validate.sh. They send this file over SSH,
# preceded by their settings (and, for a deploy, the rendered manifests), to `bash -s`
# on the host. Needs only bash, coreutils, tar, base64, flock, setsid and kubectl there.
#
#   release_host_main deploy TAG     apply the bundled manifests of TAG, wait, validate;
#                                    on failure restore the release that ran before
#   release_host_main rollback [TAG] apply a kept release (default: the previous one)
#   release_host_main validate       check the running release
#   release_host_main status         print the release record and the kept releases
#
# deploy.sh and rollback.sh call release_host_run instead: it runs the deploy or
# rollback detached from the SSH session (setsid, its own session, stdin closed, its
# output in a log file) and streams that log back, so a dropped connection (a runner
# that loses its network, a cancelled job) does not stop it halfway: the run goes on
# to the end, automatic rollback included, records the outcome and frees the lock.
#
# On the host, DEPLOY_DIR/NAMESPACE/ (relative to the user's home) holds:
#   release        the record: current=TAG, previous=TAG, updated=, by=
#   history        one line per deploy or rollback: time, action, tag, outcome, by (tab-separated)
#   releases/TAG/  the manifests each release applied (the last KEEP_RELEASES, and always
#                  the current and previous ones): what a rollback applies again
#   lock           flock(1) lock held for a whole deploy or rollback; lock.owner says by whom
#   runs/ID.log    each deploy's or rollback's host log (the last 20 runs); ID.result its
#                  result lines, ID.status its exit status once it has ended
#
# Log lines go to stderr; result lines (key=value) to stdout for the calling script.
# Exit status: 0 done, 1 the release failed (restored when possible), 2 bad settings,
# 3 the lock is held, 4 the release failed and restoring the previous one failed too.

say() { printf 'host: %s\n' "$*" >&2; }
result() { printf '%s=%s\n' "$1" "$2"; }
fatal() {
    local status=$1
    shift
    say "$*"
    result error "$*"
    exit "$status"
}
now() { date +%s; }
stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }
k() { "${KUBECTL_CMD[@]}" "$@"; }

# ------------------------------------------------------------- the record --

# The record's fields are lines of key=value (release, lock.owner) and tab-separated
# (history): a release id is an image tag (deploy-lib.sh's TAG_PATTERN), the owner
# one line of printable ASCII without a tab, at most 200 characters. deploy-lib.sh
# checks both before sending; they are checked again here, where they are written.
valid_release_id() { [[ $1 =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; }
valid_owner() {
    local LC_ALL=C printable='^[ -~]{1,200}$'
    [[ $1 =~ $printable ]]
}

# check_settings ACTION [TAG]: before anything is written on the host.
check_settings() {
    valid_owner "${DEPLOY_OWNER:-}" ||
        fatal 2 "DEPLOY_OWNER $(printf '%q' "${DEPLOY_OWNER:-}" | cut -c 1-240) must be one line of printable ASCII without a tab, at most 200 characters"
    case $1 in
        deploy) valid_release_id "${2:-}" || fatal 2 "$(printf '%q' "${2:-}" | cut -c 1-240) is not a release id (an image tag)" ;;
        rollback) [[ -z ${2:-} ]] || valid_release_id "$2" || fatal 2 "$(printf '%q' "$2" | cut -c 1-240) is not a release id (an image tag)" ;;
    esac
}

record_get() {
    [[ -f $BASE/release ]] || return 0
    sed -n "s/^$1=//p" "$BASE/release" | tail -n 1
}

# check_record ID...: the ids read back from the record are release ids (a record
# written before they were checked, or by hand, could hold anything, a path included).
check_record() {
    local id
    for id in "$@"; do
        [[ -z $id ]] || valid_release_id "$id" ||
            fatal 1 "the release record $BASE/release holds $(printf '%q' "$id" | cut -c 1-240), which is not a release id: fix the record by hand"
    done
}

record_set() { # CURRENT PREVIOUS
    valid_release_id "$1" || fatal 1 "refusing to record $(printf '%q' "$1") as the current release: not a release id"
    [[ -z $2 ]] || valid_release_id "$2" || fatal 1 "refusing to record $(printf '%q' "$2") as the previous release: not a release id"
    valid_owner "$DEPLOY_OWNER" || fatal 1 "refusing to write DEPLOY_OWNER into the release record: not one line of printable ASCII"
    printf 'current=%s\nprevious=%s\nupdated=%s\nby=%s\n' "$1" "$2" "$(stamp)" "$DEPLOY_OWNER" >"$BASE/release.tmp"
    mv -f "$BASE/release.tmp" "$BASE/release"
}

history_add() { # ACTION TAG OUTCOME (and the run's log, when detached)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(stamp)" "$1" "$2" "$3" "$DEPLOY_OWNER" "${RUN:+$RUN.log}" >>"$BASE/history"
}

# Keep the newest KEEP_RELEASES manifest sets, and always the current and previous.
prune_releases() {
    local keep current previous tag
    current=$(record_get current)
    previous=$(record_get previous)
    keep=$KEEP_RELEASES
    while IFS= read -r tag; do
        if ((keep > 0)) || [[ $tag == "$current" || $tag == "$previous" ]]; then
            keep=$((keep - 1))
            continue
        fi
        rm -rf "${BASE:?}/releases/$tag"
        say "pruned the kept manifests of $tag"
    done < <(ls -1t "$BASE/releases") # image tags: no odd characters
}

take_lock() { # WHAT
    command -v flock >/dev/null 2>&1 || fatal 2 "flock (util-linux) is not installed on $(hostname)"
    exec 9>>"$BASE/lock"
    if ! flock -n 9; then
        local holder
        holder=$(cat "$BASE/lock.owner" 2>/dev/null) || true
        result locked "${holder:-unknown}"
        fatal 3 "another deploy or rollback holds the lock on $(hostname) ($BASE/lock): ${holder:-unknown holder}"
    fi
    printf '%s by %s, pid %s on %s, since %s%s\n' "$1" "$DEPLOY_OWNER" "$BASHPID" "$(hostname)" "$(stamp)" "${RUN:+, log $RUN.log}" >"$BASE/lock.owner"
    trap 'rm -f "$BASE/lock.owner" "$ERRORS"' EXIT
}

# ----------------------------------------------------------- the cluster --

# NAME GENERATION IMAGES per Deployment in the namespace.
snapshot() {
    k get deployments -n "$NAMESPACE" --no-headers \
        -o 'custom-columns=NAME:.metadata.name,GENERATION:.metadata.generation,IMAGES:.spec.template.spec.containers[*].image' ||
        return 1
}

# Deployment names in a directory of manifests (kompose: metadata.name at two spaces).
release_deployments() {
    awk 'function flush() { if (kind == "Deployment") print name; kind = ""; found = 0 }
         FNR == 1 { flush() }
         /^kind: Deployment$/ { kind = "Deployment" }
         /^  name: / && !found { name = $2; found = 1 }
         END { flush() }' "$1"/*.yaml | sort
}

apply_namespace() { # DIR: the Namespace object among DIR's manifests
    local namespace_files
    mapfile -t namespace_files < <(grep -l '^kind: Namespace$' "$1"/*.yaml || true)
    if ((${#namespace_files[@]})); then
        k apply -f "${namespace_files[0]}" >&2 || return 1
    fi
}

apply_dir() { # DIR
    # The Namespace first: kubectl applies a directory's files in name order.
    apply_namespace "$1" || return 1
    k apply -f "$1" >&2
}

apply_secrets() {
    local var name key value
    for var in CORALOGIX_PRIVATE_KEY LAB_CONTROL_TOKEN; do
        value=${var}_B64
        [[ -n ${!value:-} ]] || continue
        case $var in
            CORALOGIX_PRIVATE_KEY) name=coralogix key=private-key ;;
            LAB_CONTROL_TOKEN) name=lab-control key=token ;;
        esac
        printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\ntype: Opaque\ndata:\n  %s: %s\n' \
            "$name" "$NAMESPACE" "$key" "${!value}" | k apply -f - >&2 ||
            { FAILURES+=("the Secret $name could not be applied"); return 1; }
        say "Secret $name updated from $var"
    done
}

# wait_rollouts NAME...: every rollout in parallel, ROLLOUT_TIMEOUT each.
wait_rollouts() {
    local name pids=() names=() i status=0 logs
    logs=$(mktemp -d)
    for name in "$@"; do
        k rollout status "deployment/$name" -n "$NAMESPACE" --timeout="${ROLLOUT_TIMEOUT}s" >"$logs/$name" 2>&1 &
        pids+=($!)
        names+=("$name")
    done
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then
            # kubectl says why: its timeout, or the Deployment's progress deadline.
            FAILURES+=("rollout of deployment/${names[$i]} did not finish (ROLLOUT_TIMEOUT ${ROLLOUT_TIMEOUT}s): $(tail -n 1 "$logs/${names[$i]}" | cut -c 1-300)")
            status=1
        fi
    done
    rm -rf "$logs"
    return "$status"
}

# shellcheck disable=SC2089 # a JavaScript program, passed as one argument
readonly PROBE_JS='const [m, u, b] = process.argv.slice(1); fetch(u, { method: m, body: b, headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(15000) }).then((r) => { console.log(r.status); }, (e) => { console.error("probe: " + u + ": " + e.message); process.exit(1); });'

# The last line a command wrote to $ERRORS (kubectl's errors can run to many lines).
# Cut at 300 characters: an error can quote a whole request (an exec's URL, say).
last_error() { grep -v '^[[:space:]]*$' "$ERRORS" 2>/dev/null | tail -n 1 | cut -c 1-300 || true; }

# One round of checks; the problems found go to PROBLEMS.
check_once() {
    local name replicas updated available port status out
    PROBLEMS=()
    out=$(k get deployments -n "$NAMESPACE" --no-headers \
        -o 'custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas,UPDATED:.status.updatedReplicas,AVAILABLE:.status.availableReplicas,PORT:.spec.template.spec.containers[0].ports[0].containerPort' 2>"$ERRORS") ||
        { PROBLEMS+=("kubectl get deployments failed: $(last_error)"); return; }
    [[ -n $out ]] || { PROBLEMS+=("no Deployment in namespace $NAMESPACE"); return; }
    local -A ports=()
    while read -r name replicas updated available port; do
        [[ -n $name ]] || continue
        ports[$name]=$port
        if [[ $updated != "$replicas" || $available != "$replicas" ]]; then
            PROBLEMS+=("deployment/$name: $available of $replicas replicas available, $updated up to date")
        fi
    done <<<"$out"
    # /ready of each Deployment in VALIDATE_READY (its dependencies are reachable), asked
    # inside its pod on its container port by the image's node with PROBE_JS: no path
    # into the image, so a release built before its files moved validates too. The
    # readiness probes ask only /health (a pod whose dependency is slow stays in its
    # Service), so this list is explicit: a name missing from the namespace fails.
    # All at once (each exec takes a second or so), then the answers in list order.
    local asked
    asked=$(mktemp -d)
    for name in $VALIDATE_READY; do
        port=${ports[$name]:-}
        if [[ -z $port ]]; then
            printf 'deployment/%s (VALIDATE_READY) is not in namespace %s\n' "$name" "$NAMESPACE" >"$asked/$name"
        elif [[ ! $port =~ ^[0-9]+$ ]]; then
            printf 'deployment/%s has no container port to ask /ready on\n' "$name" >"$asked/$name"
        else
            (
                if ! status=$(k exec -n "$NAMESPACE" "deploy/$name" -- node -e "$PROBE_JS" GET "http://localhost:$port/ready" 2>"$asked/$name.err"); then
                    printf 'deployment/%s: http://localhost:%s/ready did not answer 2xx%s\n' "$name" "$port" \
                        "$(ERRORS=$asked/$name.err last_error | sed 's/^./ (&/; s/.$/&)/')" >"$asked/$name"
                elif [[ ! $status =~ ^2[0-9][0-9]$ ]]; then
                    printf 'deployment/%s: http://localhost:%s/ready did not answer 2xx (it answered %s)\n' "$name" "$port" "${status:-nothing}" >"$asked/$name"
                fi
            ) &
        fi
    done
    wait
    for name in $VALIDATE_READY; do
        [[ ! -s $asked/$name ]] || PROBLEMS+=("$(<"$asked/$name")")
    done
    rm -rf "$asked"
    for name in browse checkout; do
        local body='{"user_id":"deploy-validate","category":"books"}'
        [[ $name == checkout ]] && body="{\"user_id\":\"deploy-validate\",\"cart_id\":\"deploy-validate-$(now)\"}"
        if ! status=$(k exec -n "$NAMESPACE" deploy/frontend -- node -e "$PROBE_JS" POST "$FRONTEND_URL/api/$name" "$body" 2>"$ERRORS"); then
            PROBLEMS+=("POST $FRONTEND_URL/api/$name through the frontend did not answer: $(last_error)")
        elif [[ $status != 200 ]]; then
            PROBLEMS+=("POST $FRONTEND_URL/api/$name through the frontend answered ${status:-nothing}, not 200")
        fi
    done
}

# validate_release: every check passes within VALIDATE_TIMEOUT, or FAILURES says why.
validate_release() {
    local deadline attempt=0
    deadline=$(($(now) + VALIDATE_TIMEOUT))
    for (( ; ; )); do
        attempt=$((attempt + 1))
        check_once
        if ((${#PROBLEMS[@]} == 0)); then
            say "validated: every Deployment available, /ready answering on $(wc -w <<<"$VALIDATE_READY") of them, browse and checkout through the frontend 200 (attempt $attempt)"
            return 0
        fi
        if (($(now) + VALIDATE_INTERVAL > deadline)); then
            local joined
            joined=$(printf '%s; ' "${PROBLEMS[@]}")
            FAILURES+=("validation failed after ${VALIDATE_TIMEOUT}s: ${joined%; }")
            local p
            for p in "${PROBLEMS[@]}"; do say "  not valid: $p"; done
            return 1
        fi
        say "not valid yet (attempt $attempt, ${#PROBLEMS[@]} problems, first: ${PROBLEMS[0]}); again in ${VALIDATE_INTERVAL}s"
        sleep "$VALIDATE_INTERVAL"
    done
}

# changed_deployments BEFORE AFTER: names whose generation or images differ, or new.
changed_deployments() {
    awk 'NR == FNR { before[$1] = $2 " " $3; next } !($1 in before) || before[$1] != $2 " " $3 { print $1 }' \
        <(printf '%s\n' "$1") <(printf '%s\n' "$2") | sort
}

# restore TAG BEFORE CHANGED...: apply the kept release TAG again, remove what the
# failed release added, wait, and check that every changed Deployment is back on
# the images it had before.
restore() {
    local tag=$1 before=$2 name after images wanted added
    shift 2
    local changed=("$@") ok=1
    [[ -d $BASE/releases/$tag ]] || { FAILURES+=("the manifests of $tag are not kept on this host: nothing to restore from"); return 1; }
    say "restoring $tag (the release that ran before)"
    apply_dir "$BASE/releases/$tag" || { FAILURES+=("kubectl apply of $tag (restore) failed"); return 1; }
    mapfile -t added < <(comm -13 <(release_deployments "$BASE/releases/$tag") <(printf '%s\n' "${changed[@]}" | sort))
    for name in "${added[@]}"; do
        [[ -n $name ]] || continue
        k delete deployment "$name" -n "$NAMESPACE" --ignore-not-found >&2 || ok=0
        say "deployment/$name was added by the failed release: deleted"
    done
    local restored=()
    mapfile -t restored < <(comm -12 <(release_deployments "$BASE/releases/$tag") <(printf '%s\n' "${changed[@]}" | sort))
    if ((${#restored[@]})) && ! wait_rollouts "${restored[@]}"; then ok=0; fi
    after=$(snapshot) || { FAILURES+=("kubectl get deployments failed after the restore"); return 1; }
    for name in "${restored[@]}"; do
        wanted=$(awk -v n="$name" '$1 == n { print $3 }' <<<"$before")
        images=$(awk -v n="$name" '$1 == n { print $3 }' <<<"$after")
        if [[ $images == "$wanted" ]]; then
            result restored "$name $images"
        else
            FAILURES+=("deployment/$name runs $images after the restore, not $wanted")
            ok=0
        fi
    done
    ((ok))
}

# ---------------------------------------------------------------- actions --

unpack_bundle() { # TAG
    local dir=$BASE/releases/$1
    [[ -n ${BUNDLE_B64:-} ]] || fatal 2 "no manifests were sent"
    rm -rf "$dir.new"
    mkdir -p "$dir.new"
    base64 -d <<<"$BUNDLE_B64" | tar -xzf - -C "$dir.new" || fatal 2 "the manifests sent could not be unpacked"
    rm -rf "$dir"
    mv "$dir.new" "$dir"
}

do_deploy() {
    local tag=$1 current previous before after changed=() names=()
    take_lock "deploy of $tag"
    current=$(record_get current)
    previous=$(record_get previous)
    check_record "$current" "$previous"
    result tag "$tag"
    result previous "$current"
    say "deploying $tag to namespace $NAMESPACE (running now: ${current:-nothing recorded})"
    unpack_bundle "$tag"
    FAILURES=()
    before=$(snapshot) || fatal 1 "kubectl get deployments failed: cannot tell what runs now"
    # The Namespace, then the Secrets (before the Deployments that read them), then the rest.
    if apply_namespace "$BASE/releases/$tag" && apply_secrets && apply_dir "$BASE/releases/$tag"; then
        after=$(snapshot) || fatal 1 "kubectl get deployments failed after the apply"
        mapfile -t changed < <(changed_deployments "$before" "$after")
        result changed "${changed[*]}"
        say "changed: ${changed[*]:-no Deployment}"
        mapfile -t names < <(awk '{ print $1 }' <<<"$after")
        if wait_rollouts "${names[@]}"; then
            validate_release || true
        fi
    else
        ((${#FAILURES[@]})) || FAILURES+=("kubectl apply of $tag failed")
        after=$(snapshot) || after=$before
        mapfile -t changed < <(changed_deployments "$before" "$after")
        result changed "${changed[*]}"
    fi
    if ((${#FAILURES[@]} == 0)); then
        if [[ $tag == "$current" ]]; then record_set "$tag" "$previous"; else record_set "$tag" "$current"; fi
        history_add deploy "$tag" deployed
        prune_releases
        result outcome deployed
        say "deployed $tag; the release record: current=$tag previous=$(record_get previous)"
        return 0
    fi
    local f
    for f in "${FAILURES[@]}"; do result failure "$f"; say "FAILED: $f"; done
    if [[ -z $current ]]; then
        history_add deploy "$tag" "failed, nothing to roll back to"
        result outcome failed-first-release
        say "this was the first release: there is no previous release to roll back to"
        return 1
    fi
    FAILURES=()
    if restore "$current" "$before" "${changed[@]}" && validate_release; then
        history_add deploy "$tag" "failed, rolled back to $current"
        result outcome rolled-back
        say "rolled back to $current: every Deployment the release changed runs its previous images again"
        return 1
    fi
    for f in "${FAILURES[@]}"; do result restore-failure "$f"; say "RESTORE FAILED: $f"; done
    history_add deploy "$tag" "failed, restoring $current failed"
    result outcome rollback-failed
    return 4
}

do_rollback() {
    local tag=${1:-} current previous before after changed=() names=() target added=() name
    take_lock "rollback to ${tag:-the previous release}"
    current=$(record_get current)
    previous=$(record_get previous)
    check_record "$current" "$previous"
    target=${tag:-$previous}
    [[ -n $target ]] || fatal 1 "nothing to roll back to: no previous release is recorded in $BASE/release (current: ${current:-none})"
    # shellcheck disable=SC2012 # release directories are image tags: no odd characters
    [[ -d $BASE/releases/$target ]] ||
        fatal 1 "release $target is not kept on this host; kept: $(ls -1t "$BASE/releases" 2>/dev/null | paste -sd ' ')"
    result tag "$target"
    result previous "$current"
    say "rolling back to $target (running now: ${current:-nothing recorded})"
    FAILURES=()
    before=$(snapshot) || fatal 1 "kubectl get deployments failed: cannot tell what runs now"
    if apply_dir "$BASE/releases/$target"; then
        after=$(snapshot) || fatal 1 "kubectl get deployments failed after the apply"
        # Deployments the target release does not have go away.
        mapfile -t added < <(comm -23 <(awk '{ print $1 }' <<<"$after" | sort) <(release_deployments "$BASE/releases/$target"))
        for name in "${added[@]}"; do
            [[ -n $name ]] || continue
            k delete deployment "$name" -n "$NAMESPACE" --ignore-not-found >&2 || FAILURES+=("deleting deployment/$name failed")
        done
        mapfile -t changed < <(changed_deployments "$before" "$after")
        result changed "${changed[*]}"
        mapfile -t names < <(release_deployments "$BASE/releases/$target")
        if wait_rollouts "${names[@]}"; then validate_release || true; fi
    else
        FAILURES+=("kubectl apply of $target failed")
    fi
    if [[ $target != "$current" ]]; then record_set "$target" "$current"; fi
    if ((${#FAILURES[@]} == 0)); then
        history_add rollback "$target" "rolled back from ${current:-nothing}"
        result outcome rolled-back
        say "rolled back to $target; the release record: current=$target previous=$(record_get previous)"
        return 0
    fi
    local f
    for f in "${FAILURES[@]}"; do result failure "$f"; say "FAILED: $f"; done
    history_add rollback "$target" "applied, but failed"
    result outcome rollback-failed
    return 1
}

do_validate() {
    FAILURES=()
    result tag "$(record_get current)"
    if validate_release; then
        result outcome valid
        return 0
    fi
    local f
    for f in "${FAILURES[@]}"; do result failure "$f"; done
    result outcome invalid
    return 1
}

do_status() {
    printf 'release record (%s):\n' "$BASE/release"
    sed 's/^/  /' "$BASE/release" 2>/dev/null || printf '  (none yet)\n'
    printf 'kept releases, newest first:\n'
    # shellcheck disable=SC2012 # release directories are image tags: no odd characters
    ls -1t "$BASE/releases" 2>/dev/null | sed 's/^/  /'
    printf 'history (last 10):\n'
    tail -n 10 "$BASE/history" 2>/dev/null | sed 's/^/  /'
    printf 'host logs of the last runs, newest first (exit status, or still running):\n'
    local log
    # shellcheck disable=SC2012 # run ids: no odd characters
    { ls -1t "$BASE/runs"/*.log 2>/dev/null || true; } | head -n 5 | while IFS= read -r log; do
        printf '  %s  %s\n' "$log" "$(cat "${log%.log}.status" 2>/dev/null || printf 'running, or ended without a status')"
    done
}

release_host_main() {
    local action=${1:-} tag=${2:-}
    FRONTEND_URL=${VALIDATE_FRONTEND_URL:-http://frontend:8018}
    VALIDATE_READY=${VALIDATE_READY:-recommendation currency cart product-catalog shipping checkout payment frontend ad load-generator}
    [[ $VALIDATE_READY =~ ^[a-z0-9\ -]+$ ]] || fatal 2 "VALIDATE_READY must list Deployment names separated by spaces, not '$VALIDATE_READY'"
    read -ra KUBECTL_CMD <<<"${REMOTE_KUBECTL:-kubectl}"
    command -v "${KUBECTL_CMD[0]}" >/dev/null 2>&1 ||
        fatal 2 "${KUBECTL_CMD[0]} is not on PATH on $(hostname) (REMOTE_KUBECTL='${REMOTE_KUBECTL:-kubectl}')"
    ERRORS=$(mktemp)
    trap 'rm -f "$ERRORS"' EXIT
    check_settings "$action" "$tag"
    cd ~ || fatal 2 "cannot enter the home directory of $(id -un)"
    BASE=${DEPLOY_DIR:?}/${NAMESPACE:?}
    mkdir -p "$BASE/releases"
    case $action in
        deploy) do_deploy "$tag" ;;
        rollback) do_rollback "$tag" ;;
        validate) do_validate ;;
        status) do_status ;;
        *) fatal 2 "unknown action '$action'" ;;
    esac
}

# ------------------------------------------------- detached from the session --

# release_host_run ACTION [TAG]: deploy and rollback run detached (see the top of this
# file); validate and status run here, in the session.
release_host_run() {
    local action=${1:-} base runs run pid status i
    case $action in
        deploy | rollback) ;;
        *) release_host_main "$@"; return ;;
    esac
    check_settings "$@"
    command -v setsid >/dev/null 2>&1 || fatal 2 "setsid (util-linux) is not installed on $(hostname)"
    cd ~ || fatal 2 "cannot enter the home directory of $(id -un)"
    base=${DEPLOY_DIR:?}/${NAMESPACE:?}
    [[ $base == /* ]] || base=$PWD/$base
    runs=$base/runs
    mkdir -p "$runs"
    # The newest 20 runs are kept (the one that holds the lock, if any, among them).
    # shellcheck disable=SC2012 # run ids: no odd characters
    { ls -1t "$runs"/*.log 2>/dev/null || true; } | tail -n +20 | while IFS= read -r pid; do
        rm -f "${pid%.log}".log "${pid%.log}".result "${pid%.log}".status "${pid%.log}".pid
    done
    run=$runs/$(date -u +%Y%m%dT%H%M%SZ)-$action-$$
    : >"$run.log"
    say "this $action runs on $(hostname) detached from this connection; its log: $run.log"
    result log "$run.log"
    # The settings, the secrets and the functions go to the detached bash through a
    # pipe: never on a command line, never in a file.
    {
        printf 'set -euo pipefail\n'
        # shellcheck disable=SC2090 # declare -p quotes PROBE_JS itself
        declare -p NAMESPACE DEPLOY_DIR REMOTE_KUBECTL VALIDATE_TIMEOUT VALIDATE_INTERVAL VALIDATE_FRONTEND_URL VALIDATE_READY \
            ROLLOUT_TIMEOUT KEEP_RELEASES DEPLOY_OWNER PROBE_JS
        local var
        for var in BUNDLE_B64 CORALOGIX_PRIVATE_KEY_B64 LAB_CONTROL_TOKEN_B64; do
            [[ -z ${!var+set} ]] || declare -p "$var"
        done
        declare -f
        printf 'RUN=%q\n' "$run"
        printf 'release_host_detached'
        printf ' %q' "$@"
        printf '\n'
    } | setsid bash -s >>"$run.log" 2>&1 &
    # Its pid, once it has started; then its log until it ends.
    for ((i = 0; i < 300; i++)); do
        [[ -s $run.pid || -e $run.status ]] && break
        sleep 0.1
    done
    pid=$(cat "$run.pid" 2>/dev/null) || fatal 1 "the detached $action did not start on $(hostname): see $run.log"
    tail -n +1 -s 0.2 -f --pid="$pid" "$run.log" >&2 || true
    status=$(cat "$run.status" 2>/dev/null) ||
        fatal 1 "the $action on $(hostname) ended without an exit status (killed?): see $run.log"
    cat "$run.result" 2>/dev/null || true
    return "$status"
}

# release_host_detached ACTION [TAG]: the detached run (its own session, output to
# RUN.log): release_host_main, then its exit status in RUN.status.
release_host_detached() {
    local status=0
    printf '%s\n' "$$" >"$RUN.pid"
    (release_host_main "$@") </dev/null >"$RUN.result" 2>>"$RUN.log" &
    wait "$!" || status=$?
    printf '%s\n' "$status" >"$RUN.status.tmp"
    mv -f "$RUN.status.tmp" "$RUN.status"
}
