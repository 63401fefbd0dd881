// Command velero is Velero's own CLI, built from its Go module for the test harness, with one addition:
// controller-runtime's metrics listener (a package default of ":8080" that Velero's node-agent exposes no flag
// for) binds where VELERO_CR_METRICS_ADDRESS says, so that several node-agents can share one host.
// Unset means "127.0.0.1:0" (any free loopback port); "0" turns the listener off.
package main

import (
	"os"
	"path/filepath"

	"github.com/vmware-tanzu/velero/pkg/cmd"
	"github.com/vmware-tanzu/velero/pkg/cmd/velero"
	"k8s.io/klog/v2"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

const metricsAddressEnv = "VELERO_CR_METRICS_ADDRESS"

func main() {
	metricsserver.DefaultBindAddress = "127.0.0.1:0"
	if addr, ok := os.LookupEnv(metricsAddressEnv); ok {
		metricsserver.DefaultBindAddress = addr
	}

	root := velero.NewCommand(filepath.Base(os.Args[0]))
	err := root.Execute()
	klog.Flush()
	cmd.CheckError(err)
}
