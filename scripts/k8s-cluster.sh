#!/usr/bin/env bash
# A throwaway single-node Kubernetes for the deploy tests (test/k8s-cluster.test.ts),
# built from upstream sources (scripts/build-go-tools.sh: Kubernetes v1.34.4, etcd,
# CoreDNS, the CNCF distribution registry) and run as plain processes:
#
#   bash scripts/k8s-cluster.sh up        start it (a stale one left by a killed run is
#                                         torn down first); prints KUBECONFIG=, REGISTRY=
#   bash scripts/k8s-cluster.sh down      tear it down and undo every change on the host,
#                                         listing each (also after a killed run)
#   bash scripts/k8s-cluster.sh status    what runs, and the guard's state
#   bash scripts/k8s-cluster.sh env       KUBECONFIG=, KUBECTL=, REGISTRY= lines
#
# What runs: its own containerd (Debian's, with its own socket, root and state; an
# engine that already runs is never touched), etcd, kube-apiserver, kube-controller-
# manager, kube-scheduler, kubelet, kube-proxy (iptables mode), CoreDNS (as a process
# on the node address, serving cluster.local and the test domain only: it forwards
# nothing), and a registry (127.0.0.1:REGISTRY_PORT) that containerd pulls every image
# from: REGISTRY/<service>:TAG as the deploy names them, and images of any other
# registry (postgres:15.15-bookworm is docker.io/library/postgres) by the same path.
# containerd never contacts another registry. A `local-path` StorageClass (the
# default, as in k3s) is backed by pre-made hostPath PersistentVolumes under the
# state directory (a stand-in for k3s's provisioner, which needs an image from the
# internet).
#
# Network safety, set up and checked before anything starts: the node's bridge
# (bflk8s0, NODE_IP) and the pod and service ranges overlap no route or address on
# the host; both ranges get blackhole routes (a packet for an address no pod has,
# or a ClusterIP kube-proxy has not rewritten, goes nowhere); and a rule at the top
# of the mangle table's FORWARD and OUTPUT chains (before the filter table, where
# Docker and kube-proxy put theirs) drops every packet from or to those ranges that
# would leave through anything but the bridge or loopback. Pods reach the node, each
# other and their Services, nothing else.
#
# Settings (environment; the defaults suit a machine with nothing else in 10.213/16):
#   BFL_K8S_DIR           state directory (default ~/.cache/black-friday-lab/k8s-cluster);
#                         removed by `down`, registry data included
#   BFL_K8S_POD_CIDR      pods (default 10.213.0.0/24; the node is its .1)
#   BFL_K8S_SERVICE_CIDR  Services (default 10.213.128.0/24)
#   BFL_K8S_GUARD_CIDR    the range the blackhole routes and the drop rule cover; holds
#                         both (default 10.213.0.0/16)
#   BFL_K8S_TEST_DOMAIN   a domain CoreDNS answers inside the cluster (default
#                         coralogix.test): NAME.DOMAIN and NAME.ANY.DOMAIN -> the Service NAME in
#                         BFL_K8S_TEST_DOMAIN_NAMESPACE (default bfl-k8s-test)
#   BFL_K8S_WAIT          seconds to wait for the node to be Ready (default 120)
# Ports: etcd 127.0.0.1:23790-23791, kube-apiserver NODE_IP:26443, kubelet
# NODE_IP:20250, registry 127.0.0.1:25000, CoreDNS NODE_IP:53, the others'
# health and metrics on 127.0.0.1:2024x.
#
# Needs root, cgroups, iptables, and Debian's containerd, runc and
# containernetworking-plugins (installed when missing).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LOG_PREFIX=k8s-cluster
# shellcheck source=lib.sh source-path=SCRIPTDIR
source scripts/lib.sh

STATE=${BFL_K8S_DIR:-$HOME/.cache/black-friday-lab/k8s-cluster}
POD_CIDR=${BFL_K8S_POD_CIDR:-10.213.0.0/24}
SERVICE_CIDR=${BFL_K8S_SERVICE_CIDR:-10.213.128.0/24}
GUARD_CIDR=${BFL_K8S_GUARD_CIDR:-10.213.0.0/16}
TEST_DOMAIN=${BFL_K8S_TEST_DOMAIN:-coralogix.test}
TEST_DOMAIN_NAMESPACE=${BFL_K8S_TEST_DOMAIN_NAMESPACE:-bfl-k8s-test}
WAIT=${BFL_K8S_WAIT:-120}
readonly BRIDGE=bflk8s0 GUARD_CHAIN=BFL-K8S-GUARD ACCEPT_COMMENT=bfl-k8s-cluster
readonly NODE_NAME=bfl-k8s-node RUN_DIR=/run/bfl-k8s
readonly ETCD_PORT=23790 ETCD_PEER_PORT=23791 APISERVER_PORT=26443 KUBELET_PORT=20250
readonly REGISTRY_PORT=25000 KUBELET_HEALTHZ_PORT=20248 PROXY_METRICS_PORT=20249
readonly PROXY_HEALTHZ_PORT=20246 CONTROLLER_PORT=20247 SCHEDULER_PORT=20245
readonly KUBE_TOOLS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd coredns registry)
readonly PAUSE_IMAGE=pause:3.10

usage() { sed -n '2,50s/^# \{0,1\}//p' scripts/k8s-cluster.sh; }

# ------------------------------------------------------------ addresses --

ip_to_int() {
    local a b c d
    IFS=. read -r a b c d <<<"$1"
    printf '%d\n' $(((a << 24) | (b << 16) | (c << 8) | d))
}
# cidr_range CIDR: its first and last address as integers.
cidr_range() {
    local ip=${1%/*} bits=${1#*/} start size
    [[ $1 =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$ ]] || die "'$1' is not an IPv4 CIDR"
    size=$((1 << (32 - bits)))
    start=$(($(ip_to_int "$ip") & ~(size - 1) & 0xffffffff))
    printf '%d %d\n' "$start" $((start + size - 1))
}
# overlaps CIDR CIDR
overlaps() {
    local a b c d
    read -r a b < <(cidr_range "$1")
    read -r c d < <(cidr_range "$2")
    ((a <= d && c <= b))
}
# inside CIDR OUTER
inside() {
    local a b c d
    read -r a b < <(cidr_range "$1")
    read -r c d < <(cidr_range "$2")
    ((a >= c && b <= d))
}
int_to_ip() { printf '%d.%d.%d.%d\n' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
nth_address() { # CIDR N
    local start
    read -r start _ < <(cidr_range "$1")
    int_to_ip $((start + $2))
}
NODE_IP=$(nth_address "$POD_CIDR" 1)
POD_PREFIX=${POD_CIDR#*/}
SERVICE_IP=$(nth_address "$SERVICE_CIDR" 1)

# ----------------------------------------------------------- the record --

# Every change made on the host is written to STATE/changes before it is made
# (kind and what), so `down` undoes exactly those, also after a killed run.
CHANGES=$STATE/changes
record() { printf '%s\n' "$*" >>"$CHANGES"; }

# -------------------------------------------------------------- helpers --

PIDS=$STATE/pids
pid_of() { cat "$PIDS/$1.pid" 2>/dev/null || true; }
# alive PID: the process exists and is not a zombie. Orphans are reaped by PID 1,
# which here takes about 2 s to do so; until then `kill -0` still succeeds.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}
running() { local pid; pid=$(pid_of "$1"); [[ -n $pid ]] && alive "$pid"; }

# start NAME COMMAND...: in the background, its own session, log STATE/logs/NAME.log.
start() {
    local name=$1
    shift
    setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
    printf '%s\n' "$!" >"$PIDS/$name.pid"
}

# wait_for WHAT SECONDS NAME COMMAND...: until COMMAND succeeds; NAME's exit ends it.
wait_for() {
    local what=$1 seconds=$2 name=$3 deadline
    shift 3
    deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [[ -n $name ]] && ! running "$name"; then
            tail -n 15 "$STATE/logs/$name.log" >&2 || true
            die "$name exited before $what (log: $STATE/logs/$name.log)"
        fi
        if ((SECONDS >= deadline)); then
            [[ -z $name ]] || tail -n 15 "$STATE/logs/$name.log" >&2 || true
            die "no $what after ${seconds}s${name:+ (log: $STATE/logs/$name.log)}"
        fi
        sleep 0.5
    done
}

kubectl_() { "$BIN_KUBECTL" --kubeconfig "$STATE/pki/admin.kubeconfig" "$@"; }

# ------------------------------------------------------------ preflight --

preflight() {
    [[ $(id -u) -eq 0 ]] || die "needs root (it runs containerd, the kubelet and kube-proxy, and changes routes and iptables)"
    [[ -d /sys/fs/cgroup ]] || die "no cgroups at /sys/fs/cgroup"
    command -v iptables >/dev/null 2>&1 || die "iptables is missing"
    local missing=() tool
    for tool in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins conntrack:conntrack openssl:openssl; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || [[ -x ${tool%%:*} ]] || missing+=("${tool#*:}")
    done
    if ((${#missing[@]})); then
        can_install || die "missing: ${missing[*]} (Debian packages): install them"
        apt_install_no_start "${missing[@]}"
    fi
    inside "$POD_CIDR" "$GUARD_CIDR" || die "BFL_K8S_POD_CIDR $POD_CIDR is not inside BFL_K8S_GUARD_CIDR $GUARD_CIDR"
    inside "$SERVICE_CIDR" "$GUARD_CIDR" || die "BFL_K8S_SERVICE_CIDR $SERVICE_CIDR is not inside BFL_K8S_GUARD_CIDR $GUARD_CIDR"
    ! overlaps "$POD_CIDR" "$SERVICE_CIDR" || die "the pod range $POD_CIDR and the service range $SERVICE_CIDR overlap"
    # Nothing on the host may already route or own any of the guarded range.
    local line dest
    while read -r line; do
        dest=${line%% *}
        [[ $dest == default ]] && continue
        [[ $dest == */* ]] || dest=$dest/32
        [[ $dest =~ ^[0-9.]+/[0-9]+$ ]] || continue
        if overlaps "$dest" "$GUARD_CIDR"; then die "the host has a route that overlaps $GUARD_CIDR: $line (pick another BFL_K8S_GUARD_CIDR, POD_CIDR and SERVICE_CIDR)"; fi
    done < <(ip -4 route show table all | sed -E 's/^(unicast|local|broadcast|blackhole|unreachable|prohibit|throw) //')
    while read -r dest; do
        if overlaps "$dest" "$GUARD_CIDR"; then die "the host has an address in $GUARD_CIDR: $dest"; fi
    done < <(ip -4 -o addr show | awk '{ print $4 }')
    local saved
    saved=$(iptables-save 2>/dev/null)
    if grep -qE '^:KUBE-' <<<"$saved"; then
        die "iptables already has KUBE-* chains: another Kubernetes (k3s?) runs on this host, and this cluster's kube-proxy would share them; stop it first"
    fi
    local port
    for port in $ETCD_PORT $ETCD_PEER_PORT $APISERVER_PORT $KUBELET_PORT $REGISTRY_PORT $KUBELET_HEALTHZ_PORT $PROXY_METRICS_PORT $PROXY_HEALTHZ_PORT $CONTROLLER_PORT $SCHEDULER_PORT 53; do
        if ss -Hltn "sport = :$port" | grep -q .; then die "port $port is taken: $(ss -Hltnp "sport = :$port" | head -n 1)"; fi
    done
}

# --------------------------------------------------------------- the guard --

guard_rules() { # the mangle rules, as iptables arguments after -A CHAIN
    printf '%s\n' "-s $GUARD_CIDR -o lo -j RETURN" "-d $GUARD_CIDR -o lo -j RETURN" \
        "-s $GUARD_CIDR -o $BRIDGE -j RETURN" "-d $GUARD_CIDR -o $BRIDGE -j RETURN" \
        "-s $GUARD_CIDR -j DROP" "-d $GUARD_CIDR -j DROP"
}

guard_up() {
    record "route blackhole $GUARD_CIDR"
    ip route replace blackhole "$GUARD_CIDR"
    record "bridge $BRIDGE"
    ip link add "$BRIDGE" type bridge 2>/dev/null || true
    ip addr replace "$NODE_IP/$POD_PREFIX" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    record "iptables mangle $GUARD_CHAIN"
    iptables -w -t mangle -N "$GUARD_CHAIN" 2>/dev/null || iptables -w -t mangle -F "$GUARD_CHAIN"
    local rule
    while read -r rule; do
        # shellcheck disable=SC2086 # the rule's words
        iptables -w -t mangle -A "$GUARD_CHAIN" $rule
    done < <(guard_rules)
    local chain
    for chain in FORWARD OUTPUT; do
        iptables -w -t mangle -C "$chain" -j "$GUARD_CHAIN" 2>/dev/null || iptables -w -t mangle -I "$chain" 1 -j "$GUARD_CHAIN"
    done
    # Docker sets the filter table's FORWARD policy to DROP: pod-to-pod traffic across
    # the bridge (br_netfilter) and pod-to-Service traffic needs these, appended after
    # Docker's and kube-proxy's chains. The guard above has dropped anything leaving.
    # The kubelet and kube-proxy add KUBE-* chains (preflight: none existed before).
    record "kube-chains"
    record "iptables filter FORWARD accept $GUARD_CIDR"
    for rule in "-s $GUARD_CIDR" "-d $GUARD_CIDR"; do
        # shellcheck disable=SC2086
        iptables -w -C FORWARD $rule -m comment --comment "$ACCEPT_COMMENT" -j ACCEPT 2>/dev/null ||
            iptables -w -A FORWARD $rule -m comment --comment "$ACCEPT_COMMENT" -j ACCEPT
    done
    local sysctl
    for sysctl in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables; do
        record "sysctl $sysctl $(sysctl -n "$sysctl")"
        sysctl -qw "$sysctl=1"
    done
}

# guard_check: the guard is in place; dies naming what is not.
guard_check() {
    local chain first
    ip route show type blackhole | grep -qE "^blackhole ${GUARD_CIDR//./\\.} *$" || die "guard: no blackhole route for $GUARD_CIDR"
    for chain in FORWARD OUTPUT; do
        first=$(iptables -w -t mangle -S "$chain" | sed -n 2p)
        [[ $first == "-A $chain -j $GUARD_CHAIN" ]] || die "guard: the first rule of mangle $chain is '$first', not the jump to $GUARD_CHAIN"
    done
    diff <(guard_rules | sed "s/^/-A $GUARD_CHAIN /") <(iptables -w -t mangle -S "$GUARD_CHAIN" | sed 1d | sed -E 's/ (\/32)?$//') >/dev/null ||
        die "guard: the chain $GUARD_CHAIN is not as set up: $(iptables -w -t mangle -S "$GUARD_CHAIN" | paste -sd ';')"
    # An address of the service range with nothing behind it: the kernel must refuse.
    local probe
    probe=$(nth_address "$SERVICE_CIDR" 200)
    if ip route get "$probe" 2>/dev/null | grep -q ' via \| dev '; then
        die "guard: $probe (service range) is routed: $(ip route get "$probe" | head -n 1)"
    fi
    printf 'guard: blackhole %s; mangle FORWARD and OUTPUT begin with %s (drops %s leaving except via %s or lo); %s has no route\n' \
        "$GUARD_CIDR" "$GUARD_CHAIN" "$GUARD_CIDR" "$BRIDGE" "$probe"
}

# ------------------------------------------------------------------- PKI --

pki() {
    local dir=$STATE/pki name
    mkdir -p "$dir"
    (
        cd "$dir"
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=bfl-k8s-test-ca" -keyout ca.key -out ca.crt 2>/dev/null
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
        openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
        # name CN O [SAN]
        # cert NAME CN O [SAN]: a key and a certificate signed by the CA.
        cert() {
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2${3:+/O=$3}" \
                -keyout "$1.key" -out "$1.csr" 2>/dev/null
            {
                printf 'extendedKeyUsage=serverAuth,clientAuth\n'
                [[ -z ${4:-} ]] || printf 'subjectAltName=%s\n' "$4"
            } >"$1.ext"
            openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                -extfile "$1.ext" -out "$1.crt" 2>/dev/null
            rm -f "$1.csr" "$1.ext"
        }
        cert apiserver kube-apiserver "" "IP:$NODE_IP,IP:$SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
        # One throwaway identity for every component (and the tests): a member of
        # system:masters. This cluster lives for one test run on loopback.
        cert admin bfl-k8s-admin system:masters
        cert kubelet "system:node:$NODE_NAME" system:nodes "IP:$NODE_IP,DNS:$NODE_NAME"
    )
    cat >"$dir/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: bfl-k8s
    cluster:
      server: https://$NODE_IP:$APISERVER_PORT
      certificate-authority: $dir/ca.crt
users:
  - name: admin
    user:
      client-certificate: $dir/admin.crt
      client-key: $dir/admin.key
contexts:
  - name: bfl-k8s
    context: { cluster: bfl-k8s, user: admin }
current-context: bfl-k8s
EOF
}

# ------------------------------------------------------------- configs --

write_configs() {
    mkdir -p "$STATE/containerd/certs.d/_default" "$STATE/cni/net.d" "$STATE/cni/ipam" "$STATE/kubelet" "$STATE/volumes" "$RUN_DIR"
    # Every registry, whatever its name, is the local one: containerd never
    # contacts another host.
    cat >"$STATE/containerd/certs.d/_default/hosts.toml" <<EOF
server = "http://127.0.0.1:$REGISTRY_PORT"

[host."http://127.0.0.1:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
EOF
    cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$RUN_DIR/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$RUN_DIR/containerd/containerd.sock"

[ttrpc]
  address = "$RUN_DIR/containerd/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "127.0.0.1:$REGISTRY_PORT/$PAUSE_IMAGE"
  # This VM cannot lower a process's OOM score: without this, no pod starts.
  restrict_oom_score_adj = true
  netns_mounts_under = "$RUN_DIR/netns"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "$STATE/cni/net.d"

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "$STATE/containerd/certs.d"
EOF
    # No masquerade: nothing in the cluster talks to anything outside it.
    cat >"$STATE/cni/net.d/10-bfl-k8s.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "bfl-k8s",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$NODE_IP", "rangeStart": "$(nth_address "$POD_CIDR" 10)" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
    # Pods resolve through CoreDNS only; the host's resolvers are never handed out.
    : >"$STATE/kubelet/resolv.conf"
    cat >"$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: false }
  x509: { clientCAFile: $STATE/pki/ca.crt }
authorization: { mode: AlwaysAllow }
tlsCertFile: $STATE/pki/kubelet.crt
tlsPrivateKeyFile: $STATE/pki/kubelet.key
cgroupDriver: cgroupfs
cgroupRoot: /bfl-k8s
failCgroupV1: false
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: $STATE/kubelet/resolv.conf
containerRuntimeEndpoint: unix://$RUN_DIR/containerd/containerd.sock
imageServiceEndpoint: unix://$RUN_DIR/containerd/containerd.sock
serializeImagePulls: false
maxPods: 40
evictionHard: { memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1% }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: false
protectKernelDefaults: false
makeIPTablesUtilChains: true
EOF
    cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: $STATE/pki/admin.kubeconfig }
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
hostnameOverride: $NODE_NAME
nodePortAddresses: ["$NODE_IP/32"]
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
iptables: { masqueradeAll: false }
EOF
    # CoreDNS: the cluster's zone from the API, the test domain rewritten to a
    # Service, and nothing forwarded anywhere.
    cat >"$STATE/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 $TEST_DOMAIN:53 {
    bind $NODE_IP
    errors
    rewrite name regex ^([^.]+)\.(.+\.)?${TEST_DOMAIN//./\\.}\.\$ {1}.$TEST_DOMAIN_NAMESPACE.svc.cluster.local. answer auto
    kubernetes cluster.local in-addr.arpa {
        kubeconfig $STATE/pki/admin.kubeconfig bfl-k8s
        pods insecure
        fallthrough in-addr.arpa
    }
    cache 5
}
.:53 {
    bind $NODE_IP
    errors
}
EOF
    cat >"$STATE/registry.yaml" <<EOF
version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage:
  filesystem: { rootdirectory: $STATE/registry }
  delete: { enabled: true }
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
}

# -------------------------------------------------------------- start --

start_all() {
    local pki=$STATE/pki
    start registry "$BIN_REGISTRY" serve "$STATE/registry.yaml"
    wait_for "registry on 127.0.0.1:$REGISTRY_PORT" 30 registry curl -sf "http://127.0.0.1:$REGISTRY_PORT/v2/"
    push_pause
    start containerd containerd --config "$STATE/containerd/config.toml"
    wait_for "containerd" 30 containerd ctr -a "$RUN_DIR/containerd/containerd.sock" version
    start etcd "$BIN_ETCD" --name bfl-k8s --data-dir "$STATE/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "bfl-k8s=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" \
        --quota-backend-bytes 1073741824 --log-level warn
    wait_for "etcd" 30 etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"
    start kube-apiserver "$BIN_APISERVER" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
        --service-cluster-ip-range "$SERVICE_CIDR" --service-node-port-range 30000-30100 \
        --client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
        --kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key" \
        --kubelet-preferred-address-types InternalIP \
        --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --authorization-mode Node,RBAC --allow-privileged=true --enable-priority-and-fairness=false \
        --profiling=false --event-ttl 30m
    wait_for "kube-apiserver" 90 kube-apiserver kubectl_ get --raw /readyz
    start kube-controller-manager "$BIN_CONTROLLER" --kubeconfig "$pki/admin.kubeconfig" \
        --authentication-kubeconfig "$pki/admin.kubeconfig" --authorization-kubeconfig "$pki/admin.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port "$CONTROLLER_PORT" --leader-elect=false \
        --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" --use-service-account-credentials \
        --cluster-cidr "$POD_CIDR" --service-cluster-ip-range "$SERVICE_CIDR" --controllers '*,-nodeipam' \
        --profiling=false
    start kube-scheduler "$BIN_SCHEDULER" --kubeconfig "$pki/admin.kubeconfig" \
        --authentication-kubeconfig "$pki/admin.kubeconfig" --authorization-kubeconfig "$pki/admin.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false --profiling=false
    mkdir -p "$STATE/kubelet/root"
    cgroups
    start kubelet "$BIN_KUBELET" --config "$STATE/kubelet/config.yaml" --kubeconfig "$pki/admin.kubeconfig" \
        --root-dir "$STATE/kubelet/root" --cert-dir "$STATE/kubelet/pki" --hostname-override "$NODE_NAME" \
        --node-ip "$NODE_IP"
    start kube-proxy "$BIN_PROXY" --config "$STATE/kube-proxy.yaml"
    start coredns "$BIN_COREDNS" -conf "$STATE/Corefile" -dns.port 53
    wait_for "node $NODE_NAME Ready" "$WAIT" kubelet \
        sh -c "'$BIN_KUBECTL' --kubeconfig '$pki/admin.kubeconfig' get node $NODE_NAME -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
    wait_for "the default ServiceAccount" 60 kube-controller-manager kubectl_ get serviceaccount default -n default
    storage
}

# The kubelet's cgroupRoot, /bfl-k8s, in every hierarchy (cgroup v1 here): every pod
# lives under it, and `down` finds (and kills) what is left there.
cgroups() {
    local dir
    record "cgroup /bfl-k8s"
    for dir in /sys/fs/cgroup/*/; do
        [[ -e $dir/cgroup.procs && ! -e $dir/bfl-k8s ]] || continue
        mkdir "$dir/bfl-k8s"
        if [[ -e $dir/cpuset.cpus ]]; then
            cat "$dir/cpuset.cpus" >"$dir/bfl-k8s/cpuset.cpus"
            cat "$dir/cpuset.mems" >"$dir/bfl-k8s/cpuset.mems"
        fi
    done
    if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then mkdir -p /sys/fs/cgroup/bfl-k8s; fi
}

# The pause image, built here: Kubernetes's own pause.c from the module source,
# compiled static, in an image FROM scratch, pushed to the local registry.
push_pause() {
    local src dir
    src=$(cd tools/go/kubernetes && GOWORK=off go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
    [[ -f $src ]] || die "pause.c is missing from the Kubernetes module ($src)"
    dir=$STATE/pause-build
    mkdir -p "$dir"
    gcc -Os -static -DVERSION=v3.10-bfl -o "$dir/pause" "$src" || die "cannot compile $src (needs gcc and libc6-dev)"
    printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$dir/Dockerfile"
    DOCKER_BUILDKIT=0 docker build -q -t "127.0.0.1:$REGISTRY_PORT/$PAUSE_IMAGE" "$dir" >"$STATE/logs/pause-build.log" 2>&1 ||
        { cat "$STATE/logs/pause-build.log" >&2; die "docker build of the pause image failed"; }
    record "docker image 127.0.0.1:$REGISTRY_PORT/$PAUSE_IMAGE"
    docker push -q "127.0.0.1:$REGISTRY_PORT/$PAUSE_IMAGE" >/dev/null
}

# A default StorageClass `local-path` (k3s's name) with hostPath volumes made here.
storage() {
    local i
    {
        cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: { storageclass.kubernetes.io/is-default-class: "true" }
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
EOF
        for i in 1 2 3 4; do
            mkdir -p "$STATE/volumes/pv$i"
            cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: { name: local-path-pv$i }
spec:
  capacity: { storage: 2Gi }
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local-path
  hostPath: { path: $STATE/volumes/pv$i, type: DirectoryOrCreate }
EOF
        done
    } | kubectl_ apply -f - >/dev/null
}

print_env() {
    printf 'KUBECONFIG=%s\nKUBECTL=%s\nREGISTRY=127.0.0.1:%s\nNODE_IP=%s\nSTATE=%s\n' \
        "$STATE/pki/admin.kubeconfig" "$BIN_KUBECTL" "$REGISTRY_PORT" "$NODE_IP" "$STATE"
}

resolve_binaries() {
    local line
    declare -gA BIN=()
    while IFS= read -r line; do BIN[${line%%: *}]=${line#*: }; done < <(bash scripts/build-go-tools.sh --print-path "${KUBE_TOOLS[@]}")
    BIN_APISERVER=${BIN[kube-apiserver]} BIN_CONTROLLER=${BIN[kube-controller-manager]} BIN_SCHEDULER=${BIN[kube-scheduler]}
    BIN_KUBELET=${BIN[kubelet]} BIN_PROXY=${BIN[kube-proxy]} BIN_KUBECTL=${BIN[kubectl]} BIN_ETCD=${BIN[etcd]}
    BIN_COREDNS=${BIN[coredns]} BIN_REGISTRY=${BIN[registry]}
}

up() {
    local started=$SECONDS
    if [[ -e $CHANGES || -d $PIDS ]]; then
        log "a previous cluster's state is in $STATE: tearing it down first"
        down
    fi
    preflight
    local tool
    for tool in "${KUBE_TOOLS[@]}"; do
        [[ -x ${BIN[$tool]:-} ]] || die "$tool is not built: run npm run test-tools (scripts/build-go-tools.sh k8s)"
    done
    if ! docker info >/dev/null 2>&1; then die "a Docker engine must answer (scripts/docker-engine.sh): images are built and pushed with it"; fi
    mkdir -p "$STATE/logs" "$PIDS"
    : >>"$CHANGES"
    record "state $STATE"
    record "run $RUN_DIR"
    guard_up
    guard_check
    pki
    write_configs
    start_all
    log "up in $((SECONDS - started))s: node $NODE_NAME Ready, Kubernetes $("$BIN_KUBECTL" version --client -o json | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p' | head -n 1)"
    print_env
}

# ---------------------------------------------------------------- down --

undo() { printf '%s: undo: %s\n' "$LOG_PREFIX" "$*"; }

stop_processes() {
    local name pid
    # The kubelet first (it would restart what is killed), the registry last.
    for name in kubelet kube-proxy coredns kube-scheduler kube-controller-manager kube-apiserver etcd containerd registry; do
        pid=$(pid_of "$name")
        [[ -n $pid ]] || continue
        if alive "$pid"; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            undo "stopped $name (pid $pid)"
        fi
        rm -f "$PIDS/$name.pid"
    done
    # Every container: the processes in the pods' cgroups (under the kubelet's
    # cgroupRoot, any depth), until none is left; then containerd's shims.
    local procs killed=0 round
    for round in 1 2 3 4 5 6 7 8 9 10; do
        procs=$(find /sys/fs/cgroup/*/bfl-k8s -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u || true)
        [[ -n $procs ]] || break
        # shellcheck disable=SC2086
        kill -9 $procs 2>/dev/null || true
        killed=$((killed + $(wc -w <<<"$procs")))
        sleep 0.3
    done
    ((killed == 0)) || undo "killed the containers' processes ($killed pids, $round rounds)"
    procs=$(pgrep -f "containerd-shim-runc-v2 .*-address $RUN_DIR/containerd/containerd.sock" || true)
    if [[ -n $procs ]]; then
        # shellcheck disable=SC2086
        kill -9 $procs 2>/dev/null || true
        undo "killed $(wc -w <<<"$procs") containerd shims"
    fi
    sleep 0.5
}

remove_cgroups() {
    local dir count=0
    for dir in /sys/fs/cgroup/*/bfl-k8s; do
        [[ -d $dir ]] || continue
        while IFS= read -r sub; do rmdir "$sub" 2>/dev/null && count=$((count + 1)); done < <(find "$dir" -depth -type d)
    done
    ((count == 0)) || undo "removed $count cgroups under /bfl-k8s"
}

unmount_all() {
    local mounts
    mapfile -t mounts < <(awk -v s="$STATE" -v r="$RUN_DIR" 'index($2, s) == 1 || index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r)
    local m
    for m in "${mounts[@]}"; do
        m=$(printf '%b' "$m") # /proc/self/mounts escapes spaces as \040
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    ((${#mounts[@]} == 0)) || undo "unmounted ${#mounts[@]} mounts under $STATE and $RUN_DIR"
}

down() {
    local line kind rest
    if [[ ! -e $CHANGES && ! -d $PIDS ]]; then
        log "nothing to tear down ($STATE has no record of a cluster)"
        return 0
    fi
    stop_processes
    unmount_all
    remove_cgroups
    # Undo the recorded changes, newest first.
    if [[ -e $CHANGES ]]; then
        while read -r kind rest; do
            case $kind in
                route)
                    local words
                    read -ra words <<<"$rest"
                    if ip route del "${words[@]}" 2>/dev/null; then undo "deleted route $rest"; fi
                    ;;
                bridge)
                    local veth
                    for veth in $(ip -o link show master "$rest" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
                        ip link del "$veth" 2>/dev/null || true
                    done
                    if ip link del "$rest" 2>/dev/null; then undo "deleted the bridge $rest and its veths"; fi
                    ;;
                iptables)
                    read -r table what <<<"$rest"
                    if [[ $table == mangle ]]; then
                        local chain
                        for chain in FORWARD OUTPUT; do
                            while iptables -w -t mangle -D "$chain" -j "$what" 2>/dev/null; do :; done
                        done
                        iptables -w -t mangle -F "$what" 2>/dev/null || true
                        if iptables -w -t mangle -X "$what" 2>/dev/null; then undo "deleted the guard chain mangle $what and its jumps"; fi
                    else
                        local cidr=${what##* } rule
                        for rule in "-s $cidr" "-d $cidr"; do
                            # shellcheck disable=SC2086
                            while iptables -w -D FORWARD $rule -m comment --comment "$ACCEPT_COMMENT" -j ACCEPT 2>/dev/null; do :; done
                        done
                        undo "deleted the filter FORWARD accept rules for $cidr"
                    fi
                    ;;
                sysctl)
                    read -r name value <<<"$rest"
                    sysctl -qw "$name=$value" 2>/dev/null && undo "restored $name=$value"
                    ;;
                docker)
                    read -r _ image <<<"$rest"
                    docker image rm -f "$image" >/dev/null 2>&1 && undo "removed the Docker tag $image"
                    ;;
                run) rm -rf "$rest" && undo "removed $rest" ;;
                state | kube-chains | cgroup) ;; # below, and above
            esac
        done < <(tac "$CHANGES")
    fi
    # kube-proxy's and the kubelet's iptables chains (none existed before: up checks).
    # (iptables-save into a variable first: grep -q would end the pipe early.)
    local saved
    saved=$(iptables-save)
    if [[ -e $CHANGES ]] && grep -q '^kube-chains' "$CHANGES" && grep -qE '^:KUBE-' <<<"$saved"; then
        local table chain
        for table in filter nat mangle; do
            iptables-save -t "$table" | sed -n 's/^-A \([A-Z-]*\) \(.*-j KUBE-.*\)$/\1 \2/p' | while read -r chain rule; do
                # shellcheck disable=SC2086
                eval "iptables -w -t $table -D $chain $rule" 2>/dev/null || true
            done
            for chain in $(iptables-save -t "$table" | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do iptables -w -t "$table" -F "$chain" 2>/dev/null || true; done
            for chain in $(iptables-save -t "$table" | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do iptables -w -t "$table" -X "$chain" 2>/dev/null || true; done
        done
        undo "deleted kube-proxy's and the kubelet's KUBE-* iptables chains"
    fi
    rm -rf "$STATE"
    undo "removed $STATE (etcd, containerd's images and containers, the registry's data, PKI, logs)"
}

status() {
    local name
    for name in registry containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do
        if running "$name"; then printf '%s: running (pid %s)\n' "$name" "$(pid_of "$name")"; else printf '%s: not running\n' "$name"; fi
    done
    # In a subshell: a guard that is not in place is reported, and status goes on.
    if [[ -e $CHANGES ]]; then (guard_check) || true; fi
}

case ${1:-} in
    up) resolve_binaries; up ;;
    down) down ;;
    status) status ;;
    env) resolve_binaries; print_env ;;
    guard-check) guard_check ;;
    -h | --help | '') usage ;;
    *) die "unknown command: $1 (see --help)" ;;
esac
