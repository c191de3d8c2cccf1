#!/usr/bin/env bash
# Validate the release running on the k3s host, over SSH (deploy.sh and rollback.sh run
# the same checks on the host after every change):
#
#   bash scripts/validate.sh
#
# Within VALIDATE_TIMEOUT seconds (default 180, retried every VALIDATE_INTERVAL):
#   - every Deployment in NAMESPACE has all its replicas up to date and available
#   - /ready (its dependencies are reachable) answers 2xx in the pod of every Deployment
#     in VALIDATE_READY (default: the ten services), asked there with kubectl exec and
#     the image's healthcheck.js on the container's port; a listed one that is missing
#     fails (the readiness probes ask only /health: see compose.yaml)
#   - POST /api/browse and POST /api/checkout through the frontend Service
#     (VALIDATE_FRONTEND_URL, default http://frontend:8018) answer 200, sent from the frontend's pod
#
# Exit status: 0 valid, 1 not valid (each problem printed), 2 bad settings, 255 SSH refused.
set -euo pipefail
SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_PREFIX=validate
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$SCRIPTS_DIR/lib.sh"
# shellcheck source=deploy-lib.sh source-path=SCRIPTDIR
source "$SCRIPTS_DIR/deploy-lib.sh"

usage() {
    sed -n '2,16s/^# \{0,1\}//p' "$SCRIPTS_DIR/validate.sh"
    printf '\n%s\n' "$CONNECTION_HELP"
}
case ${1:-} in
    -h | --help) usage; exit 0 ;;
    '') ;;
    *) bad_setting "unknown argument: $1 (configuration comes from the environment; see --help)" ;;
esac
check_config
setup_ssh

status=0
run_remote validate || status=$?
case $status in
    0) log "valid: $NAMESPACE on $DEPLOY_HOST (release: $(results tag | tail -n 1))" ;;
    255) ;;
    *)
        log "NOT valid: $NAMESPACE on $DEPLOY_HOST"
        while IFS= read -r f; do log "  $f"; done < <(results failure)
        ;;
esac
exit "$status"
