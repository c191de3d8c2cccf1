#!/usr/bin/env bash
# Docker images the Compose and cluster tests need, built ahead of the suite.
#
#   bash scripts/test-images.sh            all three below
#   bash scripts/test-images.sh pre-move   only the cluster test's pre-move images
#
#   bases      the base images whose stand-ins need no Go tool: node, postgres and
#              redis as compose*.yaml and the Dockerfile name them (pulled, or else
#              built as labelled stand-ins by scripts/standin-images.sh). The
#              collector's, Jaeger's and Prometheus's stand-ins need the Go builds,
#              so the tests build those (seconds).
#   lab        the ten service images (`docker compose build`, classic builder),
#              tagged as the Compose test tags them (IMAGE_TAG=compose-test). The
#              tests build the images again; with these in the engine, every step
#              is a layer-cache hit.
#   pre-move   the cluster test's release r1: the images of commit bc3b1db (main
#              before the packages moved), from that commit's own Dockerfile and
#              Compose file, kept as bfl-k8s-test/<service>:pre-move-<commit12>. Its
#              source never changes, so they are built once per engine. The commit
#              must be in the clone (not a shallow one).
#
# `npm run test-tools` runs this beside the Go builds: the downloads in it (the
# Debian rootfs and packages, Node, npm packages) overlap with compiling. Needs a
# Docker engine and the Compose plugin (scripts/docker-engine.sh). Idempotent; the
# last line says what was built and how long it took.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=test-images
# shellcheck source=lib.sh source-path=SCRIPTDIR
source scripts/lib.sh

readonly PRE_MOVE_COMMIT=bc3b1dba1a267170234010dad2cbf203fd65fb3f
readonly PRE_MOVE_TAG=pre-move-${PRE_MOVE_COMMIT:0:12}
readonly PRE_MOVE_REPO=bfl-k8s-test
readonly COMPOSE_FILES=compose.yaml:compose.otel.yaml
export DOCKER_BUILDKIT=0

parts=(bases lab pre-move)
case ${1:-} in
    '') ;;
    pre-move) parts=(pre-move) ;;
    -h | --help) sed -n '2,24s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
esac

docker info >/dev/null 2>&1 || die "no Docker engine answers: run scripts/docker-engine.sh first"
docker compose version >/dev/null 2>&1 || die "the Compose plugin is missing: run scripts/docker-engine.sh first"

# The Compose environment without what a developer may have set for the lab.
compose_build() {
    env -u COMPOSE_PROJECT_NAME -u COMPOSE_PROFILES -u LAB_CONTROL_TOKEN -u CORALOGIX_PRIVATE_KEY \
        -u OTELCOL_EXTRA_CONFIG "$@"
}

# The services built from the Dockerfile (those whose image is REGISTRY/<name>:IMAGE_TAG).
node_services() {
    sed -nE 's/^[[:space:]]+image: \$\{REGISTRY:-[^}]*\}\/([a-z-]+):\$\{IMAGE_TAG:-dev\}[[:space:]]*$/\1/p' "$1"
}

# The image a Dockerfile builds on (its NODE_IMAGE default).
node_image() {
    sed -nE 's/^ARG NODE_IMAGE=([^[:space:]]+)$/\1/p' "$1"
}

bases() {
    local images
    mapfile -t images < <({
        grep -hE '^[[:space:]]+image:[[:space:]]*(postgres|redis):[^[:space:]]+[[:space:]]*$' compose*.yaml | awk '{ print $2 }'
        node_image Dockerfile
    } | sort -u)
    [[ ${#images[@]} -eq 3 ]] || die "expected the node, postgres and redis images, found: ${images[*]:-none}"
    bash scripts/standin-images.sh "${images[@]}"
}

lab() {
    local services
    mapfile -t services < <(node_services compose.yaml)
    [[ ${#services[@]} -eq 10 ]] || die "expected ten services built from the Dockerfile in compose.yaml, found ${#services[@]}"
    compose_build COMPOSE_FILE=$COMPOSE_FILES IMAGE_TAG=compose-test REGISTRY=ghcr.io/black-friday-lab \
        docker compose -p bfl-compose-test --parallel 1 build --quiet "${services[@]}"
    log "lab: ${#services[@]} images built (${services[0]}:compose-test and the others)"
}

pre_move() {
    local services missing=() name old
    git rev-parse --verify --quiet "$PRE_MOVE_COMMIT^{commit}" >/dev/null ||
        die "the pre-move images are built from commit $PRE_MOVE_COMMIT, which this clone lacks (a shallow clone?): git fetch --unshallow"
    mapfile -t services < <(git show "$PRE_MOVE_COMMIT:compose.yaml" | node_services /dev/stdin)
    [[ ${#services[@]} -eq 10 ]] || die "expected ten services in $PRE_MOVE_COMMIT's compose.yaml, found ${#services[@]}"
    for name in "${services[@]}"; do
        docker image inspect "$PRE_MOVE_REPO/$name:$PRE_MOVE_TAG" >/dev/null 2>&1 || missing+=("$name")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "pre-move: already in the engine ($PRE_MOVE_REPO/<service>:$PRE_MOVE_TAG)"
        return
    fi
    old=$(mktemp -d "${TMPDIR:-/tmp}/bfl-pre-move-XXXXXX")
    # shellcheck disable=SC2064 # expand now: the directory is local
    trap "rm -rf '$old'" EXIT
    git archive "$PRE_MOVE_COMMIT" | tar -x -C "$old"
    # The base that commit's own Dockerfile names.
    bash scripts/standin-images.sh "$(node_image "$old/Dockerfile")"
    compose_build COMPOSE_FILE="$old/compose.yaml:$old/compose.otel.yaml" IMAGE_TAG="$PRE_MOVE_TAG" REGISTRY="$PRE_MOVE_REPO" \
        docker compose -p bfl-k8s-test --project-directory "$old" --parallel 1 build --quiet "${missing[@]}"
    log "pre-move: ${#missing[@]} images built from ${PRE_MOVE_COMMIT:0:7} ($PRE_MOVE_REPO/<service>:$PRE_MOVE_TAG)"
}

started=$SECONDS
for part in "${parts[@]}"; do
    case $part in
        bases) bases ;;
        lab) lab ;;
        pre-move) pre_move ;;
    esac
done
log "done: ${parts[*]} in $((SECONDS - started)) s"
