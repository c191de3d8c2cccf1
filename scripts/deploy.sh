#!/usr/bin/env bash
# Deploy one release (IMAGE_TAG) of the lab to the k3s host over SSH, with automatic
# rollback. The deploy workflow runs it; a person can too:
#
#   DEPLOY_HOST=... DEPLOY_USER=... SSH_KEY=~/.ssh/lab SSH_KNOWN_HOSTS=known_hosts \
#   IMAGE_TAG=3f2c1d0... bash scripts/deploy.sh
#
# 1. renders k8s/generated/ for the release: __REGISTRY__ -> REGISTRY, __IMAGE_TAG__ -> IMAGE_TAG,
#    and the collector's Coralogix switch (below)
# 2. connects with the host key pinned, takes the host's deploy lock (a second deploy or
#    a rollback meanwhile is refused, naming who holds it), copies the manifests there
#    (DEPLOY_DIR/NAMESPACE/releases/TAG/) and applies them (the Namespace first), and
#    the Secrets coralogix / lab-control when CORALOGIX_PRIVATE_KEY / LAB_CONTROL_TOKEN are set
# 3. waits for every Deployment's rollout (ROLLOUT_TIMEOUT each, in parallel), then
#    validates (scripts/validate.sh: every Deployment available, /ready answering in VALIDATE_READY,
#    a browse and a checkout through the frontend answering 200, within VALIDATE_TIMEOUT)
# 4. success: records the release on the host (DEPLOY_DIR/NAMESPACE/release:
#    current=IMAGE_TAG, previous=the release it replaced) and exits 0
#    failure: applies the release that ran before again, waits for those rollouts,
#    checks that every Deployment this release changed is back on its previous images,
#    validates, and exits 1 with what failed and what was restored (4 when the restore
#    failed too). A first deploy has nothing to roll back to, and says so.
# Steps 2-4 run on the host detached from the SSH session, logged to
# DEPLOY_DIR/NAMESPACE/runs/<id>.log (streamed here): when the connection drops, the
# deploy still ends there, rolled back if it failed, and frees the lock; rollback.sh
# --list shows how it ended and its log.
#
# Release:
#   IMAGE_TAG          the tag of every service image, e.g. the commit SHA (required)
#   REGISTRY           image prefix (default ghcr.io/black-friday-lab): REGISTRY/<service>:IMAGE_TAG
#   ROLLOUT_TIMEOUT    seconds each rollout may take (default 300)
#   PROGRESS_DEADLINE_SECONDS  each Deployment's progressDeadlineSeconds (default 600, as
#                      Kubernetes'): a rollout that makes no progress that long (an image
#                      that cannot be pulled, pods that never become ready) fails sooner
#   KEEP_RELEASES      manifest sets kept on the host for rollbacks (default 10)
#   LAB_CONTROL_TOKEN  when set, stored as the Secret lab-control (the load generator's token)
#   DEPLOY_SUMMARY_FILE  a Markdown summary is appended here (default $GITHUB_STEP_SUMMARY)
#
# Coralogix (the collector also exports traces, metrics and logs there) is on for a
# release deployed with CORALOGIX_PRIVATE_KEY set, and off for one deployed without:
#   CORALOGIX_PRIVATE_KEY       the Send-Your-Data API key: stored as the Secret coralogix,
#                               never in a manifest; the collector merges coralogix.yaml
#   CORALOGIX_DOMAIN            e.g. eu2.coralogix.com (required with the key)
#   CORALOGIX_APPLICATION_NAME  default black-friday-lab
#   CORALOGIX_SUBSYSTEM_NAME    default lab: the subsystem of data without a service.name
#                               (every service is its own subsystem, its service.name)
# Without the key the collector merges none.yaml (the Secret, if any, is left alone).
#
# Exit status: 0 deployed, 1 failed (rolled back when there was a release to go back
# to), 2 bad settings, 3 the host's lock is held, 4 failed and the restore failed too,
# 255 SSH refused (e.g. the host key does not match SSH_KNOWN_HOSTS), or the connection
# dropped during the deploy (which carries on on the host: see its log).
set -euo pipefail
SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$SCRIPTS_DIR")
LOG_PREFIX=deploy
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$SCRIPTS_DIR/lib.sh"
# shellcheck source=deploy-lib.sh source-path=SCRIPTDIR
source "$SCRIPTS_DIR/deploy-lib.sh"

usage() {
    sed -n '2,52s/^# \{0,1\}//p' "$SCRIPTS_DIR/deploy.sh"
    printf '\n%s\n' "$CONNECTION_HELP"
}
case ${1:-} in
    -h | --help) usage; exit 0 ;;
    '') ;;
    *) bad_setting "unknown argument: $1 (configuration comes from the environment; see --help)" ;;
esac

: "${REGISTRY:=ghcr.io/black-friday-lab}"
require_env IMAGE_TAG
check_config
check_tag IMAGE_TAG "$IMAGE_TAG"
# The manifests pull IfNotPresent: a tag that moves would never be pulled again on a
# node that has it. Releases are immutable tags (the commit SHA).
case $IMAGE_TAG in
    dev | latest) bad_setting "IMAGE_TAG '$IMAGE_TAG' is a tag that moves: the cluster pulls an image it already has never again (imagePullPolicy IfNotPresent), so deploy an immutable tag (e.g. the commit SHA)" ;;
esac
: "${PROGRESS_DEADLINE_SECONDS:=600}"
check_number PROGRESS_DEADLINE_SECONDS
[[ $REGISTRY =~ ^[a-z0-9][a-z0-9.:_/-]*[a-z0-9]$ ]] ||
    bad_setting "REGISTRY '$REGISTRY' is not a lowercase registry path (e.g. ghcr.io/owner)"
# Coralogix: the collector's second --config and its non-secret settings.
CORALOGIX_APPLICATION_NAME=${CORALOGIX_APPLICATION_NAME:-black-friday-lab}
CORALOGIX_SUBSYSTEM_NAME=${CORALOGIX_SUBSYSTEM_NAME:-lab}
if [[ -n ${CORALOGIX_PRIVATE_KEY:-} ]]; then
    [[ -n ${CORALOGIX_DOMAIN:-} ]] ||
        bad_setting "CORALOGIX_DOMAIN is not set: it is required with CORALOGIX_PRIVATE_KEY (your account's Coralogix domain, e.g. eu2.coralogix.com)"
    otelcol_extra_config=/etc/otelcol/coralogix.yaml
else
    otelcol_extra_config=/etc/otelcol/none.yaml
    [[ -z ${CORALOGIX_DOMAIN:-} ]] ||
        log "CORALOGIX_DOMAIN is set but CORALOGIX_PRIVATE_KEY is not: Coralogix stays off for this release"
fi
[[ -z ${CORALOGIX_DOMAIN:-} || $CORALOGIX_DOMAIN =~ ^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$ ]] ||
    bad_setting "CORALOGIX_DOMAIN '$CORALOGIX_DOMAIN' is not a domain name (e.g. eu2.coralogix.com, without https://)"
for var in CORALOGIX_APPLICATION_NAME CORALOGIX_SUBSYSTEM_NAME; do
    [[ ${!var} =~ ^[A-Za-z0-9][A-Za-z0-9\ ._/-]{0,99}$ ]] ||
        bad_setting "$var '${!var}' may hold letters, digits, spaces and . _ / - (at most 100)"
done
MANIFESTS=${MANIFESTS_DIR:-$ROOT/k8s/generated}
compgen -G "$MANIFESTS/*.yaml" >/dev/null || die "no manifests in $MANIFESTS (npm run k8s:generate)"

setup_ssh

# Render the release: the placeholders k8s-generate.sh left, and the namespace.
render="$SSH_DIR/render"
mkdir "$render"
for file in "$MANIFESTS"/*.yaml; do
    # The values were checked above: none holds | & \ or a double quote.
    sed -e "s|__REGISTRY__|$REGISTRY|g" -e "s|__IMAGE_TAG__|$IMAGE_TAG|g" \
        -e "s|__OTELCOL_EXTRA_CONFIG__|$otelcol_extra_config|g" \
        -e "s|__PROGRESS_DEADLINE_SECONDS__|$PROGRESS_DEADLINE_SECONDS|g" \
        -e "s|__CORALOGIX_DOMAIN__|\"${CORALOGIX_DOMAIN:-}\"|g" \
        -e "s|__CORALOGIX_APPLICATION_NAME__|\"$CORALOGIX_APPLICATION_NAME\"|g" \
        -e "s|__CORALOGIX_SUBSYSTEM_NAME__|\"$CORALOGIX_SUBSYSTEM_NAME\"|g" \
        -e "s|^\(  *\)namespace: black-friday-lab$|\1namespace: $NAMESPACE|" \
        "$file" >"$render/${file##*/}"
done
# The Namespace object itself.
for file in $(grep -l '^kind: Namespace$' "$render"/*.yaml || true); do
    sed -i "s|^  name: black-friday-lab$|  name: $NAMESPACE|" "$file"
done
if grep -l '__[A-Z_]*__' "$render"/*.yaml >&2; then die "placeholders left in the manifests above"; fi
# Secrets travel as Secrets only (e.g. a key pasted into CORALOGIX_APPLICATION_NAME
# would otherwise end up in the manifests; values too short to tell are not checked).
for var in CORALOGIX_PRIVATE_KEY LAB_CONTROL_TOKEN; do
    value=${!var:-}
    if [[ ${#value} -ge 8 ]] && grep -rqF -- "$value" "$render"; then
        die "the rendered manifests contain the value of $var: refusing to send them"
    fi
done
BUNDLE_FILE="$SSH_DIR/bundle.tgz"
tar -czf "$BUNDLE_FILE" -C "$render" .

log "deploying $IMAGE_TAG ($REGISTRY/<service>:$IMAGE_TAG) to $NAMESPACE on $DEPLOY_USER@$DEPLOY_HOST:$DEPLOY_PORT"
if [[ -n ${CORALOGIX_PRIVATE_KEY:-} ]]; then
    log "Coralogix on: $CORALOGIX_DOMAIN, application $CORALOGIX_APPLICATION_NAME, subsystem $CORALOGIX_SUBSYSTEM_NAME (the key goes to the Secret coralogix)"
else
    log "Coralogix off (CORALOGIX_PRIVATE_KEY is not set): the collector merges none.yaml"
fi
status=0
run_remote deploy "$IMAGE_TAG" || status=$?

previous=$(results previous | tail -n 1)
changed=$(results changed | tail -n 1)
outcome=$(results outcome | tail -n 1)
mapfile -t failures < <(results failure)
mapfile -t restored < <(results restored)
mapfile -t restore_failures < <(results restore-failure)

summary_add "### Deploy of \`$IMAGE_TAG\` to \`$NAMESPACE\` on \`$DEPLOY_HOST\`" ""
case $status:$outcome in
    0:deployed)
        log "deployed $IMAGE_TAG (previous release: ${previous:-none, this is the first})"
        log "Deployments changed: ${changed:-none}"
        summary_add "**Deployed** \`$IMAGE_TAG\` (previous release: \`${previous:-none}\`)." "" \
            "Deployments changed: ${changed:-none}. Every rollout finished and validation passed."
        ;;
    *:rolled-back | *:failed-first-release | *:rollback-failed)
        log "FAILED: release $IMAGE_TAG"
        for f in "${failures[@]}"; do log "  what failed: $f"; done
        summary_add "**Failed**: release \`$IMAGE_TAG\`." "" "What failed:"
        for f in "${failures[@]}"; do summary_add "- $f"; done
        summary_add ""
        case $outcome in
            rolled-back)
                log "rolled back automatically to $previous; restored:"
                for r in "${restored[@]}"; do log "  deployment/${r%% *} -> ${r#* }"; done
                summary_add "**Rolled back** to \`$previous\`: every Deployment the release changed runs its previous images again, and validation passed." ""
                for r in "${restored[@]}"; do summary_add "- \`${r%% *}\`: ${r#* }"; done
                ;;
            failed-first-release)
                log "this was the first release: there is no previous release to roll back to"
                summary_add "This was the first release: there is no previous release to roll back to."
                ;;
            rollback-failed)
                log "rolling back to $previous FAILED too: the cluster needs a person now"
                for f in "${restore_failures[@]}"; do log "  restore: $f"; done
                summary_add "**Rolling back to \`$previous\` failed too**:"
                for f in "${restore_failures[@]}"; do summary_add "- $f"; done
                ;;
        esac
        [[ $status -ne 0 ]] || status=1
        ;;
    3:* | 255:*)
        report_refused "$status"
        ;;
    *)
        log "failed before deploying (exit $status): $(results error | tail -n 1)"
        summary_add "**Failed** before deploying (exit $status): $(results error | tail -n 1)"
        [[ $status -ne 0 ]] || status=1
        ;;
esac
summary_host_log
exit "$status"
