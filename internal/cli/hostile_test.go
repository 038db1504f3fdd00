package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/spec"
)

// TestInitChecksAndQuotesItsValues: init's --name and --domain are checked
// against their grammar (a line break would add keys to the scaffold: here
// a phase1.host), and what passes is quoted where it lands, so a valid
// label that YAML reads as something else ("null", "1.5") stays a string.
func TestInitChecksAndQuotesItsValues(t *testing.T) {
	refused := []struct {
		name string
		args []string
		want string
	}{
		{"line break in --domain", []string{"--name", "acme", "--domain", "acme.example.com\nphase1: {host: ssh://root@203.0.113.9}"},
			`Error: invalid --domain "acme.example.com\nphase1: {host: ssh://root@203.0.113.9}": not a DNS name; use lower-case labels separated by dots, e.g. acme.example.com`},
		{"line break in --name", []string{"--name", "acme\nphase1: {host: ssh://root@203.0.113.9}", "--domain", "acme.example.com"},
			`Error: invalid --name "acme\nphase1: {host: ssh://root@203.0.113.9}": not a DNS label (lower case letters, digits and '-'); try "acme-phase1---host--ssh---root-203-0-113-9"`},
		{"quote in --domain", []string{"--name", "acme", "--domain", `acme.example.com"`},
			`Error: invalid --domain "acme.example.com\"": not a DNS name; use lower-case labels separated by dots, e.g. acme.example.com`},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := run(t, dir, append([]string{"init"}, tt.args...)...)
			assert.Equal(t, ExitUsage, r.code, r.stderr)
			first, _, _ := strings.Cut(r.stderr, "\n")
			assert.Equal(t, tt.want, first)
			assert.NoFileExists(t, filepath.Join(dir, "stack.yaml"), "init wrote a spec from a value it should refuse")
		})
	}
	t.Run("labels YAML would read as null and a number", func(t *testing.T) {
		dir := t.TempDir()
		r := run(t, dir, "init", "--name", "null", "--domain", "1.5")
		require.Equal(t, 0, r.code, r.stderr)
		st, _, ds := spec.LoadFile(filepath.Join(dir, "stack.yaml"))
		require.False(t, ds.HasErrors(), "%v", ds)
		assert.Equal(t, "null", st.Name)
		assert.Equal(t, "1.5", st.Domain)
		assert.Equal(t, "ops@1.5", st.TLS.Email)
		assert.Empty(t, st.Phase1.Host)
	})
}

// TestDiagnosticsEscapeControlCharacters: a spec's bytes reach the terminal
// only escaped, so a spec cannot retitle the terminal, clear it or reorder
// text with bidirectional overrides; the caret still points at the cause.
func TestDiagnosticsEscapeControlCharacters(t *testing.T) {
	tests := []struct{ name, spec, want string }{
		{"terminal escapes in a comment",
			"version: 1\nname: acme # \x1b]0;pwned\x07\x1b[2J\ndomain: acme.example.com\n",
			`stack.yaml:2:14: error: invalid YAML: control character U+001B is not allowed
   2 | name: acme # \x1b]0;pwned\x07\x1b[2J
     |              ^^^^
     = hint: remove it; inside a double-quoted string write it as an escape such as \x1b

stack.yaml: 1 error, 0 warnings.
`},
		{"bidirectional override in a key",
			"version: 1\nname: acme\ndomain: acme.example.com\napp: {image: ghcr.io/acme/app:1.0.0, \u202eprot: 1}\n",
			`stack.yaml:4:38: error: unknown key "\u202eprot" (app)
   4 | app: {image: ghcr.io/acme/app:1.0.0, \u202eprot: 1}
     |                                      ^^^^^^^^^^
     = expected one of: command, database, env, health, image, port, replicas, secrets, secrets_in_env
     = hint: remove it, or check its spelling and indentation

stack.yaml: 1 error, 0 warnings.
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(tt.spec), 0o644))
			r := run(t, dir, "validate")
			assert.Equal(t, ExitError, r.code)
			for _, c := range r.stderr {
				if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f || c >= 0x80 && c <= 0x9f || c == '\u202e' {
					t.Errorf("stderr carries the control character %U:\n%q", c, r.stderr)
					break
				}
			}
			assert.Equal(t, tt.want, r.stderr)
		})
	}
}

// TestConfigFileIsBounded: the --config file is read and checked like the
// spec (size, aliases counted before viper decodes it), so a hostile one
// ends at once with its position, as the spec does.
func TestConfigFileIsBounded(t *testing.T) {
	dir := copyExample(t, "minimal")
	// One anchored mapping of 4,000 keys, repeated 1,400 times: 80 KB that
	// viper's YAML decoder would expand to 11 million values.
	var b strings.Builder
	b.WriteString("e: &e {")
	for k := 0; k < 4000; k++ {
		fmt.Fprintf(&b, "K%d: x, ", k)
	}
	b.WriteString("file: stack.yaml}\n")
	for i := 0; i < 1400; i++ {
		fmt.Fprintf(&b, "s%d: *e\n", i)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "orchestrator.yaml"), []byte(b.String()), 0o644))
	start := time.Now()
	r := run(t, dir, "validate", "--config", "orchestrator.yaml")
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, ExitError, r.code)
	assert.Equal(t, "Error: read config file: orchestrator.yaml:16:6: aliases expand the file beyond 125000 nodes (hint: write the repeated values out, or repeat smaller pieces)\n", r.stderr)
}
