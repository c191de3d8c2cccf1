#!/usr/bin/env bash
# Shared by the project's scripts: logging and package installation.
# Source it after setting LOG_PREFIX.

log() { printf '%s: %s\n' "${LOG_PREFIX:-lab}" "$*"; }
die() { printf '%s: %s\n' "${LOG_PREFIX:-lab}" "$*" >&2; exit 1; }

can_install() {
    [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1
}

# ------------------------------------------------------------------- apt --

APT_UPDATED=0
APT_LOG=$(mktemp)
trap 'rm -f "$APT_LOG"' EXIT

apt_get() {
    if ! apt-get -q -o DPkg::Lock::Timeout=600 "$@" >"$APT_LOG" 2>&1; then
        tail -n 20 "$APT_LOG" >&2
        die "apt-get $* failed"
    fi
}

# apt_install PKG...: install packages, running `apt-get update` (once) first
# when a package has no installation candidate, and again before one retry
# when the install fails (stale package lists on a fresh machine).
apt_install() {
    local pkg
    if [[ $APT_UPDATED -eq 0 ]]; then
        for pkg in "$@"; do
            if ! apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1; then
                apt_update
                break
            fi
        done
    fi
    log "installing $* (apt-get)"
    if ! apt-get -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$@" >"$APT_LOG" 2>&1; then
        [[ $APT_UPDATED -eq 0 ]] || { tail -n 20 "$APT_LOG" >&2; die "apt-get install $* failed"; }
        apt_update
        apt_get install -y --no-install-recommends "$@"
    fi
}

apt_update() {
    log "apt-get update"
    apt_get update
    APT_UPDATED=1
}

# apt_install_no_start PKG...: apt_install without running the packages' init
# scripts (openssh-server would start the system sshd on port 22, docker.io its
# dockerd): where no policy-rc.d exists, one that denies every start is in place
# for the install.
apt_install_no_start() {
    local policy=/usr/sbin/policy-rc.d
    if [[ -e $policy ]]; then
        apt_install "$@"
        return
    fi
    printf '#!/bin/sh\n# %s: no service starts during this install\nexit 101\n' "${LOG_PREFIX:-lab}" >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$APT_LOG" '"$policy" EXIT
    apt_install "$@"
    rm -f "$policy"
    trap 'rm -f "$APT_LOG"' EXIT
}


# require_go MINOR WHAT: Go 1.MINOR or newer must be on PATH to build WHAT.
require_go() {
    local minor=$1 what=$2 version
    command -v go >/dev/null 2>&1 ||
        die "go is not installed (or not on PATH): install Go 1.$minor or newer from https://go.dev/dl/ to build $what"
    version=$(go env GOVERSION)
    if [[ ! $version =~ ^go1\.([0-9]+) ]] || ((BASH_REMATCH[1] < minor)); then
        die "$version is too old (or unknown): $what needs Go 1.$minor or newer"
    fi
    # shellcheck disable=SC2034 # read by the scripts that source this file
    GO_VERSION=$version
}
