// Command coredns is CoreDNS with only the plugins the test cluster's Corefile
// uses (scripts/k8s-cluster.sh): bind, errors, rewrite, kubernetes and cache.
// Upstream's command compiles every plugin, among them the Route 53, Azure and
// Cloud DNS ones with their SDKs and the Datadog tracer, which the cluster never
// uses. A directive of any other plugin in the Corefile is refused at start
// ("Unknown directive"). The plugins run in the order CoreDNS fixes
// (core/dnsserver/zdirectives.go), not the order of these imports.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/rewrite"
)

func main() {
	coremain.Run()
}
