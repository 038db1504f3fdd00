// Command orchestrator deploys the platform from one stack spec, to Docker
// Compose on one host (Phase 1) or to Kubernetes with OpenTofu (Phase 2).
package main

import (
	"os"

	"github.com/aipairpro/orchestrator/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
