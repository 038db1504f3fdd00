package compose

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/aipairpro/orchestrator/internal/catalog"
	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/spec"
	"github.com/aipairpro/orchestrator/internal/state"
)

// TestWriterMatchesComposeGo is the writer's oracle: the project written by
// our YAML writer and by compose-go's own MarshalYAML must load back, with
// compose-go's loader, into the same project.
func TestWriterMatchesComposeGo(t *testing.T) {
	files, err := filepath.Glob("../../../examples/*/stack.yaml")
	require.NoError(t, err)
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			st, _, ds := spec.LoadFile(f)
			require.False(t, ds.HasErrors())
			dep, ds := catalog.Build(st)
			require.False(t, ds.HasErrors())
			root := t.TempDir()
			store, err := state.Open(filepath.Join(root, "state"))
			require.NoError(t, err)
			secrets, err := engine.NewSecrets(dep, store)
			require.NoError(t, err)
			out := filepath.Join(root, "out")
			r := &renderer{d: dep, opts: engine.RenderOptions{OutDir: out, StateDir: store.Dir(), Secrets: secrets}, stateRel: "../state", arts: &engine.Artifacts{}}
			p, err := r.project()
			require.NoError(t, err)
			for _, sf := range r.arts.StateFiles {
				require.NoError(t, store.WriteFile(sf.Path, sf.Content))
			}
			ours, err := marshal(p)
			require.NoError(t, err)
			theirs, err := p.MarshalYAML()
			require.NoError(t, err)
			// Both are YAML for the same data, once the two spellings our
			// writer chooses for people (see marshal) are undone...
			var a, b map[string]any
			require.NoError(t, yaml.Unmarshal(ours, &a))
			require.NoError(t, yaml.Unmarshal(theirs, &b))
			untidy(t, a)
			assert.Equal(t, b, a, "our YAML and compose-go's decode to different data")
			// ...and load into the same project.
			assert.Equal(t, load(t, out, theirs), load(t, out, ours))
		})
	}
}

// untidy undoes, in decoded compose YAML, exactly what tidyService does:
// a service's network list becomes compose-go's map of empty entries, and a
// memory limit in M/G becomes compose-go's byte count. Nothing else changes,
// so any other difference from compose-go's own YAML still fails the test.
func untidy(t *testing.T, doc map[string]any) {
	t.Helper()
	services, _ := doc["services"].(map[string]any)
	for name, s := range services {
		svc := s.(map[string]any)
		if nets, ok := svc["networks"].([]any); ok {
			m := make(map[string]any, len(nets))
			for _, n := range nets {
				m[n.(string)] = nil
			}
			svc["networks"] = m
		}
		if limits, ok := dig(svc, "deploy", "resources", "limits").(map[string]any); ok {
			if mem, ok := limits["memory"].(string); ok {
				var u types.UnitBytes
				require.NoError(t, u.DecodeMapstructure(mem), "services.%s memory %q", name, mem)
				limits["memory"] = strconv.FormatInt(int64(u), 10)
			}
		}
	}
}

func load(t *testing.T, dir string, content []byte) *types.Project {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, "docker-compose.yml")
	require.NoError(t, os.WriteFile(path, content, 0o644))
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: path}},
		Environment: types.Mapping{"OPENAI_API_KEY": "x"},
	})
	require.NoError(t, err)
	return p
}

func TestIsPlain(t *testing.T) {
	for s, want := range map[string]bool{
		"nginx:1.2": true, "10s": true, "512M": true, "2m0s": true, "--config": true, "-H": true,
		"../state/x.env": true, "/run/secrets/x": true, "CMD-SHELL": true,
		"no": false, "Yes": false, "null": false, "3": false, "1.5": false, "1e3": false, "0x1f": false,
		"1:20": false, "2026-01-01": false, "a: b": false, "a #b": false, "": false, "-": false, " x": false,
		".inf": false, "x,y": false, "{a}": false, "*x": false, "&x": false, "!x": false, "%x": false, "@x": false,
		"`x": false, "'x'": false, "\"x\"": false, "a\nb": false, "~": false,
		"-1:20": false, "-190:20:30": false, "-5": false, "a\u0085b": false, "a\x7fb": false, "a\u0090b": false,
	} {
		assert.Equal(t, want, isPlain(s), "%q", s)
		if !want {
			// Whatever we quote reads back as the same string.
			var got map[string]string
			w := &yamlWriter{}
			w.scalar(s)
			require.NoError(t, yaml.Unmarshal([]byte("k: "+w.buf.String()), &got), s)
			assert.Equal(t, s, got["k"])
		}
	}
}
