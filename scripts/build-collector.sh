#!/usr/bin/env bash
# Build the lab's OpenTelemetry Collector, `otelcol-lab`, with the official
# collector builder (ocb, go.opentelemetry.io/collector/cmd/builder) from the
# manifest otel-collector/builder-config.yaml.
#
#   bash scripts/build-collector.sh               build if needed; last line = binary path
#   bash scripts/build-collector.sh --print-path  print the binary path, build nothing
#   bash scripts/build-collector.sh --force       rebuild even when up to date
#
# Everything lives outside the repository, in the tools cache:
#   BFL_TOOLS_CACHE (default ~/.cache/black-friday-lab/tools)
#     ocb-vV/builder                    the builder of collector release V
#     otelcol-lab-V/                    generated sources, go.mod and ...
#     otelcol-lab-V/otelcol-lab         ... the collector binary
#     otelcol-lab-V/otelcol-lab.sha256  sha256 of the manifest and flags it was built from
#     otelcol-lab-V.build.log           the last build's log
#
# V is the collector release the manifest pins (its go.opentelemetry.io/collector
# v0.x lines, which must all agree). Nothing is done when the binary exists and
# was built from the same manifest and flags. Modules come from GOPROXY; the compile runs
# at the lowest priority on BFL_BUILD_JOBS cores (default 1) so it never
# starves the machine. Needs Go >= 1.25. The first build takes minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=build-collector
# shellcheck source=lib.sh source-path=SCRIPTDIR
source scripts/lib.sh

readonly MANIFEST=otel-collector/builder-config.yaml
readonly DIST_NAME=otelcol-lab
readonly BUILDER_MODULE=go.opentelemetry.io/collector/cmd/builder
readonly MIN_GO_MINOR=25
CACHE=${BFL_TOOLS_CACHE:-$HOME/.cache/black-friday-lab/tools}
# One core by default (a developer machine stays usable); all of them in CI.
if [[ ${CI:-} == true ]]; then JOBS=${BFL_BUILD_JOBS:-$(nproc)}; else JOBS=${BFL_BUILD_JOBS:-1}; fi

usage() { sed -n '2,22s/^# \{0,1\}//p' scripts/build-collector.sh; }

mode=build
while [[ $# -gt 0 ]]; do
    case $1 in
        --print-path) mode=print ;;
        --force) mode=force ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

[[ -f $MANIFEST ]] || die "$MANIFEST is missing"
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "BFL_BUILD_JOBS must be a positive integer, not '$JOBS'"

# The collector release V, from the manifest's core v0.x module versions; the
# contrib modules must be of the same release (any patch level).
collector_version() {
    local versions minors
    versions=$(grep -oE 'go\.opentelemetry\.io/collector/[A-Za-z0-9/._-]+ v0\.[0-9]+\.[0-9]+' "$MANIFEST" |
        awk '{ print $2 }' | sort -u)
    [[ -n $versions ]] || die "$MANIFEST pins no go.opentelemetry.io/collector/* v0.x module: cannot tell the collector release"
    [[ $(wc -l <<<"$versions") -eq 1 ]] ||
        die "$MANIFEST mixes collector releases ($(tr '\n' ' ' <<<"$versions")): put every module on one release"
    minors=$(grep -oE 'opentelemetry-collector-contrib/[A-Za-z0-9/._-]+ v0\.[0-9]+' "$MANIFEST" |
        awk '{ print $2 }' | grep -vxF "${versions%.*}" | sort -u | tr '\n' ' ') || true
    [[ -z $minors ]] || die "$MANIFEST: contrib modules at ${minors}do not match the core release $versions"
    printf '%s\n' "${versions#v}"
}

VERSION=$(collector_version)
grep -qE "^[[:space:]]+name:[[:space:]]*${DIST_NAME}[[:space:]]*\$" "$MANIFEST" ||
    die "$MANIFEST: dist.name must be $DIST_NAME"
CACHE=$(mkdir -p "$CACHE" && cd "$CACHE" && pwd)
OUT_DIR=$CACHE/$DIST_NAME-$VERSION
BINARY=$OUT_DIR/$DIST_NAME
HASH_FILE=$BINARY.sha256
BUILD_LOG=$CACHE/$DIST_NAME-$VERSION.build.log
OCB=$CACHE/ocb-v$VERSION/builder

if [[ $mode == print ]]; then
    printf '%s\n' "$BINARY"
    exit 0
fi

# ocb builds with -trimpath -ldflags="-s -w" (no debug information in the binary);
# the compiler need not write any either: the same code, about 15 % less compile time.
readonly GCFLAGS=all=-dwarf=false

# What the binary is built from: the manifest and the flags.
manifest_hash() { { cat "$MANIFEST"; printf 'gcflags=%s\n' "$GCFLAGS"; } | sha256sum | cut -d' ' -f1; }

up_to_date() {
    [[ -x $BINARY && -f $HASH_FILE && $(<"$HASH_FILE") == "$(manifest_hash)" ]]
}

if [[ $mode == build ]] && up_to_date; then
    log "$DIST_NAME $VERSION is up to date"
    printf '%s\n' "$BINARY"
    exit 0
fi

# ------------------------------------------------------------- preflight --

require_go "$MIN_GO_MINOR" "the collector $VERSION"

# One build at a time (the tools cache is shared); the lock is released on exit.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/.$DIST_NAME.lock"
    flock 9
    if [[ $mode == build ]] && up_to_date; then # built meanwhile by someone else
        log "$DIST_NAME $VERSION is up to date"
        printf '%s\n' "$BINARY"
        exit 0
    fi
fi

# Low priority, few cores. Keep the GOFLAGS already in effect (environment or
# `go env -w`, e.g. -buildvcs=false: an exported GOFLAGS would hide the latter)
# and add the parallelism limit; GOMAXPROCS also bounds the compiler's backend.
GOFLAGS=$(go env GOFLAGS)
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-p=$JOBS"
export GOMAXPROCS=$JOBS
GOPROXY_IN_USE=$(go env GOPROXY)

now_ms() { date +%s%3N; }
elapsed() { local ms=$(($(now_ms) - $1)); printf '%dm%02ds' $((ms / 60000)) $((ms / 1000 % 60)); }

# Explains a failed download, or returns 1 when the log shows none.
explain_module_failure() {
    local lines
    lines=$(grep -E '403 Forbidden|404 Not Found|410 Gone|not available|no matching versions|unknown revision|invalid version|missing go.sum entry' "$1" |
        sed -E 's/^[[:space:]]+//' | sort -u | head -n 12) || true
    [[ -n $lines ]] || return 1
    printf '%s\n' "$lines" >&2
    die "a Go module needed by collector $VERSION is not available from GOPROXY=$GOPROXY_IN_USE (see above; full log: $BUILD_LOG). Pick another release in $MANIFEST, or drop the component."
}

started=$(now_ms)
: >"$BUILD_LOG"

# ------------------------------------------------------------------- ocb --

if [[ ! -x $OCB ]]; then
    log "installing ocb $VERSION ($BUILDER_MODULE@v$VERSION) into ${OCB%/*}"
    if ! GOBIN=${OCB%/*} nice -n 19 go install "$BUILDER_MODULE@v$VERSION" >>"$BUILD_LOG" 2>&1; then
        explain_module_failure "$BUILD_LOG" || { tail -n 20 "$BUILD_LOG" >&2; die "go install $BUILDER_MODULE@v$VERSION failed (log: $BUILD_LOG)"; }
    fi
    [[ -x $OCB ]] || die "go install succeeded but $OCB is missing"
fi

# ------------------------------------------------------------- collector --

# ocb takes the output directory from the manifest only: build from a copy of
# the manifest whose dist.output_path points into the cache.
BUILD_MANIFEST=$CACHE/$DIST_NAME-$VERSION.builder-config.yaml
[[ $(grep -cE '^[[:space:]]+output_path:' "$MANIFEST") -eq 1 ]] ||
    die "$MANIFEST must have exactly one dist.output_path line (the build replaces it)"
sed -E "s|^([[:space:]]+output_path:).*|\1 $OUT_DIR|" "$MANIFEST" >"$BUILD_MANIFEST"

rm -f "$HASH_FILE"
hash=$(manifest_hash)
log "building $DIST_NAME $VERSION with $GO_VERSION (GOFLAGS=$GOFLAGS, nice 19) into $OUT_DIR; the first build takes several minutes"
if ! nice -n 19 "$OCB" --config="$BUILD_MANIFEST" --gcflags="$GCFLAGS" --verbose >>"$BUILD_LOG" 2>&1; then
    explain_module_failure "$BUILD_LOG" || {
        tail -n 30 "$BUILD_LOG" >&2
        die "ocb failed to build $DIST_NAME $VERSION (log: $BUILD_LOG)"
    }
fi
[[ -x $BINARY ]] || die "ocb reported success but $BINARY is missing (log: $BUILD_LOG)"
"$BINARY" --version >/dev/null 2>&1 || die "$BINARY does not run (log: $BUILD_LOG)"
printf '%s\n' "$hash" >"$HASH_FILE"

log "built $DIST_NAME $VERSION in $(elapsed "$started") ($(du -h "$BINARY" | cut -f1))"
printf '%s\n' "$BINARY"
