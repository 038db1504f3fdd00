package cli

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tree lists every path under dir with its mode.
func tree(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		out[p] = fi.Mode()
		return nil
	}))
	return out
}

// TestReadOnlyCommandsWriteNothing: validate, render --effective, status
// and plan only read: on a new stack they create no state directory, no
// secret and no rendered file, and a state directory they find keeps its
// files and modes, a shared one its sticky bit. (The engine here answers
// nothing: what they write must not depend on how far they get.)
func TestReadOnlyCommandsWriteNothing(t *testing.T) {
	const noEngine = "tcp://127.0.0.1:1"
	tests := []struct {
		name string
		args []string
		// prepare makes the state directory the command finds; nil: none.
		prepare    func(t *testing.T, stateDir string)
		wantStderr string
	}{
		{"validate", []string{"validate"}, nil, ""},
		{"render --effective", []string{"render", "--effective"}, nil, ""},
		{"status", []string{"status", "-H", noEngine}, nil, ""},
		{"status, shared state directory", []string{"status", "-H", noEngine}, func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(dir, 0o777))
			require.NoError(t, os.Chmod(dir, 0o777|fs.ModeSticky))
		}, ""},
		{"plan, new stack", []string{"plan", "-H", noEngine}, nil, "safe only while the stack has no data yet"},
		{"plan, restored state open to others", []string{"plan", "-H", noEngine}, func(t *testing.T, dir string) {
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "secrets"), 0o755))
			require.NoError(t, os.Chmod(dir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", "postgres-password"), []byte("AbCdEfGhIjKlMnOp-QrStUvWxYz012345\n"), 0o644))
		}, "the next up or render tightens it to 0700"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyExample(t, "minimal")
			if tt.prepare != nil {
				tt.prepare(t, filepath.Join(dir, ".orchestrator"))
			}
			before := tree(t, dir)
			r := run(t, dir, tt.args...)
			assert.Equal(t, before, tree(t, dir), "%v wrote or changed files; stderr: %s", tt.args, r.stderr)
			if tt.wantStderr != "" {
				assert.Contains(t, r.stderr, tt.wantStderr)
			}
		})
	}
}
