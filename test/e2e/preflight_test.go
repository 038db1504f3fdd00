package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// throughSSH starts the test SSH server, puts its ssh wrapper first on PATH
// and points DOCKER_HOST nowhere, so only a spec's phase1.host reaches the
// engine. It returns that host, ssh://...
func throughSSH(t *testing.T) string {
	t.Helper()
	host, path := sshHost(t)
	t.Setenv("PATH", path+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("DOCKER_HOST", "unix:///nonexistent.sock")
	return host
}

var renderedService = regexp.MustCompile(`^  ([a-z0-9][a-z0-9-]*):$`)

// withStandIns adds an override to the web stand-in for every service the
// spec renders to, so that nothing needs a registry, whatever the catalog
// adds to a component.
func withStandIns(t *testing.T, dir, spec string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(spec), 0o644))
	r := orch(t, dir, "render", "--phase=1")
	require.Equal(t, 0, r.code, r.stderr)
	b, err := os.ReadFile(filepath.Join(dir, "rendered", "phase1", "docker-compose.yml"))
	require.NoError(t, err)
	spec += "overrides:\n"
	inServices := false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, " ") && line != "" {
			inServices = line == "services:"
			continue
		}
		if m := renderedService.FindStringSubmatch(line); inServices && m != nil {
			spec += fmt.Sprintf("  %s: {image: %q}\n", m[1], webImage)
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(spec), 0o644))
	return spec
}

// TestPreflightRemoteMaxMapCount: on a remote engine (through SSH), preflight
// reads the host's vm.max_map_count with a short-lived container and judges
// it as on a local one, instead of reporting it unknown.
func TestPreflightRemoteMaxMapCount(t *testing.T) {
	const name = "e2epfl"
	b, err := os.ReadFile("/proc/sys/vm/max_map_count")
	require.NoError(t, err)
	var actual int
	_, err = fmt.Sscan(string(b), &actual)
	require.NoError(t, err)

	host := throughSSH(t)
	spec := fmt.Sprintf(`version: 1
name: %s
domain: %s.localhost
tls: {mode: internal}
phase1: {host: "%s", http_port: %d, https_port: %d}
components:
  tracardi: {enabled: true}
`, name, name, host, freePort(t), freePort(t))
	dir := newStack(t, spec)
	withStandIns(t, dir, spec)

	r := orch(t, dir, "up", "--progress", "plain", "--wait-timeout", "3m")
	assert.Contains(t, r.stderr, "Preflight: Docker ")
	assert.Contains(t, r.stderr, " at "+host+",")
	assert.NotContains(t, r.stderr, "could not be read")
	if actual < 262144 {
		assert.Equal(t, 1, r.code, r.stdout+r.stderr)
		assert.Contains(t, r.stderr, fmt.Sprintf("Preflight error (vm.max_map_count): vm.max_map_count is %d; Elasticsearch (tracardi-elasticsearch) needs at least 262144\n", actual))
		assert.Contains(t, r.stderr, "  fix: sudo sysctl -w vm.max_map_count=262144 && echo vm.max_map_count=262144 | sudo tee /etc/sysctl.d/99-elasticsearch.conf\n")
		assert.Contains(t, r.stderr, "preflight failed")
		assert.Empty(t, containerIDs(t, name), "a failed preflight applied something")
	} else {
		assert.Contains(t, r.stderr, fmt.Sprintf("Preflight: vm.max_map_count is %d on the engine's host (Elasticsearch needs at least 262144).\n", actual))
		assert.NotContains(t, r.stderr, "Preflight error (vm.max_map_count)")
		assert.NotContains(t, r.stderr, "preflight failed")
	}
	assert.Empty(t, docker(t, "ps", "-aq", "--filter", "label=dev.orchestrator.helper"), "a helper container was left behind")
}
