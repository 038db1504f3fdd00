package state

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/model"
)

// listTree returns every path under dir with its mode, to prove nothing
// changed.
func listTree(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		out[p] = fi.Mode()
		return nil
	})
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return out
}

// TestReadOnlyStoreWritesNothing: what plan opens creates, tightens and
// writes nothing, whatever it finds; what it would change it notes.
func TestReadOnlyStoreWritesNothing(t *testing.T) {
	generated := "AbCdEfGhIjKlMnOp-QrStUvWxYz012345"
	tests := []struct {
		name      string
		prepare   func(t *testing.T, dir string) // dir does not exist yet
		wantValue string                         // of secret "x"; "" means missing
		wantNote  string
	}{
		{"a directory not created yet", func(t *testing.T, dir string) {}, "", ""},
		{"an empty shared directory", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(dir, 0o777))
			require.NoError(t, os.Chmod(dir, 0o777|fs.ModeSticky))
		}, "", "was not created by orchestrator"},
		{"a state directory open to others", func(t *testing.T, dir string) {
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "secrets"), 0o755))
			require.NoError(t, os.Chmod(dir, 0o755))
			require.NoError(t, os.Chmod(filepath.Join(dir, "secrets"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", "x"), []byte(generated+"\n"), 0o644))
		}, generated, "the next up or render tightens it to 0700"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			tt.prepare(t, dir)
			before := listTree(t, dir)
			var notes []string
			s, err := OpenWith(dir, OpenOptions{ReadOnly: true, Notify: func(n string) { notes = append(notes, n) }})
			require.NoError(t, err)
			v, ok, err := s.Lookup("x", model.Password)
			require.NoError(t, err)
			assert.Equal(t, tt.wantValue, v)
			assert.Equal(t, tt.wantValue != "", ok)
			_, _, err = s.Lookup("y", model.Password)
			require.NoError(t, err)
			_, err = s.Generate("y", model.Password)
			assert.ErrorContains(t, err, "only reads the state directory")
			assert.ErrorContains(t, s.WriteFile("compose/env/app.env", []byte("A=1\n")), "only reads the state directory")
			fresh, err := s.NewValue(model.Password)
			require.NoError(t, err)
			assert.Regexp(t, `^[A-Za-z0-9]{16}-[A-Za-z0-9]{16}$`, fresh)
			assert.Equal(t, before, listTree(t, dir), "a read-only store changed the directory")
			if tt.wantNote != "" {
				require.NotEmpty(t, notes)
				assert.Contains(t, notes[0], tt.wantNote)
			}
		})
	}
}

// TestUncheckedSecrets: a secret generated without asking the target for
// data stays marked until a run that asked clears it; a value restored
// over it is the user's, not a new one.
func TestUncheckedSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), DirName)
	s, err := Open(dir)
	require.NoError(t, err)
	v, err := s.Secret("postgres-password", model.Password)
	require.NoError(t, err)
	unchecked, err := s.Unchecked("postgres-password", v)
	require.NoError(t, err)
	assert.True(t, unchecked, "a new secret is unchecked")

	restored := "old-Value-from-backup-1234567890"
	require.NoError(t, os.WriteFile(s.SecretPath("postgres-password"), []byte(restored), 0o600))
	unchecked, err = s.Unchecked("postgres-password", restored)
	require.NoError(t, err)
	assert.False(t, unchecked, "a restored value is not new")

	w, err := s.Secret("db-app-password", model.Password)
	require.NoError(t, err)
	require.NoError(t, s.MarkChecked("db-app-password"))
	unchecked, err = s.Unchecked("db-app-password", w)
	require.NoError(t, err)
	assert.False(t, unchecked)
}
