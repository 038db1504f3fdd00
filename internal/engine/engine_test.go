package engine_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/backend/compose"
	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/spec"
	"github.com/aipairpro/orchestrator/internal/state"
)

func loadSpec(t *testing.T, name string) *spec.Stack {
	t.Helper()
	st, _, ds := spec.LoadFile(filepath.Join("..", "..", "examples", name, "stack.yaml"))
	require.False(t, ds.HasErrors(), "%v", ds)
	return st
}

// withEnvFiles has the app also take its secrets from its environment
// (secrets_in_env), so that the render has env files for the state
// directory.
func withEnvFiles(st *spec.Stack) *spec.Stack {
	inEnv := true
	st.App.SecretsInEnv = &inEnv
	return st
}

// files lists every path under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(dir, p); rel != "." {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

// TestDryRunWritesNothing: a dry run (what plan renders) writes no output,
// no state file and no secret, on a new stack and on one already rendered.
func TestDryRunWritesNothing(t *testing.T) {
	for _, example := range []string{"minimal", "platform"} {
		t.Run(example, func(t *testing.T) {
			st := withEnvFiles(loadSpec(t, example))
			root := t.TempDir()
			store, err := state.Open(filepath.Join(root, "state"))
			require.NoError(t, err)
			before := files(t, root)
			out := filepath.Join(root, "out")
			res, ds := engine.Render(context.Background(), st, engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: out, DryRun: true})
			require.False(t, ds.HasErrors(), "%v", ds)
			assert.Equal(t, before, files(t, root), "a dry run wrote files")
			assert.NotEmpty(t, res.Artifacts.StateFiles, "the env files are rendered, in memory")
		})
	}
}

// TestRenderedFilesNeverFollowSymlinks: a link planted in the render or
// state directory does not redirect rendered files out of it.
func TestRenderedFilesNeverFollowSymlinks(t *testing.T) {
	for _, tt := range []struct{ name, dir, link string }{
		{"render directory", "out", "postgres"},
		{"state directory: env files", "state", "compose/env"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root, outside := t.TempDir(), t.TempDir()
			store, err := state.Open(filepath.Join(root, "state"))
			require.NoError(t, err)
			link := filepath.Join(root, tt.dir, filepath.FromSlash(tt.link))
			require.NoError(t, os.MkdirAll(filepath.Dir(link), 0o700))
			require.NoError(t, os.Symlink(outside, link))
			_, ds := engine.Render(context.Background(), withEnvFiles(loadSpec(t, "minimal")), engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: filepath.Join(root, "out")})
			require.True(t, ds.HasErrors(), "rendered through %s", link)
			assert.Contains(t, ds[len(ds)-1].Summary, link+" is a symbolic link")
			assert.Empty(t, files(t, outside), "a rendered file landed outside")
		})
	}
}

// volumes is a fake target: the volumes that exist, and a record of what
// it was asked.
type volumes struct {
	exist map[string]bool
	err   error
	asked [][]string
}

func (v *volumes) existing(_ context.Context, names []string) (map[string]string, error) {
	v.asked = append(v.asked, names)
	if v.err != nil {
		return nil, v.err
	}
	out := map[string]string{}
	for _, n := range names {
		if v.exist[n] {
			out[n] = "tiny_" + n
		}
	}
	return out, nil
}

// TestNewSecretsWhileDataExists: a secret is generated only while no data
// made with an older value exists; otherwise the render is refused naming
// the file and the volume, and nothing is written or generated.
func TestNewSecretsWhileDataExists(t *testing.T) {
	tests := []struct {
		name string
		// prepare runs against a stack rendered once (its secrets exist).
		prepare   func(t *testing.T, store *state.Store)
		target    *volumes
		dryRun    bool
		wantErr   []string // substrings; nil accepts
		wantAsked bool
		wantNew   []string // Generated, or WouldGenerate under dryRun
	}{
		{"nothing new: the target is not asked", func(t *testing.T, s *state.Store) {}, &volumes{exist: map[string]bool{"postgres-data": true}}, false, nil, false, nil},
		{"missing secret, data exists: refused", func(t *testing.T, s *state.Store) {
			require.NoError(t, os.Remove(s.SecretPath("db-app-password")))
		}, &volumes{exist: map[string]bool{"postgres-data": true}}, false,
			[]string{"refusing to give secrets new values", "secrets/db-app-password is missing, and data made with its value is in tiny_postgres-data", "tiny_postgres-data", "restore the file from your backup", "nothing was changed"}, true, nil},
		{"missing secret, data exists, dry run: refused", func(t *testing.T, s *state.Store) {
			require.NoError(t, os.Remove(s.SecretPath("postgres-password")))
		}, &volumes{exist: map[string]bool{"postgres-data": true}}, true,
			[]string{"secrets/postgres-password is missing", "tiny_postgres-data"}, true, nil},
		{"missing secret, no data: generated", func(t *testing.T, s *state.Store) {
			require.NoError(t, os.Remove(s.SecretPath("db-app-password")))
		}, &volumes{}, false, nil, true, []string{"db-app-password"}},
		{"missing secret, no data, dry run: only in memory", func(t *testing.T, s *state.Store) {
			require.NoError(t, os.Remove(s.SecretPath("db-app-password")))
		}, &volumes{}, true, nil, true, []string{"db-app-password"}},
		{"generated by a render, data exists: refused", func(t *testing.T, s *state.Store) {
			require.NoError(t, os.Remove(s.SecretPath("postgres-password")))
			_, err := s.Secret("postgres-password", "password")
			require.NoError(t, err)
		}, &volumes{exist: map[string]bool{"postgres-data": true}}, false,
			[]string{"secrets/postgres-password was generated by a render that could not check the engine, and data made with the old value is in tiny_postgres-data", "a restored file replaces the generated one"}, true, nil},
		{"generated by a render, then restored from backup: accepted", func(t *testing.T, s *state.Store) {
			old, err := os.ReadFile(s.SecretPath("postgres-password"))
			require.NoError(t, err)
			require.NoError(t, os.Remove(s.SecretPath("postgres-password")))
			_, err = s.Secret("postgres-password", "password")
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(s.SecretPath("postgres-password"), old, 0o600))
		}, &volumes{exist: map[string]bool{"postgres-data": true}}, false, nil, false, nil},
		{"the target cannot be asked: refused", func(t *testing.T, s *state.Store) {
			require.NoError(t, os.Remove(s.SecretPath("db-app-password")))
		}, &volumes{err: errors.New("connection refused")}, false,
			[]string{"safe only while the stack has no data yet", "connection refused"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := loadSpec(t, "minimal")
			root := t.TempDir()
			out := filepath.Join(root, "out")
			store, err := state.Open(filepath.Join(root, "state"))
			require.NoError(t, err)
			// The first render: a new stack, checked against an empty target.
			_, ds := engine.Render(context.Background(), st, engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: out, ExistingVolumes: (&volumes{}).existing})
			require.False(t, ds.HasErrors(), "%v", ds)
			tt.prepare(t, store)
			before := files(t, root)
			contents := map[string]string{}
			for _, f := range before {
				if b, err := os.ReadFile(filepath.Join(root, f)); err == nil {
					contents[f] = string(b)
				}
			}

			res, ds := engine.Render(context.Background(), st, engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: out, DryRun: tt.dryRun, ExistingVolumes: tt.target.existing})
			assert.Equal(t, tt.wantAsked, len(tt.target.asked) > 0, "asked the target: %v", tt.target.asked)
			if tt.wantErr != nil {
				require.True(t, ds.HasErrors(), "accepted")
				msg := ds[len(ds)-1].Error()
				for _, w := range tt.wantErr {
					assert.Contains(t, msg, w)
				}
				assert.Equal(t, before, files(t, root), "a refused render changed files")
				for f, c := range contents {
					b, err := os.ReadFile(filepath.Join(root, f))
					require.NoError(t, err)
					assert.Equal(t, c, string(b), "%s changed", f)
				}
				return
			}
			require.False(t, ds.HasErrors(), "%v", ds)
			if tt.dryRun {
				assert.Equal(t, tt.wantNew, res.WouldGenerate)
				assert.Empty(t, res.Generated)
				assert.Equal(t, before, files(t, root), "a dry run wrote files")
			} else {
				assert.Equal(t, tt.wantNew, res.Generated)
				for _, f := range files(t, root) {
					assert.False(t, strings.HasPrefix(f, "state/pending/"), "%s: a checked secret is still marked new", f)
				}
			}
		})
	}
}

// TestErrorNamesEverySecret: one refusal names every secret at risk, and
// only those: a secret no data depends on is not in it.
func TestErrorNamesEverySecret(t *testing.T) {
	st := loadSpec(t, "platform")
	root := t.TempDir()
	store, err := state.Open(filepath.Join(root, "state"))
	require.NoError(t, err)
	target := &volumes{exist: map[string]bool{"postgres-data": true, "tracardi-mysql-data": true, "portainer-data": true}}
	_, ds := engine.Render(context.Background(), st, engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: filepath.Join(root, "out"), ExistingVolumes: target.existing})
	require.True(t, ds.HasErrors())
	msg := ds[len(ds)-1].Error()
	for _, s := range []string{"postgres-password", "db-app-password", "db-kestra-password", "kestra-encryption-key", "tracardi-mysql-password", "tracardi-mysql-root-password", "portainer-admin-password"} {
		assert.Contains(t, msg, filepath.Join(store.Dir(), "secrets", s)+" is missing, and data made with its value is in tiny_", s)
	}
	for _, s := range []string{"postiz-jwt-secret", "kestra-admin-password", "tracardi-installation-token"} {
		assert.NotContains(t, msg, "secrets/"+s+" ", "no data depends on %s", s)
	}
	assert.Empty(t, files(t, filepath.Join(root, "state", "secrets")), "nothing generated")
}
