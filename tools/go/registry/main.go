// The `registry` command of github.com/distribution/distribution/v3, cut down
// to what scripts/k8s-cluster.sh runs (`registry serve CONFIG` with a
// filesystem storage section, and `registry --version`): the same cobra root
// command as upstream's cmd/registry, with the filesystem storage driver as
// the only one registered (no Azure, GCS or S3 SDKs to compile), and no
// auth, in-memory driver, storage middleware or pprof handlers.
package main

import (
	"os"

	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

func main() {
	// serve and garbage-collect exit on their own errors; this is cobra's
	// (an unknown command or flag), which it has already printed.
	if err := registry.RootCmd.Execute(); err != nil {
		os.Exit(1)
	}
}
