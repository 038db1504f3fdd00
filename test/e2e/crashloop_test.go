package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashSpec is a stack of services without a healthcheck: compose calls
// them ready as soon as they run. crash has none, flap has it disabled;
// steady sleeps, as a worker would. The PostgreSQL stand-in is the image
// here because its entrypoint runs any other command (the web stand-in's
// ignores it); the trap lets steady stop at once on `down`.
func crashSpec(crashCommand string) string {
	return fmt.Sprintf(`version: 1
name: e2ecrash
domain: e2ecrash.localhost
services:
  crash: {image: %[1]q, command: [sh, -c, %[2]q]}
  flap: {image: %[1]q, command: [sh, -c, %[2]q]}
  steady: {image: %[1]q, command: [sh, -c, %[3]q]}
overrides:
  flap: {healthcheck: {disable: true}}
`, pgImage, crashCommand, steadyCommand)
}

const (
	crashCommand  = "echo starting; sleep 1; exit 3"
	steadyCommand = "trap 'exit 0' INT TERM; echo steady; sleep 100000 & wait"
)

type statusJSON struct {
	Services []struct {
		Service  string `json:"service"`
		State    string `json:"state"`
		Restarts int    `json:"restarts"`
		OK       bool   `json:"ok"`
	} `json:"services"`
}

// TestCrashLoopWithoutHealthcheckFailsUp is kimdre/doco-cd#1695's kind of
// bug: a long-running service without a healthcheck that crashes a second
// after each start is "running" when compose looks, so up used to report it
// up. It must fail, name the service, say it keeps restarting and show its
// logs; status must not call it fine; and once fixed, up succeeds.
func TestCrashLoopWithoutHealthcheckFailsUp(t *testing.T) {
	dir := newStack(t, crashSpec(crashCommand))

	start := time.Now()
	r := orch(t, dir, "up", "--progress", "plain", "--wait-timeout", "2m", "--skip-preflight")
	took := time.Since(start)
	require.Equal(t, 1, r.code, "up of a crash-looping stack succeeded:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Less(t, took, 45*time.Second, "up took too long to notice the crash loop")
	assert.NotContains(t, r.stdout, "is up on")
	for _, svc := range []string{"crash", "flap"} {
		assert.Regexp(t, `Service `+svc+` is not up: (restarting|exited) \(exit code 3\), restarted [1-9]\d* times?`, r.stderr)
		assert.Contains(t, r.stderr, "last log lines of e2ecrash-"+svc+"-1:\n    starting\n")
	}
	assert.NotContains(t, r.stderr, "Service steady")

	// status, in text and JSON, never calls them up, in either phase of
	// their loop: running between two crashes, or restarting. Poll until
	// both phases were seen.
	seen := map[string]bool{}
	for deadline := time.Now().Add(time.Minute); !(seen["running"] && seen["restarting"]) && time.Now().Before(deadline); {
		r = orch(t, dir, "status", "--output", "json")
		require.Equal(t, 0, r.code, r.stderr)
		var st statusJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
		require.Len(t, st.Services, 3, r.stdout)
		for _, s := range st.Services {
			if s.Service == "steady" {
				assert.True(t, s.OK, r.stdout)
				assert.Equal(t, "running", s.State)
				assert.Zero(t, s.Restarts)
				continue
			}
			assert.False(t, s.OK, "status calls crash-looping %s fine: %s", s.Service, r.stdout)
			assert.Positive(t, s.Restarts, r.stdout)
			assert.Contains(t, []string{"running", "restarting"}, s.State)
			if s.Service == "crash" {
				seen[s.State] = true
			}
		}
		r = orch(t, dir, "status")
		require.Equal(t, 0, r.code, r.stderr)
		rows := 0
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(line, "crash ") || strings.HasPrefix(line, "flap ") {
				rows++
				assert.Regexp(t, `^\S+\s+\S+\s+(restarting \(3\)|running \(unstable\))\s+-\s+[1-9]\d*\s`, line, r.stdout)
			}
		}
		assert.Equal(t, 2, rows, r.stdout)
		if t.Failed() {
			break
		}
	}
	assert.True(t, seen["running"] && seen["restarting"], "status never caught both phases of the loop: %v", seen)

	// A second up, whatever it finds to do, fails the same way.
	start = time.Now()
	r = orch(t, dir, "up", "--progress", "plain", "--wait-timeout", "2m", "--skip-preflight")
	assert.Equal(t, 1, r.code, "second up of a crash-looping stack:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	// Compose waits for the engine's restart delay (doubling, at most a
	// minute) before it sees the container running.
	assert.Less(t, time.Since(start), 90*time.Second)
	assert.Regexp(t, `Service crash is not up: `, r.stderr)
	assert.Contains(t, r.stderr, "    starting\n")

	// Fixed: the recreated services run without restarting for the
	// stability window, so up succeeds after watching them.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(crashSpec(steadyCommand)), 0o644))
	r = requireUp(t, dir, "--skip-preflight")
	assert.Contains(t, r.stdout, "Stack e2ecrash is up on ")
	assert.Regexp(t, `Watching 2 containers for [\d.]+m?s to be sure they stay up \(without a healthcheck, a crash loop looks running at first\): e2ecrash-crash-1, e2ecrash-flap-1\n`, r.stderr)
	requireNoChanges(t, dir)

	// A no-op up on a stable stack pays for no window.
	start = time.Now()
	r = requireUp(t, dir, "--skip-preflight")
	assert.Contains(t, r.stderr, "No changes")
	assert.NotContains(t, r.stderr, "Watching")
	assert.Less(t, time.Since(start), 5*time.Second)
}
