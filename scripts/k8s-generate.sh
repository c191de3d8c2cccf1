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
# kompose stats every volume's host path to tell files (ConfigMaps) from the rest; a
# named volume has none ("stat :/container/path") and becomes a PersistentVolumeClaim,
# as wanted: that warning is expected, any other is not.
if grep -E 'WARN|ERRO|FATA' "$work/kompose.log" | grep -vE "File don't exist or failed to check if the directory is empty: stat :/" >&2; then
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

# Kubernetes-side fixes kompose cannot express:
#  - liveness: the Compose health check (bash asking GET /health on $PORT, an exec into
#    the container, ~70-120 ms of CPU each) becomes the same GET as an httpGet probe,
#    which the kubelet makes itself, and gives a pod 10 s per answer and six misses in
#    a row (a minute) before it is restarted: Compose only marks a container unhealthy,
#    Kubernetes kills it, and at the story's peak on two cores a busy frontend missed
#    three 3 s answers and was restarted, which turned the incident into an outage;
#  - memory limits and requests in Mi instead of raw byte counts;
#  - every Deployment's progressDeadlineSeconds a placeholder deploy.sh renders
#    (PROGRESS_DEADLINE_SECONDS, default Kubernetes' 600);
#  - the Namespace sorts first (`kubectl apply -f DIR` applies files in name order: the
#    namespaced objects would come before it on a fresh cluster) and carries no
#    metadata.namespace of its own.
k8s_fixes() {
    local file=$1
    awk -v file="$file" '
        FNR == NR {
            if (want_port && $1 == "value:") { port = $2; gsub(/"/, "", port); want_port = 0 }
            if ($1 == "-" && $2 == "name:" && $3 == "PORT") want_port = 1
            if (index($0, "/dev/tcp/127.0.0.1/$PORT")) bash_health = 1
            next
        }
        skipping {
            if (index($0, "/dev/tcp/127.0.0.1/$PORT") && index($0, "GET /health HTTP/1.0")) { skipping = 0; matched = 1 }
            else if ($1 != "command:" && $1 != "-") { printf "%s: a liveness exec probe that is not the Compose health check of GET /health\n", file > "/dev/stderr"; exit 3 }
            next
        }
        in_liveness && bash_health && $1 == "exec:" {
            if (port == "") { printf "%s: a liveness exec probe and no PORT variable\n", file > "/dev/stderr"; exit 3 }
            indent = substr($0, 1, index($0, "e") - 1)
            print indent "httpGet:"
            print indent "  path: /health"
            print indent "  port: " port
            skipping = 1
            http_liveness = indent
            next
        }
        http_liveness != "" {
            if (substr($0, 1, length(http_liveness)) != http_liveness) http_liveness = ""
            else if ($1 == "failureThreshold:") { print http_liveness "failureThreshold: 6"; next }
            else if ($1 == "timeoutSeconds:") { print http_liveness "timeoutSeconds: 10"; next }
        }
        { in_liveness = ($1 == "livenessProbe:") }
        $1 == "memory:" && $2 ~ /^"?[0-9]+"?$/ {
            bytes = $2; gsub(/"/, "", bytes)
            if (bytes % 1048576 == 0) { sub(/memory: .*/, "memory: " (bytes / 1048576) "Mi") }
        }
        /^kind: Deployment$/ { deployment = 1 }
        deployment && /^spec:$/ { print; print "  progressDeadlineSeconds: __PROGRESS_DEADLINE_SECONDS__"; next }
        /^kind: Namespace$/ { namespace_object = 1 }
        namespace_object && /^  namespace: / { next }
        { print }
        END { if (skipping) { printf "%s: the liveness probe ends inside its command\n", file > "/dev/stderr"; exit 3 } }
    ' "$file" "$file" >"$file.new" || die "cannot rewrite $file (above)"
    mv "$file.new" "$file"
}
for file in "$work"/out/*.yaml; do
    k8s_fixes "$file"
done
while IFS= read -r file; do
    mv "$file" "$work/out/00-${file##*/}"
done < <(grep -l '^kind: Namespace$' "$work"/out/*.yaml)
if grep -l 'exec 3<>/dev/tcp' "$work"/out/*.yaml >&2; then die "exec liveness probes are left in the files above"; fi

mkdir -p "$out"
rm -f "$out"/*.yaml
cp "$work"/out/*.yaml "$out"/
log "$(find "$out" -maxdepth 1 -name '*.yaml' | wc -l) manifests in $out (kompose $("$kompose" version 2>&1 | head -n 1))"
