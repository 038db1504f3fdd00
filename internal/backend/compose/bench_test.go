package compose_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/backend/compose"
	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/spec"
	"github.com/aipairpro/orchestrator/internal/state"
)

func bigSpec(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nname: bench\ndomain: bench.example.com\napp: {image: ghcr.io/acme/app:1.0.0, database: true}\nservices:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  svc-%04d: {image: ghcr.io/acme/worker:1.0.%d, port: 8080, health: /healthz, env: {SHARD: \"%d\"}}\n", i, i%7, i)
	}
	return []byte(b.String())
}

// BenchmarkRender measures spec -> model -> compose bytes (no disk writes
// of output) for the platform example and for generated specs.
func BenchmarkRender(b *testing.B) {
	platform := examplesB(b)
	cases := map[string][]byte{"platform": platform, "services-100": bigSpec(100), "services-500": bigSpec(500)}
	for _, name := range []string{"platform", "services-100", "services-500"} {
		b.Run(name, func(b *testing.B) {
			store, err := state.Open(filepath.Join(b.TempDir(), "state"))
			require.NoError(b, err)
			out := b.TempDir()
			b.ReportAllocs()
			for b.Loop() {
				st, ds := spec.Load("stack.yaml", cases[name])
				if ds.HasErrors() {
					b.Fatal(ds)
				}
				if _, ds := engine.Render(context.Background(), st, engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: out, DryRun: true}); ds.HasErrors() {
					b.Fatal(ds)
				}
			}
		})
	}
}

func examplesB(b *testing.B) []byte {
	st, src, ds := spec.LoadFile("../../../examples/platform/stack.yaml")
	if ds.HasErrors() || st == nil {
		b.Fatal(ds)
	}
	return src["../../../examples/platform/stack.yaml"]
}
