#!/usr/bin/env bash
# Regenerate k8s/generated/: the Kubernetes manifests of compose.yaml + compose.otel.yaml,
# converted by the real kompose (scripts/build-go-tools.sh, pinned in tools/go/kompose).
#
#   bash scripts/k8s-generate.sh [--out DIR]     (npm run k8s:generate)
#
# One file per object, no kompose annotations, namespace black-friday-lab, bind
# mounts as ConfigMaps (--volumes configMap: db/init-db.sql and otel-collector/).
# kompose cannot know the release, so images and SERVICE_VERSION carry placeholders
# that scripts/deploy.sh renders for each release, and so does the collector's
# Coralogix switch (its second --config and the non-secret CORALOGIX_* settings):
#
#   __REGISTRY__/<service>:__IMAGE_TAG__     e.g. ghcr.io/acme/cart:3f2c1d0...
#   --config=__OTELCOL_EXTRA_CONFIG__        /etc/otelcol/coralogix.yaml or none.yaml
#   __CORALOGIX_DOMAIN__, __CORALOGIX_APPLICATION_NAME__, __CORALOGIX_SUBSYSTEM_NAME__
#
# The conversion runs with a clean environment (only the variables below), so a
# developer's REGISTRY, IMAGE_TAG or CORALOGIX_* cannot leak into the output, and
# the result is the same byte for byte on every machine (test/k8s.test.ts checks
# that the committed copy is current).
#
# Secrets never appear as values: the variables in SECRET_REFS below, empty in the
# Compose files, become `valueFrom.secretKeyRef` (optional) references to Secrets
# that scripts/deploy.sh creates from its environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=k8s-generate
# shellcheck source=lib.sh source-path=SCRIPTDIR
source scripts/lib.sh

readonly NAMESPACE=black-friday-lab
readonly REGISTRY_PLACEHOLDER=__REGISTRY__
readonly TAG_PLACEHOLDER=__IMAGE_TAG__
# Compose variable=placeholder, for what deploy.sh decides per release.
readonly RENDERED=(
    OTELCOL_EXTRA_CONFIG=__OTELCOL_EXTRA_CONFIG__
    CORALOGIX_DOMAIN=__CORALOGIX_DOMAIN__
    CORALOGIX_APPLICATION_NAME=__CORALOGIX_APPLICATION_NAME__
    CORALOGIX_SUBSYSTEM_NAME=__CORALOGIX_SUBSYSTEM_NAME__
)
# VARIABLE=secret-name/key
readonly SECRET_REFS=(CORALOGIX_PRIVATE_KEY=coralogix/private-key LAB_CONTROL_TOKEN=lab-control/token)

usage() { sed -n '2,25s/^# \{0,1\}//p' scripts/k8s-generate.sh; }

out=k8s/generated
while [[ $# -gt 0 ]]; do
    case $1 in
        --out)
            [[ $# -ge 2 ]] || die "--out needs a directory"
            out=$2
            shift
            ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

kompose=$(bash scripts/build-go-tools.sh kompose | sed -n 's/^kompose: //p')
[[ -x $kompose ]] || die "kompose is not available (scripts/build-go-tools.sh kompose printed '$kompose')"

work=$(mktemp -d)
trap 'rm -rf "$work"; rm -f "$APT_LOG"' EXIT
mkdir "$work/out"

# Only these variables reach the Compose interpolation.
if ! env -i PATH="$PATH" HOME="$work" NO_COLOR=1 \
    REGISTRY="$REGISTRY_PLACEHOLDER" IMAGE_TAG="$TAG_PLACEHOLDER" "${RENDERED[@]}" \
    DEPLOYMENT_ENVIRONMENT=kubernetes LOG_LEVEL=info POSTGRES_PASSWORD=lab BASELINE_RPM=100 LAB_CONTROL_TRUSTED=loopback \
    "$kompose" convert -f compose.yaml -f compose.otel.yaml --out "$work/out" \
    --namespace "$NAMESPACE" --with-kompose-annotation=false --volumes configMap \
    >"$work/kompose.log" 2>&1; then
    cat "$work/kompose.log" >&2
    die "kompose convert failed"
fi
if grep -E 'WARN|ERRO|FATA' "$work/kompose.log" >&2; then
    die "kompose convert reported the problems above"
fi

# secret_refs FILE: turn each empty secret variable into a secretKeyRef; prints
# how many it replaced. An env entry with a literal value is refused.
secret_refs() {
    local file=$1 spec var secret key count=0
    for spec in "${SECRET_REFS[@]}"; do
        var=${spec%%=*}
        secret=${spec#*=}
        key=${secret#*/}
        secret=${secret%/*}
        awk -v var="$var" -v secret="$secret" -v key="$key" -v file="$file" '
            pending {
                pending = 0
                if ($1 == "value:") { printf "%s: %s has a literal value; it must be empty in the Compose files\n", file, var > "/dev/stderr"; exit 3 }
                print indent "valueFrom:"
                print indent "  secretKeyRef:"
                print indent "    key: " key
                print indent "    name: " secret
                print indent "    optional: true"
                replaced++
            }
            $1 == "-" && $2 == "name:" && $3 == var && NF == 3 {
                print
                pending = 1
                indent = substr($0, 1, index($0, "-") - 1) "  "
                next
            }
            { print }
            END { print replaced + 0 > (file ".count") }
        ' "$file" >"$file.new" || die "cannot rewrite $var in $file"
        mv "$file.new" "$file"
        count=$((count + $(<"$file.count")))
        rm -f "$file.count"
    done
    printf '%s\n' "$count"
}

total=0
for file in "$work"/out/*.yaml; do
    total=$((total + $(secret_refs "$file")))
done
[[ $total -eq ${#SECRET_REFS[@]} ]] ||
    die "expected ${#SECRET_REFS[@]} secret variables (${SECRET_REFS[*]%%=*}) in the manifests, found $total"
if grep -lE "$TAG_PLACEHOLDER" "$work"/out/*.yaml >/dev/null; then :; else
    die "no image carries the $TAG_PLACEHOLDER placeholder: did compose.yaml stop using \${IMAGE_TAG}?"
fi
for spec in "${RENDERED[@]}"; do
    grep -qF -- "${spec#*=}" "$work/out/otel-collector-deployment.yaml" ||
        die "the collector does not carry the ${spec#*=} placeholder: did compose.otel.yaml stop using \${${spec%%=*}}?"
done

mkdir -p "$out"
rm -f "$out"/*.yaml
cp "$work"/out/*.yaml "$out"/
log "$(find "$out" -maxdepth 1 -name '*.yaml' | wc -l) manifests in $out (kompose $("$kompose" version 2>&1 | head -n 1))"
