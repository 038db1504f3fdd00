package kubernetes_test

import (
	"encoding/base64"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/aipairpro/orchestrator/internal/backend/kubernetes"
	"github.com/aipairpro/orchestrator/internal/engine"
)

// secretValues are every value that must not leak: the generated secrets,
// the derived ones (Kestra's configuration), each service's expanded
// secret variables and the app's own secret from the environment, plain
// and base64 (as a Secret's data holds them).
func secretValues(t *testing.T, r rendered) []string {
	t.Helper()
	values := r.secrets.Values()
	for _, sec := range r.dep.Secrets {
		v, err := r.secrets.Value(sec.Name)
		require.NoError(t, err)
		values = append(values, v)
	}
	for _, s := range r.dep.Services {
		for _, tmpl := range s.SecretEnv {
			v, err := r.secrets.Expand(tmpl)
			require.NoError(t, err)
			values = append(values, v)
		}
	}
	values = append(values, passEnv)
	var out []string
	for _, v := range values {
		require.GreaterOrEqual(t, len(v), 16, "a test value too short to search for")
		out = append(out, v, base64.StdEncoding.EncodeToString([]byte(v)))
	}
	sort.Strings(out)
	return out
}

// TestNoSecretValueInRenderedFiles renders every example with a freshly
// generated secret state and searches every rendered file for every value:
// without IncludeSecrets there are none, and the Secrets the pods
// reference are only in memory (Artifacts.Secrets), for apply.
func TestNoSecretValueInRenderedFiles(t *testing.T) {
	for _, f := range examples(t) {
		r := renderWith(t, f, t.TempDir(), false, kubernetes.Options{})
		values := secretValues(t, r)
		require.NotEmpty(t, r.arts.Secrets, r.name)
		for _, file := range r.arts.Files {
			assert.NotEqual(t, kubernetes.SecretsFile, file.Path)
			for _, v := range values {
				assert.NotContains(t, string(file.Content), v, "%s/%s holds a secret value", r.name, file.Path)
			}
			for _, o := range r.arts.Objects {
				_, isSecret := o.(*corev1.Secret)
				assert.False(t, isSecret, "%s: Secret %s among the written objects", r.name, o.GetName())
			}
		}
	}
}

// TestIncludeSecrets: with IncludeSecrets the values go to secrets.yaml
// (0600, in the kustomization) and nowhere else, and each equals what the
// Phase 1 secret state gives, read by a second, independent resolver: the
// credentials are the same on both targets.
func TestIncludeSecrets(t *testing.T) {
	for _, f := range examples(t) {
		stateDir := t.TempDir()
		r := renderWith(t, f, stateDir, false, kubernetes.Options{IncludeSecrets: true})
		values := secretValues(t, r)
		var secretsFile []byte
		for _, file := range r.arts.Files {
			if file.Path == kubernetes.SecretsFile {
				secretsFile = file.Content
				assert.Equal(t, uint32(0o600), file.Mode)
				continue
			}
			for _, v := range values {
				assert.NotContains(t, string(file.Content), v, "%s/%s holds a secret value", r.name, file.Path)
			}
			if file.Path == kubernetes.Kustomization {
				assert.Contains(t, string(file.Content), "- "+kubernetes.SecretsFile)
			}
		}
		require.NotNil(t, secretsFile, r.name)
		// The search above can find what it looks for: here it does.
		found := 0
		for _, v := range values {
			if strings.Contains(string(secretsFile), v) {
				found++
			}
		}
		assert.Positive(t, found, "%s: no secret value found in %s", r.name, kubernetes.SecretsFile)
		docs := documents(t, secretsFile)
		require.Len(t, docs, len(r.arts.Secrets))

		// The same state read again from disk, as Phase 1's up reads it.
		again := stateFor(t, build(t, f), filepath.Clean(stateDir), false)
		dec := decoder(t)
		for _, doc := range docs {
			obj, _, err := dec.Decode(doc, nil, nil)
			require.NoError(t, err)
			sec := obj.(*corev1.Secret)
			checkSecret(t, r, again, sec)
		}
	}
}

func checkSecret(t *testing.T, r rendered, state *engine.Secrets, sec *corev1.Secret) {
	t.Helper()
	if svc, ok := strings.CutSuffix(sec.Name, "-env"); ok {
		for _, s := range r.dep.Services {
			if s.Name != svc {
				continue
			}
			want := map[string][]byte{}
			for k, tmpl := range s.SecretEnv {
				v, err := state.Expand(tmpl)
				require.NoError(t, err)
				want[k] = []byte(v)
			}
			for _, k := range append(append([]string(nil), s.PassEnv...), s.PassFiles...) {
				want[k] = []byte(passEnv)
			}
			assert.Equal(t, want, sec.Data, "Secret %s", sec.Name)
			return
		}
	}
	v, err := state.Value(sec.Name)
	require.NoError(t, err, "Secret %s is neither a service's variables nor a secret of the state", sec.Name)
	assert.Equal(t, map[string][]byte{sec.Name: []byte(v)}, sec.Data, "Secret %s", sec.Name)
}

// TestPassEnvMissing: the app's own secrets come from the environment of
// whoever applies; a render names the missing ones for apply to refuse,
// and a render that writes the values refuses at once.
func TestPassEnvMissing(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	f := "../../../examples/platform/stack.yaml"
	r := renderWith(t, f, t.TempDir(), false, kubernetes.Options{LookupEnv: none})
	assert.Equal(t, []string{"OPENAI_API_KEY"}, r.arts.MissingEnv)
	dep := build(t, f)
	opts := kubernetes.Options{IncludeSecrets: true, LookupEnv: none, Secrets: stateFor(t, dep, t.TempDir(), false)}
	_, err := kubernetes.Render(t.Context(), dep, opts)
	assert.ErrorContains(t, err, "OPENAI_API_KEY is not set")
}
