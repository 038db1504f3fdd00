package compose_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	composesdk "github.com/docker/compose/v5/pkg/compose"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/backend/compose"
	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/spec"
	"github.com/aipairpro/orchestrator/internal/state"
)

// TestDollarInPathsIsNotInterpolated: a '$' in the state or render
// directory's path reaches compose escaped, so the env file it names is the
// one in the state directory, not a path with a variable expanded.
func TestDollarInPathsIsNotInterpolated(t *testing.T) {
	t.Setenv("HOME", "/nonexistent-home")
	for _, tt := range []struct{ name, state, out string }{
		{"state directory", "st$HOME$$x", "out"},
		{"render directory", "state", "o${PWD}ut$$"},
		{"both", "a$b", "c$$d"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, _, ds := spec.LoadFile("../../../examples/minimal/stack.yaml")
			require.False(t, ds.HasErrors(), "%v", ds)
			inEnv := true // an env file in the state directory
			st.App.SecretsInEnv = &inEnv
			root := t.TempDir()
			store, err := state.Open(filepath.Join(root, tt.state))
			require.NoError(t, err)
			out := filepath.Join(root, tt.out, "phase1")
			res, rds := engine.Render(context.Background(), st, engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: out})
			require.False(t, rds.HasErrors(), "%v", rds)
			p := loadBack(t, rendered{name: "minimal", outDir: out, stateDir: store.Dir(), res: res})
			require.Len(t, p.Services["app"].EnvFiles, 1)
			assert.Equal(t, filepath.Join(store.Dir(), "compose", "env", "app.env"), p.Services["app"].EnvFiles[0].Path)
			require.NotNil(t, p.Services["app"].Environment["DATABASE_URL"], "the env file was not read")
			assert.Contains(t, *p.Services["app"].Environment["DATABASE_URL"], "@postgres:5432/app")
		})
	}
}

// TestLoadRenderedIsLoad: a rendering held in memory (plan's dry run)
// loads into the same project as the same files written and loaded from
// disk: the same configuration hash for every service, so plan sees what
// up will apply.
func TestLoadRenderedIsLoad(t *testing.T) {
	target, err := compose.NewTarget(context.Background(), compose.TargetOptions{Progress: "quiet", Out: io.Discard})
	require.NoError(t, err)
	t.Setenv("OPENAI_API_KEY", "sk-from-env")
	for _, f := range examples(t) {
		st, _, ds := spec.LoadFile(f)
		require.False(t, ds.HasErrors(), "%v", ds)
		t.Run(st.Name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			out := filepath.Join(root, "rendered", "phase1")
			store, err := state.Open(filepath.Join(root, "state"))
			require.NoError(t, err)
			// In memory first, on a stack never rendered: nothing on disk.
			dry, ds := engine.Render(ctx, st, engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: out, DryRun: true})
			require.False(t, ds.HasErrors(), "%v", ds)
			_, err = os.Stat(out)
			require.ErrorIs(t, err, os.ErrNotExist)
			// The same values on disk: the dry run's secrets saved as a
			// first up would save them.
			for _, name := range dry.WouldGenerate {
				v, err := dry.Secrets.Value(name)
				require.NoError(t, err)
				require.NoError(t, store.WriteFile("secrets/"+name, []byte(v)))
			}
			memory, err := target.LoadRendered(ctx, compose.Rendered{Dir: out, StateDir: store.Dir(), Artifacts: dry.Artifacts}, st.Name)
			require.NoError(t, err)

			res, ds := engine.Render(ctx, st, engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: out})
			require.False(t, ds.HasErrors(), "%v", ds)
			require.Empty(t, res.Generated)
			disk, err := target.Load(ctx, out, st.Name, res.Artifacts.Environment)
			require.NoError(t, err)

			assert.Equal(t, disk.ComposeFiles, memory.ComposeFiles)
			assert.Equal(t, disk.WorkingDir, memory.WorkingDir)
			assert.Equal(t, disk.Environment, memory.Environment)
			require.Equal(t, len(disk.Services), len(memory.Services))
			for name, d := range disk.Services {
				m := memory.Services[name]
				assert.Equal(t, d.Environment, m.Environment, name)
				assert.Equal(t, d.CustomLabels, m.CustomLabels, name)
				dh, err := composesdk.ServiceHash(d)
				require.NoError(t, err)
				mh, err := composesdk.ServiceHash(m)
				require.NoError(t, err)
				assert.Equal(t, dh, mh, "%s: configuration hash", name)
			}
		})
	}
}
