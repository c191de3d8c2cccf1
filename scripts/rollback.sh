#!/usr/bin/env bash
# Roll the lab on the k3s host back to a release kept there, then validate it.
# The rollback workflow runs it; a person can too:
#
#   bash scripts/rollback.sh [TAG]     TAG (or ROLLBACK_TAG): a release deployed before;
#                                      none: the previous release in the host's record
#   bash scripts/rollback.sh --list    print the release record and the kept releases
#
# Takes the host's deploy lock (refused while a deploy or another rollback runs),
# applies the manifests kept for TAG (DEPLOY_DIR/NAMESPACE/releases/TAG/), deletes the
# Deployments TAG does not have, waits for every rollout (ROLLOUT_TIMEOUT), validates
# (VALIDATE_TIMEOUT), and records TAG as the current release and the one it replaced as
# the previous one (so a second rollback without a tag goes forward again). It runs on
# the host detached from the SSH session (log: DEPLOY_DIR/NAMESPACE/runs/<id>.log,
# streamed here), so a dropped connection does not stop it halfway.
#
# Exit status: 0 rolled back and valid, 1 failed (nothing to roll back to, TAG not kept,
# a rollout or the validation failed), 2 bad settings, 3 the lock is held, 255 SSH refused
# (or the connection dropped during the rollback, which carries on on the host).
# DEPLOY_SUMMARY_FILE (default $GITHUB_STEP_SUMMARY): a Markdown summary is appended.
set -euo pipefail
SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_PREFIX=rollback
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$SCRIPTS_DIR/lib.sh"
# shellcheck source=deploy-lib.sh source-path=SCRIPTDIR
source "$SCRIPTS_DIR/deploy-lib.sh"

usage() {
    sed -n '2,22s/^# \{0,1\}//p' "$SCRIPTS_DIR/rollback.sh"
    printf '\n%s\n' "$CONNECTION_HELP"
}
action=rollback
tag=${ROLLBACK_TAG:-}
case ${1:-} in
    -h | --help) usage; exit 0 ;;
    --list) action=status ;;
    '') ;;
    -*) bad_setting "unknown option: $1 (see --help)" ;;
    *) tag=$1 ;;
esac
[[ $# -le 1 ]] || bad_setting "one TAG at most (see --help)"
check_config
[[ -z $tag ]] || check_tag TAG "$tag"
setup_ssh

if [[ $action == status ]]; then
    run_remote status
    cat "$SSH_DIR/result"
    exit 0
fi

log "rolling back $NAMESPACE on $DEPLOY_USER@$DEPLOY_HOST:$DEPLOY_PORT to ${tag:-the previous release}"
status=0
run_remote rollback "$tag" || status=$?
target=$(results tag | tail -n 1)
previous=$(results previous | tail -n 1)
outcome=$(results outcome | tail -n 1)
mapfile -t failures < <(results failure)

summary_add "### Rollback of \`$NAMESPACE\` on \`$DEPLOY_HOST\` to \`${tag:-the previous release}\`" ""
case $status:$outcome in
    0:rolled-back)
        log "rolled back to $target (was: ${previous:-nothing recorded}); validation passed"
        summary_add "**Rolled back** to \`$target\` (was \`${previous:-none}\`); validation passed."
        ;;
    *:rollback-failed)
        log "FAILED: $target was applied but did not become valid:"
        for f in "${failures[@]}"; do log "  $f"; done
        summary_add "**Failed**: \`$target\` was applied but did not become valid:"
        for f in "${failures[@]}"; do summary_add "- $f"; done
        ;;
    3:* | 255:*)
        report_refused "$status"
        ;;
    *)
        log "failed (exit $status): $(results error | tail -n 1)"
        summary_add "**Failed** (exit $status): $(results error | tail -n 1)"
        ;;
esac
summary_host_log
exit "$status"
