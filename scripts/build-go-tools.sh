#!/usr/bin/env bash
# Build the Go command-line tools the lab pins, from the Go module proxy:
#   kompose     Compose -> Kubernetes converter (k8s/generated/), the version
#               required in tools/go/kompose/go.mod
#   actionlint  GitHub Actions workflow linter, ACTIONLINT_VERSION below
#   prometheus  Prometheus 3, the local metrics backend (OTLP receiver, HTTP
#               API), module version PROMETHEUS_VERSION below, built with
#               upstream's build tag remove_all_sd: no service discovery but
#               static, file and HTTP (the lab scrapes static targets), and none
#               of the cloud SDKs the others compile (EC2, GCE, Azure, ...)
#   promtool    Prometheus's rule checker and rule unit-test runner, same version
#               and tag
#   jaeger      Jaeger v2, the local trace backend and query API for the trace
#               UI, the version required in tools/go/jaeger/go.mod (JAEGER_RELEASE)
#   docker-compose  Docker Compose v2+ (the `docker compose` CLI plugin) for the
#               Compose test, the version required in tools/go/compose/go.mod
#               (scripts/docker-engine.sh installs it as the plugin)
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
#   kubectl     Kubernetes, the version required in tools/go/kubernetes/go.mod,
#               for the test cluster (scripts/k8s-cluster.sh)
#   etcd        its store, the version required in tools/go/etcd/go.mod
#   coredns     its DNS, the version required in tools/go/coredns/go.mod, with
#               only the plugins the cluster's Corefile uses
#   registry    the CNCF distribution registry it pulls from, the version required
#               in tools/go/registry/go.mod, with only the filesystem storage driver
#
#   bash scripts/build-go-tools.sh [TOOL...]            build what is missing or stale
#   bash scripts/build-go-tools.sh --print-path TOOL    print TOOL's binary path, build nothing
#   bash scripts/build-go-tools.sh --force [TOOL...]    rebuild even when up to date
#
# TOOL is one of the above, k8s (the test cluster's nine) or all (the
# default: every tool). Prints one `tool: path` line per tool on stdout
# (progress goes to stderr); --print-path with a single tool prints just its
# path.
#
# Everything lives outside the repository, in the tools cache:
#   BFL_TOOLS_CACHE (default ~/.cache/black-friday-lab/tools)
#     kompose-vV/kompose                the binary ...
#     kompose-vV/kompose.sha256         ... and the hash of the recipe it was built from
#     kompose-vV.build.log              the last build's log (same for the others)
# where V is the release the binary reports (prometheus-v3.16.0, jaeger-v2.12.0).
#
# The go.mod of kompose, Jaeger, Kubernetes and etcd has replace directives, and
# Compose's exclude directives, so `go install kompose@V` is refused: each is built from
# a small module (tools/go/kompose, tools/go/jaeger, tools/go/compose) that
# requires it as a tool, repeats those directives and pins every module in go.sum
# (Kubernetes and etcd replace theirs with directories of their own repository:
# tools/go/kubernetes and tools/go/etcd pin each to its published twin instead).
# registry is a small command of our own, tools/go/registry, that leaves out the
# storage drivers the cluster never uses (upstream's compiles the Azure, GCS and S3
# SDKs); so is coredns, tools/go/coredns (upstream's compiles every plugin, the
# Route 53, Azure and Cloud DNS SDKs and the Datadog tracer among them).
# prometheus, promtool and actionlint are `go install`ed.
# Release builds stamp their version with -ldflags; these do
# too, so `prometheus --version`, `promtool --version` and `jaeger version`
# report the release (revision unknown). Built from source, Prometheus has no
# web UI (its HTTP API works) and Jaeger serves a placeholder page instead of
# the Jaeger UI (its API works). Modules come from GOPROXY; compiles run at the
# lowest priority on BFL_BUILD_JOBS cores (default 1, all cores when CI=true).
# The six Kubernetes binaries are built by one go command, and so are Prometheus
# and promtool (a group's other logs point to its first one's); while the first
# tools compile, the modules of the others download in the background
# (prefetch.log in the tools cache).
# Needs Go >= 1.25, and for Prometheus the Go its go.mod names (>= 1.26.7).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=build-go-tools
# shellcheck source=lib.sh source-path=SCRIPTDIR
source scripts/lib.sh

readonly ACTIONLINT_VERSION=v1.7.12
readonly ACTIONLINT_PACKAGE=github.com/rhysd/actionlint/cmd/actionlint
readonly KOMPOSE_MODULE=github.com/kubernetes/kompose
readonly KOMPOSE_DIR=tools/go/kompose
# Prometheus 3.N.P is module version v0.3NN.P (v0.316.0 is Prometheus 3.16.0);
# the build checks the module's VERSION file against it.
readonly PROMETHEUS_VERSION=v0.316.0
readonly PROMETHEUS_MODULE=github.com/prometheus/prometheus
readonly JAEGER_MODULE=github.com/jaegertracing/jaeger
readonly JAEGER_DIR=tools/go/jaeger
# The Jaeger v2 release tagged on the commit of the module version
# tools/go/jaeger/go.mod requires: Jaeger tags v1.N.P and v2.(N-63).P together
# (v1.75.0 / v2.12.0), and the Go module only has the v1 tags.
readonly JAEGER_RELEASE=v2.12.0
readonly COMPOSE_MODULE=github.com/docker/compose/v5
readonly COMPOSE_DIR=tools/go/compose
readonly K8S_MODULE=k8s.io/kubernetes
readonly K8S_DIR=tools/go/kubernetes
readonly ETCD_MODULE=go.etcd.io/etcd/server/v3
readonly ETCD_DIR=tools/go/etcd
readonly COREDNS_MODULE=github.com/coredns/coredns
readonly COREDNS_DIR=tools/go/coredns
readonly COREDNS_PACKAGE=blackfridaylab.local/tools/coredns
readonly REGISTRY_MODULE=github.com/distribution/distribution/v3
readonly REGISTRY_DIR=tools/go/registry
readonly REGISTRY_PACKAGE=blackfridaylab.local/tools/registry
readonly MIN_GO_MINOR=25
readonly KUBE_TOOLS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
readonly K8S_TOOLS=("${KUBE_TOOLS[@]}" etcd coredns registry)
readonly ALL_TOOLS=(kompose actionlint prometheus promtool jaeger docker-compose "${K8S_TOOLS[@]}")
# Flags every build uses; part of the recipe hash. -ldflags=-s -w strips the
# debug information from the binaries, so the compiler does not write any
# (-dwarf=false): the same code, about 15 % less compile time.
readonly BUILD_FLAGS=(-trimpath -buildvcs=false "-gcflags=all=-dwarf=false" "-ldflags=-s -w")
CACHE=${BFL_TOOLS_CACHE:-$HOME/.cache/black-friday-lab/tools}
# One core by default (a developer machine stays usable); all of them in CI.
if [[ ${CI:-} == true ]]; then JOBS=${BFL_BUILD_JOBS:-$(nproc)}; else JOBS=${BFL_BUILD_JOBS:-1}; fi

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' scripts/build-go-tools.sh; }
note() { log "$@" >&2; }

mode=build
tools=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --print-path) mode=print ;;
        --force) mode=force ;;
        -h | --help) usage; exit 0 ;;
        all) tools+=("${ALL_TOOLS[@]}") ;;
        k8s) tools+=("${K8S_TOOLS[@]}") ;;
        *)
            [[ " ${ALL_TOOLS[*]} " == *" $1 "* ]] || die "unknown argument: $1 (tools: ${ALL_TOOLS[*]}, k8s or all; see --help)"
            tools+=("$1")
            ;;
    esac
    shift
done
[[ ${#tools[@]} -gt 0 ]] || tools=("${ALL_TOOLS[@]}")
# Each tool once, in the order given.
mapfile -t tools < <(printf '%s\n' "${tools[@]}" | awk '!seen[$0]++')
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "BFL_BUILD_JOBS must be a positive integer, not '$JOBS'"

# The module each tool is built from, the package that is its command, and the
# small module under tools/go it is built in (none: `go install PACKAGE@VERSION`).
declare -A MODULE=(
    [kompose]=$KOMPOSE_MODULE [actionlint]=github.com/rhysd/actionlint
    [prometheus]=$PROMETHEUS_MODULE [promtool]=$PROMETHEUS_MODULE [jaeger]=$JAEGER_MODULE
    [docker-compose]=$COMPOSE_MODULE [etcd]=$ETCD_MODULE [coredns]=$COREDNS_MODULE [registry]=$REGISTRY_MODULE
)
declare -A PACKAGE=(
    [kompose]=$KOMPOSE_MODULE [actionlint]=$ACTIONLINT_PACKAGE
    [prometheus]=$PROMETHEUS_MODULE/cmd/prometheus [promtool]=$PROMETHEUS_MODULE/cmd/promtool
    [jaeger]=$JAEGER_MODULE/cmd/jaeger [docker-compose]=$COMPOSE_MODULE/cmd
    [etcd]=$ETCD_MODULE [coredns]=$COREDNS_PACKAGE [registry]=$REGISTRY_PACKAGE
)
declare -A TOOL_DIR=(
    [kompose]=$KOMPOSE_DIR [jaeger]=$JAEGER_DIR [docker-compose]=$COMPOSE_DIR [etcd]=$ETCD_DIR
    [coredns]=$COREDNS_DIR [registry]=$REGISTRY_DIR
)
# The tools whose command is our own code: its directory, part of the recipe.
declare -A OWN_SOURCE=([coredns]=$COREDNS_DIR [registry]=$REGISTRY_DIR)
for tool in "${KUBE_TOOLS[@]}"; do
    MODULE[$tool]=$K8S_MODULE PACKAGE[$tool]=$K8S_MODULE/cmd/$tool TOOL_DIR[$tool]=$K8S_DIR
done

# required_version DIR MODULE: the release DIR/go.mod requires MODULE at.
required_version() {
    local dir=$1 module=$2 versions
    [[ -f $dir/go.mod ]] || die "$dir/go.mod is missing"
    versions=$(awk -v m="$module" '$1 == "require" && $2 == m { print $3 } $1 == m { print $2 }' "$dir/go.mod")
    [[ $versions =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
        die "$dir/go.mod must require $module at one release vX.Y.Z (found: ${versions:-nothing})"
    printf '%s\n' "$versions"
}

# The module version a tool is built from.
version_of() {
    case $1 in
        kompose | jaeger | docker-compose | etcd | kube-* | kubectl | kubelet | coredns | registry)
            required_version "${TOOL_DIR[$1]}" "${MODULE[$1]}"
            ;;
        actionlint) printf '%s\n' "$ACTIONLINT_VERSION" ;;
        prometheus | promtool) printf '%s\n' "$PROMETHEUS_VERSION" ;;
    esac
}

# release_of TOOL MODULE-VERSION: the release the binary reports, when it is
# not the module version.
release_of() {
    case $1 in
        prometheus | promtool)
            [[ $2 =~ ^v0\.3([0-9]{2,})\.([0-9]+)$ ]] ||
                die "PROMETHEUS_VERSION must be a Prometheus 3 module version v0.3NN.P (Prometheus 3.NN.P), not $2"
            printf 'v3.%d.%d\n' "$((10#${BASH_REMATCH[1]}))" "${BASH_REMATCH[2]}"
            ;;
        jaeger)
            local v1_minor=-1 v2_minor=-2
            [[ $2 =~ ^v1\.([0-9]+)\. ]] && v1_minor=${BASH_REMATCH[1]}
            [[ $JAEGER_RELEASE =~ ^v2\.([0-9]+)\.[0-9]+$ ]] && v2_minor=${BASH_REMATCH[1]}
            ((v2_minor + 63 == v1_minor)) ||
                die "JAEGER_RELEASE $JAEGER_RELEASE is not the Jaeger v2 release of module version $2 ($JAEGER_DIR/go.mod): Jaeger tags v1.N.P with v2.(N-63).P, update both together"
            printf '%s\n' "$JAEGER_RELEASE"
            ;;
        *) printf '%s\n' "$2" ;;
    esac
}

CACHE=$(mkdir -p "$CACHE" && cd "$CACHE" && pwd)
declare -A VERSION RELEASE BINARY
for tool in "${tools[@]}"; do
    VERSION[$tool]=$(version_of "$tool")
    RELEASE[$tool]=$(release_of "$tool" "${VERSION[$tool]}")
    BINARY[$tool]=$CACHE/$tool-${RELEASE[$tool]}/$tool
done

if [[ $mode == print ]]; then
    if [[ ${#tools[@]} -eq 1 ]]; then
        printf '%s\n' "${BINARY[${tools[0]}]}"
    else
        for tool in "${tools[@]}"; do printf '%s: %s\n' "$tool" "${BINARY[$tool]}"; done
    fi
    exit 0
fi

# build_flags TOOL: sets FLAGS to BUILD_FLAGS, with the version stamps of the
# tool's release builds (their Makefile/.promu.yml) added to -ldflags.
build_flags() {
    local stamps=
    case $1 in
        prometheus | promtool)
            stamps="-X github.com/prometheus/common/version.Version=${RELEASE[$1]#v}"
            stamps+=" -X github.com/prometheus/common/version.BuildUser=black-friday-lab"
            ;;
        jaeger) stamps="-X $JAEGER_MODULE/internal/version.latestVersion=${RELEASE[$1]}" ;;
        docker-compose) stamps="-X $COMPOSE_MODULE/internal.Version=${RELEASE[$1]}" ;;
        kube-* | kubectl | kubelet)
            # What the release's hack/lib/version.sh stamps (git details left out).
            local v=${RELEASE[$1]} minor
            minor=${v#v*.}
            minor=${minor%%.*}
            stamps="-X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=${v:1:1}"
            stamps+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
            stamps+=" -X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=${v:1:1}"
            stamps+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitTreeState=clean"
            ;;
        registry) stamps="-X $REGISTRY_MODULE/version.version=${RELEASE[$1]}" ;;
    esac
    FLAGS=("${BUILD_FLAGS[@]}")
    # Upstream's own switch (plugins/plugin_*.go): every service discovery but
    # static, file and HTTP left out.
    [[ $1 != prometheus && $1 != promtool ]] || FLAGS=(-tags=remove_all_sd "${FLAGS[@]}")
    [[ -z $stamps ]] || FLAGS[-1]+=" $stamps" # -ldflags=... is BUILD_FLAGS's last
}

# What a binary is built from: the flags, the package and version, for the
# tools built in a tools/go module its module files (go.mod pins the replaces,
# go.sum every module), and for coredns and registry their own Go source.
recipe_hash() {
    local FLAGS
    build_flags "$1"
    {
        printf '%s\n' "$1" "${VERSION[$1]}" "${FLAGS[@]}"
        if [[ -n ${TOOL_DIR[$1]:-} ]]; then
            cat "${TOOL_DIR[$1]}/go.mod" "${TOOL_DIR[$1]}/go.sum"
            [[ -z ${OWN_SOURCE[$1]:-} ]] || cat "${OWN_SOURCE[$1]}"/*.go
        else
            printf '%s\n' "${PACKAGE[$1]}"
        fi
    } | sha256sum | cut -d' ' -f1
}

up_to_date() {
    local hash_file=${BINARY[$1]}.sha256
    [[ -x ${BINARY[$1]} && -f $hash_file && $(<"$hash_file") == "$(recipe_hash "$1")" ]]
}

pending=()
for tool in "${tools[@]}"; do
    if [[ $mode == build ]] && up_to_date "$tool"; then
        note "$tool ${RELEASE[$tool]} is up to date"
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

# Explains a failed build or module download from log $2 for tool $1, or
# returns 1 when the log shows no known cause.
explain_module_failure() {
    local lines hint dir=${TOOL_DIR[$1]:-}
    if tr '\n' ' ' <"$2" | grep -qE 'contains one or[[:space:]]+more (replace|exclude) directives'; then
        die "the go.mod of ${MODULE[$1]} ${VERSION[$1]} has replace or exclude directives, so \`go install ${PACKAGE[$1]}@${VERSION[$1]}\` is refused (log: $2). Fix: build it from a small module tools/go/$1 that requires it as a tool and repeats them, as $JAEGER_DIR does"
    fi
    lines=$(grep -E 'requires go >= ' "$2" | sed -E 's/^[[:space:]]+//' | sort -u | head -n 3) || true
    if [[ -n $lines ]]; then
        printf '%s\n' "$lines" >&2
        die "$1 ${RELEASE[$1]} needs a newer Go than $GO_VERSION (see above; full log: $2): install it from https://go.dev/dl/, or let go fetch it (GOTOOLCHAIN=auto)"
    fi
    lines=$(grep -E '403 Forbidden|404 Not Found|410 Gone|not available|no matching versions|unknown revision|invalid version|missing go.sum entry|updates to go.mod needed|go.mod file indicates replacement' "$2" |
        sed -E 's/^[[:space:]]+//' | sort -u | head -n 12) || true
    [[ -n $lines ]] || return 1
    printf '%s\n' "$lines" >&2
    if [[ -n $dir ]] && grep -qE 'missing go.sum entry|updates to go.mod needed' <<<"$lines"; then
        die "$dir/go.mod and go.sum are out of step (see above; full log: $2): run \`go mod tidy\` in $dir and commit both"
    fi
    case $1 in
        kompose) hint="pick another kompose release in $dir/go.mod (copy its replace directives, then \`go mod tidy\`), or add a replace directive there that points the module above at a version the proxy has" ;;
        jaeger) hint="pick another Jaeger release in $dir/go.mod (copy its replace directives, then \`go mod tidy\`) and set JAEGER_RELEASE in scripts/build-go-tools.sh to its v2 release, or add a replace directive in $dir/go.mod that points the module above at a version the proxy has" ;;
        prometheus | promtool) hint="pick another PROMETHEUS_VERSION in scripts/build-go-tools.sh (Prometheus 3.N.P is module version v0.3NN.P)" ;;
        docker-compose) hint="pick another Compose release in $dir/go.mod (copy its exclude directives, then \`go mod tidy\`)" ;;
        kube-* | kubectl | kubelet) hint="pick another Kubernetes release in $dir/go.mod and pin every k8s.io/* staging module to its v0.x twin in the replace block, then \`go mod tidy\`" ;;
        etcd) hint="pick another etcd release in $dir/go.mod (and the same for its sibling modules in the replace block), then \`go mod tidy\`" ;;
        coredns) hint="pick another CoreDNS release in $dir/go.mod (\`go get $COREDNS_MODULE@vX.Y.Z\` there, then \`go mod tidy\`)" ;;
        registry) hint="pick another distribution release in $dir/go.mod (\`go get $REGISTRY_MODULE@vX.Y.Z\` there, then \`go mod tidy\`)" ;;
        *) hint="pick another ACTIONLINT_VERSION in scripts/build-go-tools.sh" ;;
    esac
    die "a Go module needed by $1 ${RELEASE[$1]} is not available from GOPROXY=$GOPROXY_IN_USE (see above; full log: $2). Fix: $hint"
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
            die "$tool ${RELEASE[$tool]}: \`$*\` failed (log: $build_log)"
        }
    fi
}

# module_source TOOL LOG: fetch the module TOOL is built from (the version its
# tools/go module requires, or VERSION) and set SRC_GOMOD (its go.mod), SRC_GO
# (the Go version that names) and SRC_DIR (its source; go install tools only:
# in a tools/go module, `go mod download` could add to go.sum).
module_source() {
    local tool=$1 build_log=$2 info
    if [[ -n ${TOOL_DIR[$tool]:-} ]]; then
        info=$(cd "${TOOL_DIR[$tool]}" && go list -m -f '|{{.GoMod}}|{{.GoVersion}}' "${MODULE[$tool]}" 2>>"$build_log")
    else
        info=$(nice -n 19 go mod download "${MODULE[$tool]}@${VERSION[$tool]}" 2>>"$build_log" &&
            go list -m -f '{{.Dir}}|{{.GoMod}}|{{.GoVersion}}' "${MODULE[$tool]}@${VERSION[$tool]}" 2>>"$build_log")
    fi || explain_module_failure "$tool" "$build_log" ||
        die "cannot resolve ${MODULE[$tool]} ${VERSION[$tool]}${TOOL_DIR[$tool]:+ from ${TOOL_DIR[$tool]}} (log: $build_log)"
    IFS='|' read -r SRC_DIR SRC_GOMOD SRC_GO <<<"$info"
}

# require_module_go TOOL: the Go in use must be at least the one TOOL's module
# names (Prometheus 3.16: 1.26.7), unless GOTOOLCHAIN lets go fetch that one.
require_module_go() {
    local have=${GO_VERSION#go} toolchain
    have=${have%% *}
    [[ -n $SRC_GO && $(printf '%s\n' "$SRC_GO" "$have" | sort -V | head -n 1) != "$SRC_GO" ]] || return 0
    toolchain=$(go env GOTOOLCHAIN)
    [[ $toolchain != local ]] ||
        die "$1 ${RELEASE[$1]} needs Go $SRC_GO or newer (the go line of ${MODULE[$1]} ${VERSION[$1]}'s go.mod), this is $GO_VERSION: install it from https://go.dev/dl/, or let go fetch it (GOTOOLCHAIN=auto)"
    note "$1 ${RELEASE[$1]} needs Go $SRC_GO, newer than $GO_VERSION: GOTOOLCHAIN=$toolchain decides which go builds it"
}

# group_of TOOL: tools of one group are built by one go command (the same
# module, version and flags): the six Kubernetes binaries, and Prometheus with
# promtool. One command loads the packages once and keeps both cores busy
# (one binary links while another's packages compile).
group_of() {
    case $1 in
        kube-* | kubectl | kubelet) printf 'kubernetes\n' ;;
        prometheus | promtool) printf 'prometheus\n' ;;
        *) printf '%s\n' "$1" ;;
    esac
}

# build_into DIR TOOL...: put a fresh binary of each TOOL (one group) at DIR/TOOL,
# with one go command; its log is the first TOOL's.
build_into() {
    local dir=$1 tool=$2 missing release FLAGS SRC_DIR SRC_GOMOD SRC_GO member
    shift
    local members=("$@") build_log=$CACHE/$tool-${RELEASE[$tool]}.build.log
    build_flags "$tool"
    module_source "$tool" "$build_log"
    require_module_go "$tool"
    case $tool in
        kompose | jaeger | docker-compose | etcd | kube-* | kubectl | kubelet | coredns | registry)
            # A dependency's replace directives do not apply to the module that
            # requires it: ours must include every one of upstream's.
            # One that points into upstream's own repository (./staging/..., ../api) cannot
            # be copied: ours must replace the same module (with its published twin).
            # (comm needs both sides sorted as a whole.)
            missing=$(comm -23 <(replaces_of "$SRC_GOMOD" | sed -E 's/ => \..*$/ => (a published version)/' | sort -u) \
                <({
                    replaces_of "${TOOL_DIR[$tool]}/go.mod" | sed -E 's/ => \..*$/ => (a published version)/; s/ => [^ (]+@v[^ ]+$/ => (a published version)/'
                    replaces_of "${TOOL_DIR[$tool]}/go.mod"
                } | sort -u))
            [[ -z $missing ]] ||
                die "${TOOL_DIR[$tool]}/go.mod lacks replace directives of ${MODULE[$tool]} ${VERSION[$tool]}'s go.mod, copy them: $(paste -sd ';' <<<"$missing" | sed 's/;/; /g')"
            if [[ ${#members[@]} -eq 1 ]]; then
                (cd "${TOOL_DIR[$tool]}" && run_logged "$tool" "$build_log" \
                    go build -mod=readonly "${FLAGS[@]}" -o "$dir/$tool" "${PACKAGE[$tool]}")
            else
                # -o DIR/: each command is named after its package's directory (the tool).
                local packages=()
                for member in "${members[@]}"; do packages+=("${PACKAGE[$member]}"); done
                (cd "${TOOL_DIR[$tool]}" && run_logged "$tool" "$build_log" \
                    go build -mod=readonly "${FLAGS[@]}" -o "$dir/" "${packages[@]}")
            fi
            ;;
        *)
            if [[ $tool == prometheus || $tool == promtool ]]; then
                # The release PROMETHEUS_VERSION stands for must be the module's own.
                release=$(cat "$SRC_DIR/VERSION" 2>/dev/null) || true
                [[ $release == "${RELEASE[$tool]#v}" ]] ||
                    die "$PROMETHEUS_MODULE ${VERSION[$tool]} is Prometheus ${release:-?} (its VERSION file), not ${RELEASE[$tool]#v}: fix PROMETHEUS_VERSION in scripts/build-go-tools.sh"
            fi
            local targets=()
            for member in "${members[@]}"; do targets+=("${PACKAGE[$member]}@${VERSION[$member]}"); done
            run_logged "$tool" "$build_log" \
                env GOBIN="$dir" go install "${FLAGS[@]}" "${targets[@]}"
            ;;
    esac
    for member in "${members[@]}"; do
        [[ -x $dir/$member ]] || die "the build of $member reported success but $dir/$member is missing (log: $build_log)"
    done
}

# The version the binary reports, which must be the pinned release.
check_version() {
    local tool=$1 bin=$2 got want=${RELEASE[$1]}
    case $tool in
        kompose) got=$("$bin" version 2>&1 | head -n 1) || true; want=${want#v} ;;
        actionlint) got=$("$bin" -version 2>&1 | head -n 1) || true ;;
        # prometheus, version 3.16.0 (branch: ..., revision: unknown)
        prometheus | promtool) got=$("$bin" --version 2>&1 | sed -n "1s/^$tool, version //p") || true; want=${want#v} ;;
        # {"gitCommit":"","gitVersion":"v2.12.0","buildDate":""} (and a log line on stderr)
        jaeger) got=$("$bin" version 2>/dev/null | sed -n 's/.*"gitVersion":"\([^"]*\)".*/\1/p') || true ;;
        # Docker Compose version v5.6.0
        docker-compose) got=$("$bin" version 2>&1 | sed -n '1s/^Docker Compose version //p') || true ;;
        # Kubernetes v1.34.4
        kube-* | kubelet) got=$("$bin" --version 2>&1 | sed -n '1s/^Kubernetes //p') || true ;;
        # Client Version: v1.34.4
        kubectl) got=$("$bin" version --client 2>&1 | sed -n 's/^Client Version: //p') || true ;;
        # etcd Version: 3.6.6
        etcd) got=$("$bin" --version 2>&1 | sed -n 's/^etcd Version: //p') || true; want=${want#v} ;;
        # CoreDNS-1.12.4
        coredns) got=$("$bin" -version 2>&1 | sed -n 's/^CoreDNS-//p') || true; want=${want#v} ;;
        # registry github.com/distribution/distribution/v3 v3.0.0
        registry) got=$("$bin" --version 2>&1 | awk 'NR == 1 { print $NF }') || true ;;
    esac
    [[ $got == "$want" || $got == "$want "* ]] ||
        die "the $tool just built reports version '${got:-nothing}', not $want"
}

# The pending tools by group, in the order given.
declare -A GROUP_MEMBERS=()
groups=()
for tool in "${pending[@]}"; do
    group=$(group_of "$tool")
    [[ -n ${GROUP_MEMBERS[$group]:-} ]] || groups+=("$group")
    GROUP_MEMBERS[$group]+="$tool "
done

# Download the modules of every pending tool in the background while the first
# ones compile: the network waits of the later builds overlap the CPU work of
# the earlier ones. Best effort: a module that fails here fails its build, which
# explains it.
prefetch() {
    local group tool FLAGS dir tags packages i
    for group in "${groups[@]}"; do
        read -ra packages <<<"${GROUP_MEMBERS[$group]}"
        tool=${packages[0]}
        build_flags "$tool"
        if [[ -n ${TOOL_DIR[$tool]:-} ]]; then
            dir=${TOOL_DIR[$tool]}
        else
            # go install's module: its own go.mod and go.sum pin what it needs.
            go mod download "${MODULE[$tool]}@${VERSION[$tool]}" || continue
            dir=$(go list -m -f '{{.Dir}}' "${MODULE[$tool]}@${VERSION[$tool]}") || continue
        fi
        tags=()
        [[ ${FLAGS[0]} != -tags=* ]] || tags=("${FLAGS[0]}")
        # One go list per group: its packages are loaded once.
        for i in "${!packages[@]}"; do packages[i]=${PACKAGE[${packages[i]}]}; done
        (cd "$dir" && go list -mod=readonly "${tags[@]}" -deps -e "${packages[@]}") || true
    done >/dev/null 2>"$CACHE/prefetch.log"
}
if [[ ${#pending[@]} -gt 1 ]]; then
    prefetch &
    PREFETCH_PID=$!
fi

for group in "${groups[@]}"; do
    # Built meanwhile by someone else (we waited for the lock)?
    members=()
    for tool in ${GROUP_MEMBERS[$group]}; do
        if [[ $mode == build ]] && up_to_date "$tool"; then
            note "$tool ${RELEASE[$tool]} is up to date"
        else
            members+=("$tool")
        fi
    done
    [[ ${#members[@]} -gt 0 ]] || continue
    first=${members[0]}
    for tool in "${members[@]}"; do
        mkdir -p "${BINARY[$tool]%/*}"
        : >"$CACHE/$tool-${RELEASE[$tool]}.build.log"
    done
    for tool in "${members[@]:1}"; do
        printf 'built with %s by one go command: see %s\n' "$first" "$CACHE/$first-${RELEASE[$first]}.build.log" \
            >"$CACHE/$tool-${RELEASE[$tool]}.build.log"
    done
    started=$(now_ms)
    from=
    [[ ${RELEASE[$first]} == "${VERSION[$first]}" ]] || from=" (${MODULE[$first]} ${VERSION[$first]})"
    note "building ${members[*]} ${RELEASE[$first]}$from with $GO_VERSION (GOFLAGS=$GOFLAGS, nice 19) into ${CACHE}"
    # Build in a directory of its own, then swap each binary in: a failed build
    # leaves the previous binaries (if any) alone, and no one ever runs a
    # half-written one.
    tmp_dir=$(mktemp -d "$CACHE/.build.XXXXXX")
    trap 'rm -rf "$tmp_dir"; rm -f "$APT_LOG"; [[ -z ${PREFETCH_PID:-} ]] || kill "$PREFETCH_PID" 2>/dev/null || true' EXIT
    build_into "$tmp_dir" "${members[@]}"
    for tool in "${members[@]}"; do
        check_version "$tool" "$tmp_dir/$tool"
        hash=$(recipe_hash "$tool")
        rm -f "${BINARY[$tool]}.sha256"
        mv -f "$tmp_dir/$tool" "${BINARY[$tool]}"
        printf '%s\n' "$hash" >"${BINARY[$tool]}.sha256"
    done
    rm -rf "$tmp_dir"
    sizes=()
    for tool in "${members[@]}"; do sizes+=("$tool $(du -h "${BINARY[$tool]}" | cut -f1)"); done
    note "built ${members[*]} ${RELEASE[$first]} in $(elapsed "$started") ($(printf '%s, ' "${sizes[@]}" | sed 's/, $//'))"
done

print_paths
