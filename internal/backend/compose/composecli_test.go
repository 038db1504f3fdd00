package compose_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// composeVersion is the Docker Compose module this project builds against;
// the CLI built from it is the reference consumer of our files.
const composeVersion = "v5.6.0"

// composeCLI returns the path of a docker-compose binary built from the
// module in go.mod, building it once per machine into the user cache.
// It never skips: without the real consumer the claim is unproven.
func composeCLI(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	bin := filepath.Join(cache, "orchestrator", "testenv", "docker-compose-"+composeVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(bin), 0o755))
	t.Logf("building docker compose %s into %s (once per machine, ~2 minutes)", composeVersion, bin)
	tmp := bin + ".tmp"
	cmd := exec.Command("go", "build", "-o", tmp, "github.com/docker/compose/v5/cmd")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build docker compose: %s", out)
	require.NoError(t, os.Rename(tmp, bin))
	return bin
}

// TestExamplesPassDockerComposeConfig runs `docker compose config -q` (the
// real compose CLI) on every rendered example.
func TestExamplesPassDockerComposeConfig(t *testing.T) {
	bin := composeCLI(t)
	for _, f := range examples(t) {
		r := renderExample(t, f, t.TempDir())
		t.Run(r.name, func(t *testing.T) {
			cmd := exec.Command(bin, "-f", filepath.Join(r.outDir, "docker-compose.yml"), "config", "-q")
			cmd.Dir = r.outDir
			cmd.Env = append(os.Environ(), "OPENAI_API_KEY=sk-from-env")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "docker compose config: %s", out)
			require.Empty(t, string(out), "docker compose config printed warnings")
		})
	}
}
