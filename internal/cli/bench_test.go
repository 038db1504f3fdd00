package cli

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkRenderCommand runs `orchestrator render` in-process on a
// generated 500-service spec: the whole command path, warm.
func BenchmarkRenderCommand(b *testing.B) {
	dir := b.TempDir()
	out, err := exec.Command("go", "run", "../../hack/genspec", "-n", "500").Output()
	if err != nil {
		b.Fatal(err)
	}
	spec := filepath.Join(dir, "stack.yaml")
	if err := os.WriteFile(spec, out, 0o644); err != nil {
		b.Fatal(err)
	}
	args := []string{"render", "-f", spec, "-o", filepath.Join(dir, "out")}
	ios := &IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}
	if code := Run(context.Background(), args, ios); code != 0 {
		b.Fatalf("exit %d", code)
	}
	for b.Loop() {
		if code := Run(context.Background(), args, ios); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}
