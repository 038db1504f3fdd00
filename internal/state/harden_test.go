package state

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/model"
)

// nobody is a uid that is not the test's.
const nobody = 65534

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	return fi.Mode() & (fs.ModePerm | fs.ModeSticky)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, (n+1)/2)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)[:n]
}

// TestSecretFilesAreCheckedWhenRead: a secret file restored or edited by
// hand is checked before its value is used: a damaged generated value or a
// key its consumer cannot take is refused naming the file, a value of the
// user's own is accepted, and a file others may read is made private.
func TestSecretFilesAreCheckedWhenRead(t *testing.T) {
	key32 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	key16 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	tests := []struct {
		name    string
		kind    model.SecretKind
		content string
		mode    fs.FileMode
		wantErr string // "" accepts
	}{
		{"generated password", model.Password, "AbCdEfGhIjKlMnOp-QrStUvWxYz012345", 0o600, ""},
		{"generated password cut short", model.Password, "AbCdEfGhIjKlMnOp-QrS", 0o600, "holds 20 characters of a generated password, which has 33"},
		{"generated password joined to more", model.Password, "AbCdEfGhIjKlMnOp-QrStUvWxYz012345AbC", 0o600, "cut short or joined to something"},
		{"a password of the user's own", model.Password, "p@ss:w/rd#1 it's \"mine\"", 0o600, ""},
		{"a short password of the user's own", model.Password, "yes", 0o600, ""},
		{"generated token", model.Token, randomHex(t, 64), 0o600, ""},
		{"generated token cut short", model.Token, randomHex(t, 50), 0o600, "holds 50 hex digits of a generated token, which has 64"},
		{"a SHA-1 token of the user's own", model.Token, randomHex(t, 40), 0o600, ""},
		{"a token of the user's own", model.Token, "-_1 # not: a comment", 0o600, ""},
		{"key of 32 bytes", model.Key32, key32, 0o600, ""},
		{"key of 16 bytes", model.Key32, key16, 0o600, "decodes to 16 bytes"},
		{"key cut short", model.Key32, key32[:30], 0o600, "is not standard base64"},
		{"key that is not base64", model.Key32, "fixture-kestra-encryption-key", 0o600, "must hold a key of 32 bytes in base64"},
		{"binary bytes", model.Password, "\xff\xfe\x00", 0o600, "not UTF-8"},
		{"readable by others", model.Password, "AbCdEfGhIjKlMnOp-QrStUvWxYz012345", 0o644, ""},
		{"writable by others", model.Password, "AbCdEfGhIjKlMnOp-QrStUvWxYz012345", 0o666, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), DirName))
			require.NoError(t, err)
			p := s.SecretPath("x")
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
			require.NoError(t, os.WriteFile(p, []byte(tt.content), tt.mode))
			require.NoError(t, os.Chmod(p, tt.mode))
			v, err := s.Secret("x", tt.kind)
			if tt.wantErr != "" {
				require.Error(t, err, "accepted %q", tt.content)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Contains(t, err.Error(), p, "the error names the file")
				assert.Contains(t, strings.ToLower(err.Error()), "restore it from backup")
				got, rerr := os.ReadFile(p)
				require.NoError(t, rerr)
				assert.Equal(t, tt.content, string(got), "a refused file is left as it is")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.content, v)
			assert.Equal(t, fs.FileMode(0o600), mode(t, p), "a secret file is made private")
		})
	}
}

// TestSecretFilesMustBeOursAndReal: a secret file, or the secrets
// directory, of another user or reached through a link is refused; a
// secrets directory others may list is made private.
func TestSecretFilesMustBeOursAndReal(t *testing.T) {
	value := "AbCdEfGhIjKlMnOp-QrStUvWxYz012345"
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		wantErr string
	}{
		{"another user's file", func(t *testing.T, dir string) {
			require.NoError(t, os.Chown(filepath.Join(dir, "secrets", "x"), nobody, nobody))
		}, "belongs to uid 65534"},
		{"another user's secrets directory", func(t *testing.T, dir string) {
			require.NoError(t, os.Chown(filepath.Join(dir, "secrets"), nobody, nobody))
		}, "belongs to uid 65534"},
		{"a link to a file elsewhere", func(t *testing.T, dir string) {
			other := filepath.Join(t.TempDir(), "elsewhere")
			require.NoError(t, os.WriteFile(other, []byte(value), 0o600))
			require.NoError(t, os.Remove(filepath.Join(dir, "secrets", "x")))
			require.NoError(t, os.Symlink(other, filepath.Join(dir, "secrets", "x")))
		}, "is a symbolic link"},
		{"a named pipe", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "secrets", "x")))
			require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "secrets", "x"), 0o600))
		}, "is not a regular file"},
		{"secrets directory open to others", func(t *testing.T, dir string) {
			require.NoError(t, os.Chmod(filepath.Join(dir, "secrets"), 0o755))
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), DirName)
			s, err := Open(dir)
			require.NoError(t, err)
			require.NoError(t, s.WriteFile("secrets/x", []byte(value)))
			tt.prepare(t, dir)
			v, err := s.Secret("x", model.Password)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, value, v)
			assert.Equal(t, fs.FileMode(0o700), mode(t, filepath.Join(dir, "secrets")))
		})
	}
}

// TestExistingDirectoryIsNotTakenOver: --state-dir pointed at a directory
// that is not a state directory is refused and left untouched; an empty
// one is used as it is; a directory we did not create keeps its mode, and
// a file we did not create is never rewritten.
func TestExistingDirectoryIsNotTakenOver(t *testing.T) {
	tests := []struct {
		name     string
		prepare  func(t *testing.T, dir string) // dir does not exist yet
		wantErr  string
		wantMode fs.FileMode
		// wantGitignore is the .gitignore afterwards; "" means there is none.
		wantGitignore string
	}{
		{"missing: created private, with its marker", func(t *testing.T, dir string) {}, "", 0o700, gitignore},
		{"empty: used, mode kept", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(dir, 0o755))
			require.NoError(t, os.Chmod(dir, 0o755))
		}, "", 0o755, gitignore},
		{"shared with the sticky bit: mode kept", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(dir, 0o777))
			require.NoError(t, os.Chmod(dir, 0o777|fs.ModeSticky))
		}, "", 0o777 | fs.ModeSticky, gitignore},
		{"a project directory: refused", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(dir, 0o755))
			require.NoError(t, os.Chmod(dir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
		}, "is not empty and is not an orchestrator state directory", 0o755, ""},
		{"a repository with its own .gitignore: refused", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(dir, 0o755))
			require.NoError(t, os.Chmod(dir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("node_modules\n"), 0o644))
		}, "is not empty and is not an orchestrator state directory", 0o755, "node_modules\n"},
		{"a restored state with the user's .gitignore: used, file kept", func(t *testing.T, dir string) {
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "secrets"), 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("# mine\n*\n"), 0o600))
		}, "", 0o700, "# mine\n*\n"},
		{"a state directory opened up: tightened", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(dir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".gitignore"), []byte(gitignore), 0o600))
			require.NoError(t, os.Chmod(dir, 0o755))
		}, "", 0o700, gitignore},
		{"another user's directory: refused", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(dir, 0o700))
			require.NoError(t, os.Chown(dir, nobody, nobody))
		}, "belongs to uid 65534", 0o700, ""},
		{"a file: refused", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(dir, []byte("x"), 0o600))
		}, "is not a directory", 0o600, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			tt.prepare(t, dir)
			_, err := Open(dir)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Contains(t, err.Error(), dir)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantMode, mode(t, dir))
			if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
				gi, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
				if tt.wantGitignore == "" {
					assert.ErrorIs(t, err, fs.ErrNotExist, "a refused directory gets no .gitignore")
				} else {
					require.NoError(t, err)
					assert.Equal(t, tt.wantGitignore, string(gi))
				}
			}
		})
	}
}

// TestWritesNeverFollowSymlinks: a link planted inside the state directory
// does not redirect a write, wherever it points.
func TestWritesNeverFollowSymlinks(t *testing.T) {
	tests := []struct {
		name string
		// link is created at this path under the state directory, pointing
		// at target (relative: under the state directory; "OUTSIDE": a
		// directory elsewhere).
		link, target string
		write        func(s *Store) error
	}{
		{"an env directory linked elsewhere", "compose/env", "OUTSIDE", func(s *Store) error {
			return s.WriteFile("compose/env/app.env", []byte("DATABASE_URL=postgres://app:pw@postgres/app\n"))
		}},
		{"an env directory linked inside", "compose/env", "../secrets", func(s *Store) error {
			return s.WriteFile("compose/env/app.env", []byte("DATABASE_URL=postgres://app:pw@postgres/app\n"))
		}},
		{"the secrets directory linked elsewhere", "secrets", "OUTSIDE", func(s *Store) error {
			_, err := s.Secret("postgres-password", model.Password)
			return err
		}},
		{"a state file linked elsewhere", "compose/applied.json", "OUTSIDE/applied.json", func(s *Store) error {
			return s.WriteFile("compose/applied.json", []byte("{}\n"))
		}},
		{"the lock file linked elsewhere", "lock", "OUTSIDE/passwd", func(s *Store) error {
			l, err := s.Lock(context.Background(), "up", 0)
			if err == nil {
				l.Unlock()
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), DirName)
			outside := t.TempDir()
			// A file out there that a followed link would change.
			require.NoError(t, os.WriteFile(filepath.Join(outside, "passwd"), []byte("root:x:0:0\n"), 0o644))
			require.NoError(t, os.Chmod(filepath.Join(outside, "passwd"), 0o644))
			s, err := Open(dir)
			require.NoError(t, err)
			link := filepath.Join(dir, filepath.FromSlash(tt.link))
			require.NoError(t, os.MkdirAll(filepath.Dir(link), 0o700))
			if tt.link != "secrets" {
				require.NoError(t, os.MkdirAll(filepath.Join(dir, "secrets"), 0o700))
			}
			require.NoError(t, os.Symlink(strings.Replace(tt.target, "OUTSIDE", outside, 1), link))

			err = tt.write(s)
			require.Error(t, err, "wrote through %s -> %s", tt.link, tt.target)
			assert.Contains(t, err.Error(), "is a symbolic link")
			assert.Contains(t, err.Error(), link)
			entries, err := os.ReadDir(outside)
			require.NoError(t, err)
			require.Len(t, entries, 1, "a file appeared outside the state directory")
			assert.Equal(t, fs.FileMode(0o644), mode(t, filepath.Join(outside, "passwd")), "a file outside was chmod'ed")
			sec, err := os.ReadDir(filepath.Join(dir, "secrets"))
			if err == nil {
				for _, e := range sec {
					assert.False(t, strings.HasSuffix(e.Name(), ".env"), "an env file landed among the secrets")
				}
			}
		})
	}
}
