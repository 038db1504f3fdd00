package kubernetes_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/backend/kubernetes"
)

// TestExamplesGolden renders every example and compares each file, and the
// decisions (decisions.txt), with its golden copy
// (go test ./internal/backend/kubernetes -update rewrites them).
func TestExamplesGolden(t *testing.T) {
	for _, f := range examples(t) {
		t.Run(exampleName(f), func(t *testing.T) {
			r := renderWith(t, f, t.TempDir(), true, kubernetes.Options{})
			dir := filepath.Join("testdata", "golden", r.name)
			want := map[string][]byte{"decisions.txt": []byte(report(r.arts))}
			for _, file := range r.arts.Files {
				want[file.Path] = file.Content
			}
			if updating() {
				require.NoError(t, os.RemoveAll(dir))
				require.NoError(t, os.MkdirAll(dir, 0o755))
				for path, content := range want {
					require.NoError(t, os.WriteFile(filepath.Join(dir, path), content, 0o644))
				}
				return
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err, "missing golden files: run go test ./internal/backend/kubernetes -update")
			for _, e := range entries {
				_, ok := want[e.Name()]
				assert.True(t, ok, "golden file %s is no longer rendered", e.Name())
			}
			for path, content := range want {
				golden, err := os.ReadFile(filepath.Join(dir, path))
				require.NoError(t, err, "missing golden file: run go test ./internal/backend/kubernetes -update")
				assert.Equal(t, string(golden), string(content), "%s differs from its golden file", path)
			}
		})
	}
}
