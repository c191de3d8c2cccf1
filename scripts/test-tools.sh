#!/usr/bin/env bash
# Tools the test suite needs beyond PostgreSQL and Redis (see deps.sh), installed
# when missing. Run by `npm test`; idempotent and fast when all are present.
#
#   chromium   Debian's package, for the HTML report test (CHROMIUM_PATH overrides)
#   otelcol    the lab's collector (scripts/build-collector.sh), for its config tests
#   kompose, actionlint   (scripts/build-go-tools.sh), for the Compose and workflow checks
#   sshd       (Debian's openssh-server), for the deploy tests (the tests start their own
#              sshd on loopback; the package's service is not started or touched here)
#   ShellCheck (Debian's shellcheck), for the shell script checks
#   the test cluster (scripts/k8s-cluster.sh): Kubernetes v1.34.4, etcd, CoreDNS and the
#              registry built from the Go module proxy (scripts/build-go-tools.sh k8s,
#              about 10.5 minutes on two cores the first time), and Debian's
#              containernetworking-plugins, conntrack, gcc and libc6-dev (the pause
#              image is compiled here); containerd and runc come with docker.io
#   Docker     the engine and the Compose plugin (scripts/docker-engine.sh), and the
#              images the Compose and cluster tests build (scripts/test-images.sh),
#              built beside the Go tools: its downloads overlap with compiling. Its
#              log: ${BFL_CACHE:-~/.cache/black-friday-lab}/test-images.log
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=test-tools
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_chromium() {
    local chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
    if [[ -x $chromium ]]; then
        log "chromium: $("$chromium" --version 2>/dev/null | head -n 1)"
        return
    fi
    can_install || die "chromium is missing at $chromium and cannot be installed here (needs root and apt-get): install Chromium and set CHROMIUM_PATH"
    apt_install chromium
    [[ -x $chromium ]] || die "chromium was installed but $chromium is still missing"
    log "chromium: $("$chromium" --version 2>/dev/null | head -n 1)"
}

ensure_chromium

# ensure_apt_tool PATH PACKAGE VERSION-ARGS...: PACKAGE provides PATH.
ensure_apt_tool() {
    local tool=$1 package=$2
    shift 2
    if [[ ! -x $tool ]]; then
        can_install || die "$tool is missing and cannot be installed here (needs root and apt-get): install $package"
        apt_install_no_start "$package"
        [[ -x $tool ]] || die "$package was installed but $tool is still missing"
    fi
    log "${tool##*/}: $("$tool" "$@" 2>&1 | grep -m 1 -E '[0-9]+\.[0-9]+' || true)"
}

ensure_apt_tool /usr/sbin/sshd openssh-server -V
ensure_apt_tool /usr/bin/shellcheck shellcheck --version
ensure_apt_tool /usr/lib/cni/bridge containernetworking-plugins --version
ensure_apt_tool /usr/sbin/conntrack conntrack --version
ensure_apt_tool /usr/bin/gcc gcc --version
if [[ ! -e /usr/include/stdio.h ]]; then
    can_install || die "libc6-dev is missing (for the test cluster's pause image) and cannot be installed here: install it"
    apt_install_no_start libc6-dev
fi

# The Docker engine and the Compose plugin first (the plugin is a Go build too), then
# the tests' images in the background while the Go tools compile.
IMAGES_LOG=${BFL_CACHE:-$HOME/.cache/black-friday-lab}/test-images.log
ensure_docker() {
    local output line
    output=$(bash scripts/docker-engine.sh 2>&1) || {
        printf '%s\n' "$output" >&2
        die "scripts/docker-engine.sh failed (above)"
    }
    while IFS= read -r line; do log "$line"; done <<<"$output"
    mkdir -p "${IMAGES_LOG%/*}"
    bash scripts/test-images.sh >"$IMAGES_LOG" 2>&1 &
    IMAGES_PID=$!
    # A failed Go build ends this script: the image builds end with it.
    trap 'kill "$IMAGES_PID" 2>/dev/null || true' EXIT
    log "images: building in the background (pid $IMAGES_PID, log $IMAGES_LOG)"
}

ensure_docker

# The lab's OpenTelemetry Collector, built with the collector builder from the Go
# module proxy into a cache outside the repo (minutes the first time, then instant).
ensure_collector() {
    local binary
    binary=$(bash scripts/build-collector.sh | tail -n 1)
    log "collector: $binary"
}

ensure_collector

# kompose and actionlint, built from the Go module proxy at pinned versions into the
# same cache (scripts/build-go-tools.sh).
ensure_go_tools() {
    local line
    while IFS= read -r line; do log "$line"; done < <(bash scripts/build-go-tools.sh all)
}

ensure_go_tools

wait_images() {
    if wait "$IMAGES_PID"; then
        log "images: $(tail -n 1 "$IMAGES_LOG")"
    else
        tail -n 30 "$IMAGES_LOG" >&2
        die "scripts/test-images.sh failed (above: the end of $IMAGES_LOG)"
    fi
}

wait_images
