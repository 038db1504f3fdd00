package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/diag"
)

const good = `version: 1
name: acme
domain: acme.example.com
app:
  image: ghcr.io/acme/app:1.0.0
  database: true
`

func TestLoadGood(t *testing.T) {
	st, ds := Load("stack.yaml", []byte(good))
	require.Empty(t, ds)
	require.NotNil(t, st)
	assert.Equal(t, "acme", st.Name)
	assert.True(t, st.App.Database)
	assert.Equal(t, &diag.Pos{Filename: "stack.yaml", Line: 5, Column: 10}, st.Pos("app.image"))
	assert.Equal(t, &diag.Pos{Filename: "stack.yaml", Line: 5, Column: 3}, st.KeyPos("app.image"))
	// A path that is not in the file falls back to its nearest parent.
	assert.Equal(t, &diag.Pos{Filename: "stack.yaml", Line: 5, Column: 3}, st.Pos("app.port"))
}

// TestBadSpecs asserts the exact first line (position, severity, message,
// field path) and hint of each diagnostic.
func TestBadSpecs(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string // "file:line:col: severity: summary (path) | hint"
	}{
		{
			name: "typo in a key",
			spec: good + "components:\n  tracardi: {enabeld: true}\n",
			want: []string{`stack.yaml:8:14: error: unknown key "enabeld" (components.tracardi) | did you mean "enabled"?`},
		},
		{
			name: "unknown top-level key",
			spec: good + "servics: {}\n",
			want: []string{`stack.yaml:7:1: error: unknown key "servics" | did you mean "services"?`},
		},
		{
			name: "wrong type",
			spec: strings.Replace(good, "  database: true\n", "  port: eighty\n", 1),
			want: []string{`stack.yaml:6:9: error: expected an integer, got the string "eighty" (app.port) | `},
		},
		{
			name: "command as a string",
			spec: good + "services:\n  worker: {image: ghcr.io/acme/w:1.0.0, command: worker --fast, port: 9000, health: /h}\n",
			want: []string{`stack.yaml:8:50: error: expected a list, got the string "worker --fast" (services.worker.command) | write it as a list: [worker, --fast]`},
		},
		{
			name: "missing required keys",
			spec: "version: 1\napp: {image: ghcr.io/acme/app:1.0.0}\n",
			want: []string{
				`stack.yaml:1:1: error: missing required key "name" (name) | add e.g. ` + "`name: acme`" + ` (lower case letters, digits and '-')`,
				`stack.yaml:1:1: error: missing required key "domain" (domain) | add e.g. ` + "`domain: acme.example.com`" + `; on a laptop use ` + "`domain: acme.localhost`" + ` with ` + "`tls: {mode: internal}`",
			},
		},
		{
			name: "name is not a DNS label",
			spec: strings.Replace(good, "name: acme", "name: Acme Corp", 1),
			want: []string{`stack.yaml:2:7: error: name "Acme Corp" is not a DNS label: lower case letters, digits and '-', at most 63, starting and ending with a letter or digit (name) | try "acme-corp"`},
		},
		{
			name: "unpinned and latest images",
			spec: strings.Replace(good, "app:1.0.0", "app:latest", 1) + "services:\n  w: {image: busybox, port: 1, health: /}\n",
			want: []string{
				`stack.yaml:5:10: error: image "ghcr.io/acme/app:latest" uses the moving tag latest (app.image) | pin an exact version instead of latest`,
				`stack.yaml:8:14: error: image "busybox" has no tag; unpinned images change under you (services.w.image) | pin an exact version, e.g. busybox:1.0.0`,
			},
		},
		{
			name: "database version and size",
			spec: good + "database: {version: \"15\", storage: lots}\n",
			want: []string{
				`stack.yaml:7:21: error: unsupported PostgreSQL version "15" (database.version) | supported majors: 16, 17, 18`,
				`stack.yaml:7:36: error: "lots" is not a positive size (database.storage) | use a Kubernetes quantity such as 512Mi, 2Gi or 20Gi`,
			},
		},
		{
			name: "duplicate key",
			spec: good + "name: again\n",
			want: []string{`stack.yaml:7:1: error: duplicate key "name" | remove one; the first is on line 2`},
		},
		{
			name: "invalid YAML",
			spec: "version: 1\nname: [acme\n",
			want: []string{`stack.yaml:2:1: error: invalid YAML: did not find expected ',' or ']' | check indentation and quoting on this line or the one before it`},
		},
		{
			name: "tls mode typo and bad email",
			spec: good + "tls: {mode: interal, email: ops}\n",
			want: []string{
				`stack.yaml:7:13: error: unknown tls mode "interal"; expected acme or internal (tls.mode) | did you mean "internal"?`,
				`stack.yaml:7:29: error: tls email "ops" is not an e-mail address (tls.email) | use an address such as ops@example.com`,
			},
		},
		{
			name: "override healthcheck and resources",
			spec: good + "overrides:\n  app:\n    resources: {memory: 2GB}\n    healthcheck: {test: [CURL, x], interval: soon}\n",
			want: []string{
				`stack.yaml:9:25: error: "2GB" is not a positive size (overrides.app.resources.memory) | use a Kubernetes quantity such as 512Mi, 2Gi or 20Gi`,
				`stack.yaml:10:26: error: healthcheck test must start with CMD, CMD-SHELL or NONE, got "CURL" (overrides.app.healthcheck.test[0]) | start the list with CMD, CMD-SHELL or NONE`,
				`stack.yaml:10:46: error: "soon" is not a duration (overrides.app.healthcheck.interval) | use a duration such as 10s or 1m30s`,
			},
		},
		{
			name: "phase settings",
			spec: good + "phase1: {host: ftp://x, bind: localhost}\nphase2: {provider: aws2}\n",
			want: []string{
				`stack.yaml:7:16: error: unsupported docker host scheme "ftp" (phase1.host) | use ssh://, tcp://, unix:// or npipe://`,
				`stack.yaml:7:31: error: bind address "localhost" is not an IP address (phase1.bind) | use an IP address of the host, e.g. 127.0.0.1 for this machine only; leave bind out for every interface`,
				`stack.yaml:8:9: error: phase2.provider is set but region is not (phase2) | add e.g. ` + "`region: eu-west-1`",
				`stack.yaml:8:20: error: unknown provider "aws2"; expected aws, gcp or azure (phase2.provider) | did you mean "aws"?`,
			},
		},
		{
			name: "secret collides with env",
			spec: good + "services:\n  w:\n    image: ghcr.io/acme/w:1.0.0\n    env: {TOKEN: x, 1BAD: y}\n    secrets: [TOKEN, TOKEN]\n",
			want: []string{
				`stack.yaml:10:21: error: "1BAD" is not a valid environment variable name (services.w.env.1BAD) | use letters, digits and '_', not starting with a digit`,
				`stack.yaml:11:15: error: "TOKEN" is both a plain env variable and a secret (services.w.secrets[0]) | remove it from env: secret values come from the environment when applying`,
				`stack.yaml:11:22: error: secret "TOKEN" is listed twice (services.w.secrets[1]) | remove the repeated name`,
			},
		},
		{
			name: "empty file",
			spec: "# nothing yet\n",
			want: []string{"stack.yaml:1:1: error: the spec is empty | start from `orchestrator init`, which writes a commented stack.yaml"},
		},
		{
			name: "not a mapping",
			spec: "- a\n- b\n",
			want: []string{"stack.yaml:1:1: error: expected a mapping, got a list | write it as `key: value` lines indented under the top level"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ds := Load("stack.yaml", []byte(tt.spec))
			assert.Nil(t, st)
			var got []string
			for _, d := range ds {
				got = append(got, d.Subject.String()+": "+d.Severity.String()+": "+d.Summary+pathSuffix(d.Path)+" | "+d.Hint)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func pathSuffix(p string) string {
	if p == "" {
		return ""
	}
	return " (" + p + ")"
}

// TestDiagnosticText pins the human rendering: position, snippet, caret
// under the whole token, expectation and hint.
func TestDiagnosticText(t *testing.T) {
	src := []byte(good + "components:\n  tracardi: {enabeld: true}\n")
	_, ds := Load("stack.yaml", src)
	var b strings.Builder
	require.NoError(t, ds.WriteText(&b, diag.Sources{"stack.yaml": src}))
	assert.Equal(t, `stack.yaml:8:14: error: unknown key "enabeld" (components.tracardi)
   8 |   tracardi: {enabeld: true}
     |              ^^^^^^^
     = expected one of: enabled, version
     = hint: did you mean "enabled"?
`, b.String())
}

func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/stack.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		st, _, ds := LoadFile(f)
		assert.False(t, ds.HasErrors(), "%s: %v", f, ds)
		assert.NotNil(t, st, f)
	}
}

func TestWithDefaults(t *testing.T) {
	st, ds := Load("stack.yaml", []byte(good))
	require.Empty(t, ds)
	eff := st.WithDefaults(map[string]string{"kestra": "v9"})
	assert.Equal(t, DefaultAppPort, eff.App.Port)
	assert.Equal(t, DefaultAppHealth, eff.App.Health)
	assert.Equal(t, 1, *eff.App.Replicas)
	assert.Equal(t, "v9", eff.Components.Kestra.Version)
	assert.False(t, eff.Components.Kestra.Enabled)
	assert.Equal(t, DefaultPostgresVersion, eff.Database.Version)
	assert.Equal(t, "acme", eff.TLS.Mode, "the spec sets no tls.mode, so it defaults to acme")
	// The original is untouched.
	assert.Zero(t, st.App.Port)
	assert.Nil(t, st.Components.Kestra)
	assert.Empty(t, st.TLS.Mode)

	// A mode the spec sets is kept.
	st, ds = Load("stack.yaml", []byte(good+"tls: {mode: internal}\n"))
	require.Empty(t, ds)
	assert.Equal(t, "internal", st.WithDefaults(nil).TLS.Mode)
}

func TestSchemaMatchesTypes(t *testing.T) {
	b, err := JSONSchema()
	require.NoError(t, err)
	s := string(b)
	for _, key := range []string{`"phase2"`, `"overrides"`, `"start_period"`, `"additionalProperties": false`, `"pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"`} {
		assert.Contains(t, s, key)
	}
	// The committed copy (referenced by the examples) is current.
	committed, err := os.ReadFile("../../schema/stack-v1.json")
	require.NoError(t, err, "run `make golden` to write schema/stack-v1.json")
	assert.Equal(t, strings.TrimSpace(s), strings.TrimSpace(string(committed)), "schema/stack-v1.json is stale: run `make golden`")
}

func TestSuggest(t *testing.T) {
	names := []string{"enabled", "version", "port", "name", "services", "internal", "aws", "postgres"}
	for in, want := range map[string]string{
		"enabeld": "enabled", "prot": "port", "servics": "services", "interal": "internal",
		"aws2": "aws", "postgress": "postgres", "base": "", "zzz": "", "Version": "version",
	} {
		assert.Equal(t, want, suggest(in, names), in)
	}
}
