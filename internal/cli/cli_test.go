package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/aipairpro/orchestrator/internal/state"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.NoError(t, os.Chdir(dir))
	defer func() { require.NoError(t, os.Chdir(wd)) }()
	code := Run(context.Background(), args, &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return result{code, out.String(), errOut.String()}
}

func copyExample(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", name, "stack.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), b, 0o644))
	return dir
}

func TestExitCodes(t *testing.T) {
	dir := copyExample(t, "platform")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("version: 1\nname: x\ndomain: x.example.com\napp: {image: a:1, prot: 1}\n"), 0o644))
	tests := []struct {
		name       string
		args       []string
		code       int
		wantStdout string
		// wantStderr is the first line of stderr; "" means stderr is empty.
		wantStderr string
	}{
		{"valid", []string{"validate"}, 0, "stack.yaml is valid: 19 services, 6 routes.\n", ""},
		{"invalid spec", []string{"validate", "-f", "bad.yaml"}, 1, "", "bad.yaml:4:19: error: unknown key \"prot\" (app)"},
		{"missing spec", []string{"validate", "-f", "nope.yaml"}, 1, "", "error: cannot read spec: open nope.yaml: no such file or directory"},
		{"unknown flag", []string{"validate", "--bogus"}, 2, "", "Error: unknown flag: --bogus"},
		{"unknown command", []string{"deploy"}, 2, "", `Error: unknown command "deploy" for "orchestrator"`},
		{"bad output", []string{"validate", "--output", "yaml"}, 2, "", `Error: invalid --output "yaml": use text or json`},
		{"bad phase", []string{"render", "--phase", "3"}, 2, "", "Error: invalid --phase 3: use 1 (docker compose) or 2 (kubernetes)"},
		{"extra args", []string{"render", "x"}, 2, "", `Error: unknown command "x" for "orchestrator render"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, dir, tt.args...)
			assert.Equal(t, tt.code, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			assert.Equal(t, tt.wantStdout, r.stdout)
			if tt.wantStderr == "" {
				assert.Empty(t, r.stderr)
			} else {
				first, _, _ := strings.Cut(r.stderr, "\n")
				assert.Equal(t, tt.wantStderr, first, "stderr: %s", r.stderr)
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte("version: 2\nname: x\ndomain: x.example.com\n"), 0o644))
	r := run(t, dir, "validate", "--output", "json")
	assert.Equal(t, 1, r.code)
	var rep struct {
		FormatVersion string `json:"format_version"`
		Valid         bool   `json:"valid"`
		ErrorCount    int    `json:"error_count"`
		Diagnostics   []struct {
			Summary string `json:"summary"`
			Path    string `json:"path"`
			Range   struct{ Line, Column int }
		} `json:"diagnostics"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	assert.Equal(t, "1.0", rep.FormatVersion)
	assert.False(t, rep.Valid)
	require.Equal(t, 1, rep.ErrorCount)
	assert.Equal(t, "unsupported spec version 2", rep.Diagnostics[0].Summary)
	assert.Equal(t, "version", rep.Diagnostics[0].Path)
	assert.Equal(t, 1, rep.Diagnostics[0].Range.Line)
	assert.Equal(t, 10, rep.Diagnostics[0].Range.Column)
}

func TestCatalogDiagnostics(t *testing.T) {
	dir := t.TempDir()
	spec := `version: 1
name: x
domain: x.example.com
app: {image: ghcr.io/a/app:1.0.0, database: true, secrets_in_env: false}
services:
  postgres: {image: ghcr.io/a/pg:1.0.0}
  cron: {image: ghcr.io/a/cron:1.0.0}
overrides:
  postgress: {image: ghcr.io/a/pg:2.0.0}
  kestra: {image: ghcr.io/a/k:2.0.0}
  app: {env: {DATABASE_URL: x}}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(spec), 0o644))
	r := run(t, dir, "validate")
	assert.Equal(t, 1, r.code)
	for _, want := range []string{
		"stack.yaml:6:3: error: service name \"postgres\" is taken by the platform (services.postgres)",
		"stack.yaml:7:3: warning: service \"cron\" has no healthcheck, so nothing can tell when it is ready (services.cron)",
		"stack.yaml:9:3: error: override for unknown service \"postgress\" (overrides.postgress)",
		"= hint: did you mean \"postgres\"?",
		"stack.yaml:10:3: error: override for unknown service \"kestra\" (overrides.kestra)",
		"= hint: that service is rendered only when its component is enabled",
		"stack.yaml:11:15: error: DATABASE_URL of app is provided from a secret and cannot be overridden (overrides.app.env.DATABASE_URL)",
		"stack.yaml: 4 errors, 1 warning.",
	} {
		assert.Contains(t, r.stderr, want)
	}
}

func TestInitThenValidateAndRender(t *testing.T) {
	dir := t.TempDir()
	r := run(t, dir, "init", "--name", "acme", "--domain", "acme.example.com")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Wrote stack.yaml")
	b, err := os.ReadFile(filepath.Join(dir, "stack.yaml"))
	require.NoError(t, err)
	// No modeline pointing at a schema that does not exist: the comment
	// says how to write one beside the spec.
	assert.NotContains(t, string(b), "$schema=http")
	assert.Contains(t, string(b), "orchestrator schema > stack.schema.json")

	r = run(t, dir, "init")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "stack.yaml already exists; edit it, or pass --force to overwrite it")

	r = run(t, dir, "validate")
	require.Equal(t, 0, r.code, r.stderr)

	r = run(t, dir, "render", "--phase=1", "-o", "out")
	require.Equal(t, 0, r.code, r.stderr)
	for _, f := range []string{"out/docker-compose.yml", "out/proxy/Caddyfile", "out/postgres/init.sh", ".orchestrator/.gitignore"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	assertNoSecrets(t, filepath.Join(dir, ".orchestrator"), r.stdout+r.stderr)
}

// init writes a spec that works where it is run: a local CA for domains no
// public CA signs, ACME for public ones; without --app-image the app is a
// commented example, so the spec validates with nothing to replace.
func TestInitPicksWhatWorks(t *testing.T) {
	for _, tt := range []struct {
		domain   string
		internal bool
	}{
		{"trial.localhost", true}, {"trial.test", true}, {"box.internal", true}, {"nas.home.arpa", true},
		{"ci.example", true}, {"printer.lan", true}, {"intranet", true},
		{"acme.example.com", false}, {"app.acme.io", false},
	} {
		t.Run(tt.domain, func(t *testing.T) {
			dir := t.TempDir()
			r := run(t, dir, "init", "--name", "trial", "--domain", tt.domain)
			require.Equal(t, 0, r.code, r.stderr)
			b, err := os.ReadFile(filepath.Join(dir, "stack.yaml"))
			require.NoError(t, err)
			if tt.internal {
				assert.Contains(t, string(b), "\ntls: {mode: internal}\n")
			} else {
				assert.Contains(t, string(b), "\ntls:\n  email: \"ops@"+tt.domain+"\"\n")
			}
			assert.NotContains(t, string(b), "\napp:", "the app section must be a commented example")
			r = run(t, dir, "validate", "--output", "json")
			require.Equal(t, 0, r.code, r.stdout+r.stderr)
			assert.Contains(t, r.stdout, `"warning_count": 0`, "a fresh spec has nothing to warn about")
		})
	}
	dir := t.TempDir()
	r := run(t, dir, "init", "--name", "acme", "--domain", "acme.example.com", "--app-image", "ghcr.io/acme/app:1.4.2")
	require.Equal(t, 0, r.code, r.stderr)
	b, err := os.ReadFile(filepath.Join(dir, "stack.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "\napp:\n  image: \"ghcr.io/acme/app:1.4.2\"\n")
	r = run(t, dir, "validate")
	require.Equal(t, 0, r.code, r.stderr)
	r = run(t, t.TempDir(), "init", "--app-image", "ghcr.io/acme/app:latest")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `invalid --app-image "ghcr.io/acme/app:latest"`)
}

// ACME for a domain no public CA signs is a warning with the fix, at the
// position that chose it.
func TestValidateWarnsACMEForNonPublicDomain(t *testing.T) {
	for _, tt := range []struct{ tls, want string }{
		{"", "stack.yaml:3:9: warning: no public ACME CA issues certificates for \"acme.test\""},
		{"tls: {mode: acme}\n", "stack.yaml:4:13: warning: no public ACME CA issues certificates for \"acme.test\""},
		{"tls: {mode: internal}\n", ""},
	} {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte("version: 1\nname: acme\ndomain: acme.test\n"+tt.tls), 0o644))
		r := run(t, dir, "validate")
		require.Equal(t, 0, r.code, r.stderr)
		if tt.want == "" {
			assert.NotContains(t, r.stderr, "warning")
			continue
		}
		assert.Contains(t, r.stderr, tt.want)
		assert.Contains(t, r.stderr, "set `tls: {mode: internal}`")
	}
}

func TestRenderEffective(t *testing.T) {
	dir := copyExample(t, "minimal")
	r := run(t, dir, "render", "--effective")
	require.Equal(t, 0, r.code, r.stderr)
	var eff map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(r.stdout), &eff))
	app := eff["app"].(map[string]any)
	assert.Equal(t, 8080, app["port"])
	assert.Equal(t, "/healthz", app["health"])
	assert.Equal(t, "acme", eff["tls"].(map[string]any)["mode"])
	kestra := eff["components"].(map[string]any)["kestra"].(map[string]any)
	assert.Equal(t, false, kestra["enabled"])
	assert.Equal(t, "v1.3.16", kestra["version"])
	assert.Equal(t, "17", eff["database"].(map[string]any)["version"])
	assert.NoDirExists(t, filepath.Join(dir, "rendered"), "--effective must not render")
}

func TestRenderOutputsAndStateDir(t *testing.T) {
	dir := copyExample(t, "platform")
	t.Setenv("ORCHESTRATOR_STATE_DIR", filepath.Join(dir, "vault"))
	r := run(t, dir, "render", "--output", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var rep struct {
		FormatVersion string   `json:"format_version"`
		StateDir      string   `json:"state_dir"`
		Files         []string `json:"files"`
		Services      int      `json:"services"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	assert.Equal(t, filepath.Join(dir, "vault"), rep.StateDir)
	assert.Equal(t, 19, rep.Services)
	assert.ElementsMatch(t, []string{"rendered/phase1/docker-compose.yml", "rendered/phase1/orchestrator/secret-env.sh", "rendered/phase1/postgres/init.sh", "rendered/phase1/proxy/Caddyfile", "rendered/phase1/postiz/watchdog.sh", "rendered/phase1/temporal/dynamicconfig.yaml"}, rep.Files)
	assert.FileExists(t, filepath.Join(dir, "rendered", "phase1", "docker-compose.yml"))
	assertNoSecrets(t, filepath.Join(dir, "vault"), r.stdout+r.stderr)

	// --state-dir beats the environment.
	r = run(t, dir, "render", "--state-dir", "other", "-o", "out2")
	require.Equal(t, 0, r.code, r.stderr)
	assert.DirExists(t, filepath.Join(dir, "other", "secrets"))
}

// assertNoSecrets fails when any generated secret appears in output.
func assertNoSecrets(t *testing.T, stateDir, output string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(stateDir, "secrets"))
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	for _, e := range entries {
		v, err := os.ReadFile(filepath.Join(stateDir, "secrets", e.Name()))
		require.NoError(t, err)
		require.NotEmpty(t, v)
		assert.NotContains(t, output, string(v), "secret %s printed", e.Name())
	}
}

func TestSchemaAndVersion(t *testing.T) {
	dir := t.TempDir()
	r := run(t, dir, "schema")
	require.Equal(t, 0, r.code)
	var schema map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &schema))
	assert.Equal(t, "https://json-schema.org/draft/2020-12/schema", schema["$schema"])

	r = run(t, dir, "version", "--output", "json")
	require.Equal(t, 0, r.code)
	var v map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
	assert.NotEmpty(t, v["version"])
	assert.NotEmpty(t, v["go_version"])

	r = run(t, dir, "completion", "bash")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "bash completion")
}

func TestConfigFile(t *testing.T) {
	dir := copyExample(t, "minimal")
	require.NoError(t, os.Rename(filepath.Join(dir, "stack.yaml"), filepath.Join(dir, "prod.yaml")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "orchestrator.yaml"), []byte("file: prod.yaml\n"), 0o644))
	r := run(t, dir, "validate", "--config", "orchestrator.yaml")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "prod.yaml is valid")
}

func TestApplyCommandsUsage(t *testing.T) {
	dir := copyExample(t, "minimal")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"up", "--phase", "2"}, "invalid --phase 2: only phase 1 (docker compose) can be applied in this version"},
		{[]string{"up", "--progress", "fancy"}, `invalid --progress "fancy": use auto, tty, plain, json or quiet`},
		{[]string{"plan", "--output", "yaml"}, `invalid --output "yaml": use text or json`},
		{[]string{"status", "extra"}, `unknown command "extra" for "orchestrator status"`},
		{[]string{"down", "--bogus"}, "unknown flag: --bogus"},
	} {
		r := run(t, dir, tt.args...)
		assert.Equal(t, 2, r.code, "%v: %s", tt.args, r.stderr)
		assert.Contains(t, r.stderr, tt.want)
	}
}

func TestUpRefusesUnsetPassThroughSecrets(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte("version: 1\nname: x\ndomain: x.example.com\napp: {image: ghcr.io/a/app:1.0.0, secrets: [ORCH_TEST_UNSET_TOKEN]}\n"), 0o644))
	r := run(t, dir, "up")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "secrets listed in the spec are not set in the environment: ORCH_TEST_UNSET_TOKEN (service app)")
}

// TestCommandsThatWriteTakeTheLock: plan and render write the same files an
// up uses, so while another run holds the stack they must not run either.
func TestCommandsThatWriteTakeTheLock(t *testing.T) {
	dir := copyExample(t, "minimal")
	store, err := state.Open(filepath.Join(dir, state.DirName))
	require.NoError(t, err)
	lock, err := store.Lock(context.Background(), "up", 0)
	require.NoError(t, err)
	defer lock.Unlock()
	for _, args := range [][]string{{"up"}, {"plan"}, {"down"}, {"render"}} {
		r := run(t, dir, args...)
		assert.Equal(t, 1, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, fmt.Sprintf("stack is locked by %s (pid %d, operation up)", lock.Info.Who, os.Getpid()), args)
	}
}

// render --phase=2 writes the Kubernetes manifests from the same spec and
// the same secret state as phase 1, with no secret value in any file, and
// says what it leaves out.
func TestRenderPhase2(t *testing.T) {
	dir := copyExample(t, "platform")
	r := run(t, dir, "render", "--phase=1", "--output", "json")
	require.Equal(t, 0, r.code, r.stderr)
	r = run(t, dir, "render", "--phase=2", "--output", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var rep struct {
		Phase    int      `json:"phase"`
		OutDir   string   `json:"out_dir"`
		Files    []string `json:"files"`
		Warnings []string `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	assert.Equal(t, 2, rep.Phase)
	assert.Equal(t, filepath.Join("rendered", "phase2"), rep.OutDir)
	assert.Contains(t, rep.Files, filepath.Join("rendered", "phase2", "kustomization.yaml"))
	assert.Contains(t, rep.Files, filepath.Join("rendered", "phase2", "postgres.yaml"))
	assert.NotContains(t, rep.Files, filepath.Join("rendered", "phase2", "secrets.yaml"))
	require.NotEmpty(t, rep.Warnings)
	assert.Contains(t, strings.Join(rep.Warnings, "\n"), "portainer is not rendered")
	var all strings.Builder
	for _, f := range rep.Files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		all.Write(b)
	}
	assertNoSecrets(t, filepath.Join(dir, ".orchestrator"), all.String()+r.stdout+r.stderr)
	// Rendering again with the same state changes nothing.
	r = run(t, dir, "render", "--phase=2")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "(0 of 8 files changed)")
}
