package state

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/model"
)

func TestSecretsAreGeneratedOnceAndKeptPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".orchestrator")
	s, err := Open(dir)
	require.NoError(t, err)
	a, err := s.Secret("db-app-password", model.Password)
	require.NoError(t, err)
	assert.Regexp(t, regexp.MustCompile(`^[A-Za-z0-9]{16}-[A-Za-z0-9]{16}$`), a)
	assert.Regexp(t, `[A-Z]`, a)
	assert.Regexp(t, `[a-z]`, a)
	assert.Regexp(t, `[0-9]`, a)

	// A new Store on the same directory returns the same value.
	s2, err := Open(dir)
	require.NoError(t, err)
	again, err := s2.Secret("db-app-password", model.Password)
	require.NoError(t, err)
	assert.Equal(t, a, again)

	other, err := s2.Secret("db-kestra-password", model.Password)
	require.NoError(t, err)
	assert.NotEqual(t, a, other)

	tok, err := s.Secret("jwt", model.Token)
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9a-f]{64}$`, tok)
	key, err := s.Secret("key", model.Key32)
	require.NoError(t, err)
	raw, err := base64.StdEncoding.DecodeString(key)
	require.NoError(t, err)
	assert.Len(t, raw, 32)

	for _, p := range []string{dir, filepath.Join(dir, "secrets")} {
		info, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), info.Mode().Perm(), p)
	}
	for _, name := range []string{"db-app-password", "jwt", "key"} {
		info, err := os.Stat(s.SecretPath(name))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), name)
	}
	gi, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
	require.NoError(t, err)
	assert.Contains(t, string(gi), "*\n")
}

// TestOpenTightensPermissions: a state directory that others may read is
// made private again (an empty directory we did not create is not: see
// TestExistingDirectoryIsNotTakenOver).
func TestOpenTightensPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "st")
	_, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	_, err = Open(dir)
	require.NoError(t, err)
	info, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), info.Mode().Perm())
}

func TestEmptySecretFileIsAnErrorNotANewSecret(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, s.WriteFile("secrets/x", nil))
	_, err = s.Secret("x", model.Password)
	require.ErrorContains(t, err, "is empty; restore it from backup")
}

func TestBadNamesAndEscapes(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	_, err = s.Secret("../etc/passwd", model.Password)
	assert.Error(t, err)
	assert.Error(t, s.WriteFile("../x", []byte("y")))
	assert.Error(t, s.WriteFile("/abs", []byte("y")))
}

// TestConcurrentGenerationConverges: many stores generating the same
// secret at once all end with the one value that is on disk.
func TestConcurrentGenerationConverges(t *testing.T) {
	dir := t.TempDir()
	const n = 16
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(dir)
			if err != nil {
				errs[i] = err
				return
			}
			got[i], errs[i] = s.Secret("db-app-password", model.Password)
		}()
	}
	wg.Wait()
	onDisk, err := os.ReadFile(filepath.Join(dir, "secrets", "db-app-password"))
	require.NoError(t, err)
	for i := 0; i < n; i++ {
		require.NoError(t, errs[i])
		assert.Equal(t, string(onDisk), got[i])
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "secrets", ".*"))
	assert.Empty(t, leftovers, "temporary files left behind")
}
