// Command genspec writes a stack spec with N custom services, for the
// render benchmarks: go run ./hack/genspec -n 500 > big.yaml
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
)

func main() {
	n := flag.Int("n", 500, "number of custom services")
	flag.Parse()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "version: 1\nname: bench\ndomain: bench.example.com\n")
	fmt.Fprintf(w, "app: {image: ghcr.io/acme/pair-orchestrator:1.4.2, database: true}\n")
	fmt.Fprintf(w, "components:\n  kestra: {enabled: true}\n  portainer: {enabled: true}\n")
	fmt.Fprintf(w, "services:\n")
	for i := 0; i < *n; i++ {
		db := ""
		if i%10 == 0 {
			db = ", database: true"
		}
		fmt.Fprintf(w, "  svc-%04d: {image: ghcr.io/acme/worker:1.4.%d, command: [worker, --shard, \"%d\"], port: 8080, health: /healthz, env: {SHARD: \"%d\", LOG_LEVEL: info}%s}\n", i, i%7, i, i, db)
	}
}
