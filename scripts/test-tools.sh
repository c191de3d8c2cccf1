#!/usr/bin/env bash
# Tools the test suite needs beyond PostgreSQL and Redis (see deps.sh), installed
# when missing. Run by `npm test`; idempotent and fast when all are present.
#
#   chromium   Debian's package, for the HTML report test (CHROMIUM_PATH overrides)
#   otelcol    the lab's collector (scripts/build-collector.sh), for its config tests
#   kompose, actionlint   (scripts/build-go-tools.sh), for the Compose and workflow checks
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
