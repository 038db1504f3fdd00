package kubernetes_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/backend/kubernetes"
	"github.com/aipairpro/orchestrator/internal/catalog"
	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/model"
	"github.com/aipairpro/orchestrator/internal/spec"
	"github.com/aipairpro/orchestrator/internal/state"
)

// -update rewrites the golden files (go test ./internal/backend/kubernetes -update).
// A dependency may already define the flag; then we share it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files")
	}
}

func updating() bool { return flag.Lookup("update").Value.String() == "true" }

// passEnv is the value the tests give the app's own secrets (PassEnv).
const passEnv = "sk-from-the-environment-0123456789"

func lookupEnv(string) (string, bool) { return passEnv, true }

// rendered is one example rendered with the secret state in a fresh
// directory.
type rendered struct {
	name    string
	dep     *model.Deployment
	secrets *engine.Secrets
	arts    *kubernetes.Artifacts
}

func examples(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../../examples/*/stack.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

func exampleName(specPath string) string { return filepath.Base(filepath.Dir(specPath)) }

// build loads a spec and builds its deployment.
func build(t *testing.T, specPath string) *model.Deployment {
	t.Helper()
	st, _, ds := spec.LoadFile(specPath)
	require.False(t, ds.HasErrors(), "%v", ds)
	dep, ds := catalog.Build(st)
	require.False(t, ds.HasErrors(), "%v", ds)
	return dep
}

// stateFor opens a state directory; seeded writes fixed secret values, so
// golden files (which carry digests of the secrets) do not depend on
// randomness.
func stateFor(t *testing.T, dep *model.Deployment, dir string, seeded bool) *engine.Secrets {
	t.Helper()
	store, err := state.Open(dir)
	require.NoError(t, err)
	if seeded {
		for _, sec := range dep.Secrets {
			if sec.Template == "" {
				require.NoError(t, store.WriteFile("secrets/"+sec.Name, []byte(fixture(sec))))
			}
		}
	}
	secrets, err := engine.NewSecrets(dep, store)
	require.NoError(t, err)
	return secrets
}

// fixture is a fixed value of a secret's kind.
func fixture(sec model.Secret) string {
	if sec.Generate == model.Key32 {
		sum := sha256.Sum256([]byte(sec.Name))
		return base64.StdEncoding.EncodeToString(sum[:])
	}
	return "fixture-" + sec.Name
}

func renderWith(t *testing.T, specPath, stateDir string, seeded bool, opts kubernetes.Options) rendered {
	t.Helper()
	dep := build(t, specPath)
	secrets := stateFor(t, dep, stateDir, seeded)
	opts.Secrets = secrets
	if opts.LookupEnv == nil {
		opts.LookupEnv = lookupEnv
	}
	arts, err := kubernetes.Render(context.Background(), dep, opts)
	require.NoError(t, err)
	return rendered{name: exampleName(specPath), dep: dep, secrets: secrets, arts: arts}
}

// report is the decisions of a render, as the golden decisions.txt keeps
// them: what a reviewer checks besides the manifests.
func report(a *kubernetes.Artifacts) string {
	var b strings.Builder
	fmt.Fprintf(&b, "namespace %s: pod security %s\n", a.Namespace, a.Level)
	for _, w := range a.Workloads {
		fmt.Fprintf(&b, "workload %s (%s, %s): %s: %s\n", w.Service, w.Component, w.Kind, w.Level, w.Why)
	}
	for _, o := range a.Omitted {
		fmt.Fprintf(&b, "omitted %s: %s\n", o.Service, o.Reason)
	}
	for _, w := range a.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	for _, o := range a.Objects {
		fmt.Fprintf(&b, "object %s %s\n", o.GetObjectKind().GroupVersionKind().Kind, o.GetName())
	}
	return b.String()
}
