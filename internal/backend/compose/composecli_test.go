package compose_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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
			require.Empty(t, withoutFalseWarnings(t, string(out)), "docker compose config printed warnings")
		})
	}
}

// modeWarning is compose's warning for uid, gid or mode on a service's
// secret, which it prints whatever the secret's source.
var modeWarning = regexp.MustCompile(`^time="[^"]*" level=warning msg="service \\"[^"\\]+\\": secrets\.[^.]+\.(uid|gid|mode): (uid|gid|mode) is not supported outside Swarm mode and will be ignored"$`)

// withoutFalseWarnings drops compose's uid/gid/mode warnings: they hold
// for secrets bind-mounted from a file, not for ours, whose source is
// `environment:` and which compose writes into the container with that
// owner and mode (pkg/compose/secrets.go, createTar; the e2e test checks
// the mode and owner of such a file inside its container).
func withoutFalseWarnings(t *testing.T, out string) string {
	t.Helper()
	var kept []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" && !modeWarning.MatchString(line) {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}
