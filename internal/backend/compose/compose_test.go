package compose_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/backend/compose"
	"github.com/aipairpro/orchestrator/internal/catalog"
	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/model"
	"github.com/aipairpro/orchestrator/internal/spec"
	"github.com/aipairpro/orchestrator/internal/state"
)

// -update rewrites the golden files. A dependency (gotest.tools' golden
// package, linked in through the compose SDK) may already define the flag;
// then we share it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files")
	}
}

func updating() bool { return flag.Lookup("update").Value.String() == "true" }

// rendered is one example rendered into a fresh output and state directory.
type rendered struct {
	name     string
	outDir   string
	stateDir string
	res      *engine.Result
}

func renderExample(t *testing.T, specPath, root string) rendered {
	return renderExampleSeeded(t, specPath, root, false)
}

// renderExampleSeeded renders with fixed secret values when seeded, so the
// golden files (which carry digests of the secrets) do not depend on
// randomness.
func renderExampleSeeded(t *testing.T, specPath, root string, seeded bool) rendered {
	t.Helper()
	st, _, ds := spec.LoadFile(specPath)
	require.False(t, ds.HasErrors(), "%v", ds)
	store, err := state.Open(filepath.Join(root, "state"))
	require.NoError(t, err)
	if seeded {
		dep, ds := catalog.Build(st)
		require.False(t, ds.HasErrors(), "%v", ds)
		for _, sec := range dep.Secrets {
			if sec.Template == "" {
				v := "fixture-" + sec.Name
				if sec.Generate == model.Key32 {
					// A key is read only as 32 bytes in base64 (state.CheckKind).
					v = base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%-32.32s", v)))
				}
				require.NoError(t, store.WriteFile("secrets/"+sec.Name, []byte(v)))
			}
		}
	}
	out := filepath.Join(root, "out")
	res, rds := engine.Render(context.Background(), st, engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: out})
	require.False(t, rds.HasErrors(), "%v", rds)
	return rendered{name: filepath.Base(filepath.Dir(specPath)), outDir: out, stateDir: store.Dir(), res: res}
}

func examples(t *testing.T) []string {
	files, err := filepath.Glob("../../../examples/*/stack.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

// TestExamplesGolden renders every example and compares each file with its
// golden copy (go test ./internal/backend/compose -update rewrites them).
func TestExamplesGolden(t *testing.T) {
	for _, f := range examples(t) {
		r := renderExampleSeeded(t, f, t.TempDir(), true)
		t.Run(r.name, func(t *testing.T) {
			for _, file := range r.res.Artifacts.Files {
				golden := filepath.Join("testdata", "golden", r.name, filepath.FromSlash(file.Path))
				if updating() {
					require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
					require.NoError(t, os.WriteFile(golden, file.Content, 0o644))
					continue
				}
				want, err := os.ReadFile(golden)
				require.NoError(t, err, "missing golden file: run go test ./internal/backend/compose -update")
				assert.Equal(t, string(want), string(file.Content), "%s differs from its golden file", file.Path)
			}
		})
	}
}

// TestRenderIsDeterministic renders the same spec with the same state twice.
func TestRenderIsDeterministic(t *testing.T) {
	for _, f := range examples(t) {
		root := t.TempDir()
		a := renderExample(t, f, root)
		b := renderExample(t, f, root)
		assert.Equal(t, a.res.Artifacts, b.res.Artifacts, f)
		assert.Empty(t, b.res.Written, "a second render with nothing changed rewrote files: %s", f)
	}
}

// loadBack loads the rendered compose file with compose-go's own loader,
// failing on any error or warning it logs.
func loadBack(t *testing.T, r rendered) *types.Project {
	t.Helper()
	var logs bytes.Buffer
	prev := logrus.StandardLogger().Out
	logrus.SetOutput(&logs)
	defer logrus.SetOutput(prev)
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  r.outDir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(r.outDir, compose.ComposeFile)}},
		Environment: types.Mapping{"OPENAI_API_KEY": "sk-from-env"},
	})
	require.NoError(t, err)
	assert.Empty(t, logs.String(), "compose-go logged warnings")
	return p
}

func TestExamplesLoadInComposeGo(t *testing.T) {
	for _, f := range examples(t) {
		r := renderExample(t, f, t.TempDir())
		t.Run(r.name, func(t *testing.T) {
			p := loadBack(t, r)
			assert.Equal(t, len(r.res.Deployment.Services), len(p.Services))
			for name, svc := range p.Services {
				m := findService(t, r, name)
				assert.NotEmpty(t, svc.Image, name)
				assert.NotContains(t, svc.Image, ":latest", name)
				assert.Contains(t, svc.Image, ":", "%s: image not pinned", name)
				require.NotNil(t, svc.Deploy, name)
				require.NotNil(t, svc.Deploy.Resources.Limits, name)
				assert.Positive(t, svc.Deploy.Resources.Limits.MemoryBytes, "%s: no memory limit", name)
				require.NotNil(t, svc.Logging, name)
				assert.Equal(t, "10m", svc.Logging.Options["max-size"], name)
				if m.OneShot {
					assert.Equal(t, "no", svc.Restart, name)
				} else {
					assert.Equal(t, "unless-stopped", svc.Restart, name)
					// Tracardi's workers have no health endpoint upstream;
					// up judges them by staying running.
					if m.Component != "custom" && name != "tracardi-apm" && name != "tracardi-update-worker" {
						require.NotNil(t, svc.HealthCheck, "%s has no healthcheck", name)
						assert.NotEmpty(t, svc.HealthCheck.Test, name)
					}
				}
				if name == "proxy" {
					assert.Len(t, svc.Ports, 3)
				} else {
					assert.Empty(t, svc.Ports, "%s publishes ports; only the proxy may", name)
				}
				if m.Stateful && name != "proxy" && name != "portainer" {
					for n := range svc.Networks {
						assert.True(t, p.Networks[n].Internal, "%s: data services stay on networks with no route out, not %s", name, n)
					}
				}
				routed := name == "proxy"
				for _, rt := range r.res.Deployment.Routes {
					routed = routed || rt.Service == name
				}
				_, onEdge := svc.Networks[catalog.Edge]
				assert.Equal(t, routed, onEdge, "%s: the proxy's network holds the proxy and what it routes to, nothing else", name)
				if name == "proxy" {
					assert.Equal(t, []string{catalog.Edge}, keys(svc.Networks), "the proxy joins only the network of what it routes to")
				}
				for dep, cfg := range svc.DependsOn {
					assert.Contains(t, p.Services, dep, "%s depends on a missing service", name)
					assert.NotEmpty(t, cfg.Condition, name)
				}
			}
			for key, n := range p.Networks {
				assert.Equal(t, key != catalog.Edge && key != catalog.Egress, n.Internal, "network %s: only edge and egress have a route out", key)
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSecretsReachServicesAndNothingElse checks both halves of the secret
// promise: every generated value is absent from every rendered file, and
// services do get the values (through env files and secret files).
func TestSecretsReachServicesAndNothingElse(t *testing.T) {
	for _, f := range examples(t) {
		r := renderExample(t, f, t.TempDir())
		t.Run(r.name, func(t *testing.T) {
			values := r.res.Secrets.Values()
			require.NotEmpty(t, values)
			rendered := readTree(t, r.outDir)
			require.NotEmpty(t, rendered)
			for path, content := range rendered {
				for _, v := range values {
					assert.NotContains(t, content, v, "a secret value leaked into %s", path)
				}
			}
			// The state files do hold them: the scan above is looking for
			// strings that exist.
			stateFiles := readTree(t, r.stateDir)
			all := strings.Join(mapValues(stateFiles), "\n")
			for _, v := range values {
				assert.Contains(t, all, v)
			}
			for path := range stateFiles {
				info, err := os.Stat(path)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), path)
			}
			info, err := os.Stat(r.stateDir)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o700), info.Mode().Perm())

			// The app reads DATABASE_URL from the file DATABASE_URL_FILE
			// names, whose content compose copies in from the values handed
			// to it: the URL carries the password from the state, and the
			// environment has no value.
			p := loadBack(t, r)
			if app, ok := p.Services["app"]; ok {
				pw, err := os.ReadFile(filepath.Join(r.stateDir, "secrets", "db-app-password"))
				require.NoError(t, err)
				assert.Nil(t, app.Environment["DATABASE_URL"])
				require.NotNil(t, app.Environment["DATABASE_URL_FILE"])
				assert.Equal(t, "/run/secrets/DATABASE_URL", *app.Environment["DATABASE_URL_FILE"])
				assert.Contains(t, app.Secrets, types.ServiceSecretConfig{Source: "app-database-url", Target: "/run/secrets/DATABASE_URL"})
				assert.Equal(t, "postgres://app:"+string(pw)+"@postgres:5432/app?sslmode=disable", r.res.Artifacts.Environment[compose.SecretVariable("app-database-url")])
			}
		})
	}
}

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		out[path] = string(b)
		return err
	}))
	return out
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
