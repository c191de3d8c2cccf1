#!/usr/bin/env bash
# The Docker engine and the Compose CLI plugin the Compose test
# (test/compose-up.test.ts) runs on, installed and started when missing.
# Idempotent, and fast when both are there.
#
#   bash scripts/docker-engine.sh
#
#   engine   an engine that answers `docker info` (DOCKER_HOST or the local
#            socket) is used as it is, never restarted or reconfigured. When
#            none answers: Debian's docker.io (dockerd 20.10, containerd, runc)
#            is installed if dockerd is missing (root and apt-get needed; its
#            init script is not run), then dockerd is started in the background
#            (no systemd needed), its log in ~/.cache/black-friday-lab/dockerd.log,
#            and waited for (BFL_DOCKERD_WAIT seconds, default 60).
#   compose  a `docker compose` of at least v$MIN_COMPOSE that is not ours is
#            used as it is. Otherwise the Compose built from the Go module proxy
#            by scripts/build-go-tools.sh (tools/go/compose/go.mod: v5.6.0) is
#            linked as the user's CLI plugin, ${DOCKER_CONFIG:-~/.docker}/cli-plugins/docker-compose
#            (a link into the tools cache, replaced when the release changes).
#
# Prints `docker-engine: ...` lines saying what it found or did; the last line
# is `docker-engine: ready: engine <version>, compose <version>`.
#
# Builds: Compose uses BuildKit through the buildx plugin when BuildKit is
# enabled and buildx is installed, and its classic builder otherwise (with a
# warning when BuildKit is enabled but buildx is missing). dockerd 20.10 has no
# buildx here, so the test sets DOCKER_BUILDKIT=0: the classic builder, with no
# warning. Compose v5 has no COMPOSE_BAKE switch; it needs nothing else.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=docker-engine
# shellcheck source=lib.sh source-path=SCRIPTDIR
source scripts/lib.sh

readonly MIN_COMPOSE=2.20.0
STATE_DIR=${BFL_CACHE:-$HOME/.cache/black-friday-lab}
DOCKERD_LOG=$STATE_DIR/dockerd.log
DOCKERD_WAIT=${BFL_DOCKERD_WAIT:-60}
PLUGIN_DIR=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins

engine_answers() { docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }
engine_version() { docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown; }

# version_at_least HAVE WANT (both X.Y.Z, a leading v ignored)
version_at_least() {
    [[ $(printf '%s\n' "${2#v}" "${1#v}" | sort -V | head -n 1) == "${2#v}" ]]
}

ensure_docker_packages() {
    if command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then
        return
    fi
    can_install ||
        die "no Docker engine answers and dockerd is not installed: install Docker (https://docs.docker.com/engine/install/), or run this as root on Debian/Ubuntu to install the docker.io package"
    apt_install_no_start docker.io
    command -v dockerd >/dev/null 2>&1 || die "docker.io was installed but dockerd is still not on PATH ($PATH)"
}

# wait_for_engine SECONDS PID: until `docker info` answers; PID (when set) is
# the dockerd we started: its exit ends the wait.
wait_for_engine() {
    local deadline=$((SECONDS + $1)) pid=${2:-}
    until engine_answers; do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$DOCKERD_LOG" >&2 || true
            die "dockerd (pid $pid) exited before answering (log: $DOCKERD_LOG)"
        fi
        if ((SECONDS >= deadline)); then
            [[ -z $pid ]] || tail -n 20 "$DOCKERD_LOG" >&2 || true
            return 1
        fi
        sleep 0.5
    done
}

ensure_engine() {
    if engine_answers; then
        log "engine: Docker $(engine_version) answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}; used as it is"
        return
    fi
    command -v docker >/dev/null 2>&1 || ensure_docker_packages
    if [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != unix:///var/run/docker.sock ]]; then
        die "DOCKER_HOST=$DOCKER_HOST does not answer (docker info: $(docker info 2>&1 | grep -m 1 -iE 'error|cannot' || echo 'no answer')): start that engine, or unset DOCKER_HOST to use a local one"
    fi
    local running
    running=$(pgrep -x dockerd | head -n 1 || true)
    if [[ -n $running ]]; then
        # Someone else's dockerd, perhaps still starting: wait for it, never start a second one.
        log "engine: dockerd (pid $running) runs but does not answer yet; waiting up to ${DOCKERD_WAIT}s"
        wait_for_engine "$DOCKERD_WAIT" ||
            die "dockerd (pid $running) runs but \`docker info\` has not answered for ${DOCKERD_WAIT}s: see its log, or stop it and run this again"
        log "engine: Docker $(engine_version) answers"
        return
    fi
    ensure_docker_packages
    [[ $(id -u) -eq 0 ]] ||
        die "no Docker engine answers and dockerd is installed but not running: start it (sudo systemctl start docker, or sudo dockerd &) or run this as root"
    mkdir -p "$STATE_DIR"
    log "engine: starting dockerd in the background (log: $DOCKERD_LOG)"
    printf '\n--- %s docker-engine.sh starts dockerd\n' "$(date -u +%FT%TZ)" >>"$DOCKERD_LOG"
    # Its own session, stdin closed: it outlives this script and the terminal.
    setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    local pid=$!
    wait_for_engine "$DOCKERD_WAIT" "$pid" ||
        die "dockerd (pid $pid) has not answered \`docker info\` in ${DOCKERD_WAIT}s (log: $DOCKERD_LOG)"
    log "engine: Docker $(engine_version) started (dockerd pid $pid; stop it with: kill $pid)"
}

compose_version() { docker compose version --short 2>/dev/null | sed 's/^v//'; }

ensure_compose() {
    local plugin=$PLUGIN_DIR/docker-compose cache binary have
    cache=${BFL_TOOLS_CACHE:-$HOME/.cache/black-friday-lab/tools}
    have=$(compose_version || true)
    # A Compose of the user's (a system plugin, or their own file or link in the
    # plugin directory, anything but a link into our cache) that is recent enough
    # stays: another checkout's tools cache (BFL_TOOLS_CACHE) included.
    if [[ -n $have ]] && [[ ! -L $plugin || $(readlink "$plugin") != "$cache"/* ]] && version_at_least "$have" "$MIN_COMPOSE"; then
        log "compose: Docker Compose v$have (${plugin%/*} or a system plugin directory); used as it is"
        return
    fi
    if [[ -e $plugin && ! -L $plugin ]]; then
        die "$plugin is Docker Compose ${have:-of unknown version}, older than v$MIN_COMPOSE: update or remove it (this script then links the lab's build there)"
    fi
    if [[ -L $plugin && $(readlink "$plugin") != "$cache"/* ]]; then
        die "$plugin links to $(readlink "$plugin") (Docker Compose ${have:-of unknown version}, older than v$MIN_COMPOSE), not to the lab's tools cache: remove it or make it Compose v$MIN_COMPOSE or newer"
    fi
    binary=$(bash scripts/build-go-tools.sh docker-compose | sed -n 's/^docker-compose: //p')
    [[ -x $binary ]] || die "scripts/build-go-tools.sh did not produce docker-compose ($binary)"
    if [[ $(readlink "$plugin" 2>/dev/null || true) != "$binary" ]]; then
        mkdir -p "$PLUGIN_DIR"
        ln -sfn "$binary" "$plugin"
        log "compose: linked $plugin -> $binary"
    fi
    have=$(compose_version || true)
    [[ -n $have ]] || die "docker compose does not answer after linking $plugin -> $binary ($(docker compose version 2>&1 | head -n 1))"
    version_at_least "$have" "$MIN_COMPOSE" ||
        die "docker compose reports v$have after linking $plugin: another plugin directory takes precedence?"
    log "compose: Docker Compose v$have"
}

ensure_engine
ensure_compose
log "ready: engine $(engine_version), compose v$(compose_version)"
