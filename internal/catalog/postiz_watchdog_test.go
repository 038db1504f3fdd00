package catalog

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/model"
	"github.com/aipairpro/orchestrator/templates"
)

// Postiz runs as the watchdog script, which the deployment ships and
// mounts where the command names it, and which finds Temporal where Postiz
// does. test/e2e's TestPostizWatchdog proves the script itself.
func TestPostizRunsTheWatchdog(t *testing.T) {
	dep := platform(t, "")
	var postiz, temporal model.Service
	for _, s := range dep.Services {
		switch s.Name {
		case "postiz":
			postiz = s
		case "temporal":
			temporal = s
		}
	}
	require.Len(t, postiz.Command, 2)
	assert.Equal(t, "sh", postiz.Command[0])
	var script model.FileMount
	for _, m := range postiz.FileMounts {
		if m.Target == postiz.Command[1] {
			script = m
		}
	}
	require.NotEmpty(t, script.File, "the watchdog is not mounted")
	want, err := templates.FS.ReadFile("catalog/postiz-watchdog.sh")
	require.NoError(t, err)
	shipped := false
	for _, f := range dep.Files {
		if f.Path == script.File {
			shipped = true
			assert.Equal(t, string(want), string(f.Content))
		}
	}
	assert.True(t, shipped, "the deployment has no file %s", script.File)
	assert.Equal(t, []int{7233}, temporal.Ports)
	assert.Equal(t, "temporal:7233", postiz.Env["TEMPORAL_ADDRESS"])
}

// The script runs Postiz's own command when given none, and watches only
// as a container's PID 1: anywhere else, stopping "every process" would
// mean the whole machine's.
func TestPostizWatchdogScriptOutsideAContainer(t *testing.T) {
	script, err := templates.FS.ReadFile("catalog/postiz-watchdog.sh")
	require.NoError(t, err)
	dir := t.TempDir()
	for name, content := range map[string]string{
		"postiz-watchdog.sh": string(script),
		"nginx":              "#!/bin/sh\nexit 0\n",
		"pnpm":               "#!/bin/sh\necho \"pnpm $*\"\n",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755))
	}
	run := func(env []string, args ...string) (string, string) {
		cmd := exec.Command("sh", append([]string{filepath.Join(dir, "postiz-watchdog.sh")}, args...)...)
		cmd.Env = append([]string{"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH")}, env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		require.NoError(t, cmd.Run(), errb.String())
		return out.String(), errb.String()
	}

	out, errs := run(nil)
	assert.Equal(t, "pnpm run pm2\n", out, "Postiz's command is sh -c \"nginx && pnpm run pm2\"")
	assert.Equal(t, "postiz-watchdog: not the container's PID 1; not watching\n", errs)

	out, errs = run([]string{"POSTIZ_WATCHDOG=off"}, "echo", "a  b")
	assert.Equal(t, "a  b\n", out, "arguments replace the command")
	assert.Empty(t, strings.TrimSpace(errs))
}
