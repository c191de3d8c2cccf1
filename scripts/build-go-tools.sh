#!/usr/bin/env bash
# Build the Go command-line tools the lab pins, from the Go module proxy:
#   kompose     Compose -> Kubernetes converter (k8s/generated/), the version
#               required in tools/go/kompose/go.mod
#   actionlint  GitHub Actions workflow linter, ACTIONLINT_VERSION below
#
#   bash scripts/build-go-tools.sh [TOOL...]            build what is missing or stale
#   bash scripts/build-go-tools.sh --print-path TOOL    print TOOL's binary path, build nothing
#   bash scripts/build-go-tools.sh --force [TOOL...]    rebuild even when up to date
#
# TOOL is kompose, actionlint or all (the default). Prints one `tool: path`
# line per tool on stdout (progress goes to stderr); --print-path with a single
# tool prints just its path.
#
# Everything lives outside the repository, in the tools cache:
#   BFL_TOOLS_CACHE (default ~/.cache/black-friday-lab/tools)
#     kompose-vV/kompose                the binary ...
#     kompose-vV/kompose.sha256         ... and the hash of the recipe it was built from
#     kompose-vV.build.log              the last build's log (same for actionlint)
#
# kompose's go.mod has replace directives, so `go install kompose@V` is refused:
# it is built from the small module tools/go/kompose, which requires it as a
# tool, repeats its replace directives and pins every module in go.sum.
# Modules come from GOPROXY; compiles run at the lowest priority on
# BFL_BUILD_JOBS cores (default 1, all cores when CI=true). Needs Go >= 1.25.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=build-go-tools
# shellcheck source=lib.sh source-path=SCRIPTDIR
source scripts/lib.sh

readonly ACTIONLINT_VERSION=v1.7.12
readonly ACTIONLINT_PACKAGE=github.com/rhysd/actionlint/cmd/actionlint
readonly KOMPOSE_MODULE=github.com/kubernetes/kompose
readonly KOMPOSE_DIR=tools/go/kompose
readonly MIN_GO_MINOR=25
readonly ALL_TOOLS=(kompose actionlint)
# Flags every build uses; part of the recipe hash.
readonly BUILD_FLAGS=(-trimpath -buildvcs=false "-ldflags=-s -w")
CACHE=${BFL_TOOLS_CACHE:-$HOME/.cache/black-friday-lab/tools}
# One core by default (a developer machine stays usable); all of them in CI.
if [[ ${CI:-} == true ]]; then JOBS=${BFL_BUILD_JOBS:-$(nproc)}; else JOBS=${BFL_BUILD_JOBS:-1}; fi

usage() { sed -n '2,25s/^# \{0,1\}//p' scripts/build-go-tools.sh; }
note() { log "$@" >&2; }

mode=build
tools=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --print-path) mode=print ;;
        --force) mode=force ;;
        -h | --help) usage; exit 0 ;;
        all) tools+=("${ALL_TOOLS[@]}") ;;
        kompose | actionlint) tools+=("$1") ;;
        *) die "unknown argument: $1 (tools: ${ALL_TOOLS[*]} or all; see --help)" ;;
    esac
    shift
done
[[ ${#tools[@]} -gt 0 ]] || tools=("${ALL_TOOLS[@]}")
# Each tool once, in the order given.
mapfile -t tools < <(printf '%s\n' "${tools[@]}" | awk '!seen[$0]++')
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "BFL_BUILD_JOBS must be a positive integer, not '$JOBS'"

# The kompose release tools/go/kompose/go.mod requires.
kompose_version() {
    local versions
    [[ -f $KOMPOSE_DIR/go.mod ]] || die "$KOMPOSE_DIR/go.mod is missing"
    versions=$(awk -v m="$KOMPOSE_MODULE" '$1 == "require" && $2 == m { print $3 } $1 == m { print $2 }' "$KOMPOSE_DIR/go.mod")
    [[ $versions =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
        die "$KOMPOSE_DIR/go.mod must require $KOMPOSE_MODULE at one release vX.Y.Z (found: ${versions:-nothing})"
    printf '%s\n' "$versions"
}

version_of() {
    case $1 in
        kompose) kompose_version ;;
        actionlint) printf '%s\n' "$ACTIONLINT_VERSION" ;;
    esac
}

CACHE=$(mkdir -p "$CACHE" && cd "$CACHE" && pwd)
declare -A VERSION BINARY
for tool in "${tools[@]}"; do
    VERSION[$tool]=$(version_of "$tool")
    BINARY[$tool]=$CACHE/$tool-${VERSION[$tool]}/$tool
done

if [[ $mode == print ]]; then
    if [[ ${#tools[@]} -eq 1 ]]; then
        printf '%s\n' "${BINARY[${tools[0]}]}"
    else
        for tool in "${tools[@]}"; do printf '%s: %s\n' "$tool" "${BINARY[$tool]}"; done
    fi
    exit 0
fi

# What a binary is built from: the flags, the package and version, and for
# kompose its module files (go.mod pins the replaces, go.sum every module).
recipe_hash() {
    {
        printf '%s\n' "$1" "${VERSION[$1]}" "${BUILD_FLAGS[@]}"
        case $1 in
            kompose) cat "$KOMPOSE_DIR/go.mod" "$KOMPOSE_DIR/go.sum" ;;
            actionlint) printf '%s\n' "$ACTIONLINT_PACKAGE" ;;
        esac
    } | sha256sum | cut -d' ' -f1
}

up_to_date() {
    local hash_file=${BINARY[$1]}.sha256
    [[ -x ${BINARY[$1]} && -f $hash_file && $(<"$hash_file") == "$(recipe_hash "$1")" ]]
}

pending=()
for tool in "${tools[@]}"; do
    if [[ $mode == build ]] && up_to_date "$tool"; then
        note "$tool ${VERSION[$tool]} is up to date"
    else
        pending+=("$tool")
    fi
done

print_paths() {
    for tool in "${tools[@]}"; do printf '%s: %s\n' "$tool" "${BINARY[$tool]}"; done
}
if [[ ${#pending[@]} -eq 0 ]]; then
    print_paths
    exit 0
fi

# ------------------------------------------------------------- preflight --

require_go "$MIN_GO_MINOR" "${pending[*]}"

# One build at a time (the tools cache is shared); the lock is released on exit.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/.go-tools.lock"
    flock 9
fi

# Low priority, few cores. Keep the GOFLAGS already in effect (environment or
# `go env -w`, e.g. -buildvcs=false: an exported GOFLAGS would hide the latter)
# and add the parallelism limit; GOMAXPROCS also bounds the compiler's backend.
# Builds never look at a go.work and never rewrite tools/go/*/go.{mod,sum}.
GOFLAGS=$(go env GOFLAGS)
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-p=$JOBS"
export GOMAXPROCS=$JOBS GOWORK=off
GOPROXY_IN_USE=$(go env GOPROXY)

now_ms() { date +%s%3N; }
elapsed() { local ms=$(($(now_ms) - $1)); printf '%dm%02ds' $((ms / 60000)) $((ms / 1000 % 60)); }

# Explains a failed module download from log $2 for tool $1, or returns 1
# when the log shows none.
explain_module_failure() {
    local lines hint
    lines=$(grep -E '403 Forbidden|404 Not Found|410 Gone|not available|no matching versions|unknown revision|invalid version|missing go.sum entry|updates to go.mod needed|go.mod file indicates replacement' "$2" |
        sed -E 's/^[[:space:]]+//' | sort -u | head -n 12) || true
    [[ -n $lines ]] || return 1
    printf '%s\n' "$lines" >&2
    if grep -qE 'missing go.sum entry|updates to go.mod needed' <<<"$lines"; then
        die "$KOMPOSE_DIR/go.mod and go.sum are out of step (see above; full log: $2): run \`go mod tidy\` in $KOMPOSE_DIR and commit both"
    fi
    if [[ $1 == kompose ]]; then
        hint="pick another kompose release in $KOMPOSE_DIR/go.mod (copy its replace directives, then \`go mod tidy\`), or add a replace directive there that points the module above at a version the proxy has"
    else
        hint="pick another ACTIONLINT_VERSION in scripts/build-go-tools.sh"
    fi
    die "a Go module needed by $1 ${VERSION[$1]} is not available from GOPROXY=$GOPROXY_IN_USE (see above; full log: $2). Fix: $hint"
}

# replaces_of GOMOD: one `old[@v] => new[@v]` line per replace directive.
replaces_of() {
    go mod edit -json "$1" | awk '
        /^\t"Replace": \[/ { on = 1; next }
        !on { next }
        /^\t\]/ { exit }
        /"Old": \{/ { side = "old" }
        /"New": \{/ { side = "new" }
        /"(Path|Version)":/ {
            v = $2; gsub(/[",]/, "", v)
            s[side] = s[side] ($1 == "\"Path\":" ? "" : "@") v
        }
        /^\t\t\}/ { print s["old"] " => " s["new"]; s["old"] = ""; s["new"] = "" }
    ' | sort
}

# Runs "$@" at the lowest priority, appending to log $2 of tool $1; explains
# a failure and exits.
run_logged() {
    local tool=$1 build_log=$2
    shift 2
    if ! nice -n 19 "$@" >>"$build_log" 2>&1; then
        explain_module_failure "$tool" "$build_log" || {
            tail -n 20 "$build_log" >&2
            die "$tool ${VERSION[$tool]}: \`$*\` failed (log: $build_log)"
        }
    fi
}

# build_into TOOL DIR: put a fresh TOOL binary at DIR/TOOL.
build_into() {
    local tool=$1 dir=$2 build_log=$CACHE/$1-${VERSION[$1]}.build.log upstream missing
    case $tool in
        kompose)
            # A dependency's replace directives do not apply to the module that
            # requires it: ours must include every one of kompose's.
            upstream=$(cd "$KOMPOSE_DIR" && go list -m -f '{{.GoMod}}' "$KOMPOSE_MODULE" 2>>"$build_log") ||
                explain_module_failure "$tool" "$build_log" ||
                die "cannot resolve $KOMPOSE_MODULE ${VERSION[$tool]} from $KOMPOSE_DIR (log: $build_log)"
            missing=$(comm -23 <(replaces_of "$upstream") <(replaces_of "$KOMPOSE_DIR/go.mod"))
            [[ -z $missing ]] ||
                die "$KOMPOSE_DIR/go.mod lacks replace directives of $KOMPOSE_MODULE ${VERSION[$tool]}'s go.mod, copy them: $(paste -sd ';' <<<"$missing" | sed 's/;/; /g')"
            (cd "$KOMPOSE_DIR" && run_logged "$tool" "$build_log" \
                go build -mod=readonly "${BUILD_FLAGS[@]}" -o "$dir/$tool" "$KOMPOSE_MODULE")
            ;;
        actionlint)
            run_logged "$tool" "$build_log" \
                env GOBIN="$dir" go install "${BUILD_FLAGS[@]}" "$ACTIONLINT_PACKAGE@${VERSION[$tool]}"
            ;;
    esac
    [[ -x $dir/$tool ]] || die "the build of $tool reported success but $dir/$tool is missing (log: $build_log)"
}

# The version the binary reports, which must be the pinned one.
check_version() {
    local tool=$1 bin=$2 got want=${VERSION[$1]}
    case $tool in
        kompose) got=$("$bin" version 2>&1 | head -n 1) || true; want=${want#v} ;;
        actionlint) got=$("$bin" -version 2>&1 | head -n 1) || true ;;
    esac
    [[ $got == "$want" || $got == "$want "* ]] ||
        die "the $tool just built reports version '${got:-nothing}', not $want"
}

for tool in "${pending[@]}"; do
    # Built meanwhile by someone else (we waited for the lock)?
    if [[ $mode == build ]] && up_to_date "$tool"; then
        note "$tool ${VERSION[$tool]} is up to date"
        continue
    fi
    out_dir=${BINARY[$tool]%/*}
    mkdir -p "$out_dir"
    : >"$CACHE/$tool-${VERSION[$tool]}.build.log"
    started=$(now_ms)
    hash=$(recipe_hash "$tool")
    note "building $tool ${VERSION[$tool]} with $GO_VERSION (GOFLAGS=$GOFLAGS, nice 19) into $out_dir"
    # Build next to the binary, then swap it in: a failed build leaves the
    # previous binary (if any) alone, and no one ever runs a half-written one.
    tmp_dir=$(mktemp -d "$out_dir/.build.XXXXXX")
    trap 'rm -rf "$tmp_dir"; rmdir "$out_dir" 2>/dev/null; rm -f "$APT_LOG"' EXIT
    build_into "$tool" "$tmp_dir"
    check_version "$tool" "$tmp_dir/$tool"
    rm -f "${BINARY[$tool]}.sha256"
    mv -f "$tmp_dir/$tool" "${BINARY[$tool]}"
    printf '%s\n' "$hash" >"${BINARY[$tool]}.sha256"
    rm -rf "$tmp_dir"
    note "built $tool ${VERSION[$tool]} in $(elapsed "$started") ($(du -h "${BINARY[$tool]}" | cut -f1))"
done

print_paths
