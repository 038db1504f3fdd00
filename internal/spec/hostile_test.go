package spec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileBudget is how long the loader may take on any input: the issue's
// inputs took 10 s and 96 s before the bounds.
const hostileBudget = time.Second

// billionLaughs nests ten aliases per level, levels deep: 10^levels
// strings from a few hundred bytes.
func billionLaughs(levels int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: acme\ndomain: acme.example.com\napp:\n  image: ghcr.io/acme/app:1.0.0\n  env: &l0 {A: lol, B: lol, C: lol, D: lol, E: lol, F: lol, G: lol, H: lol, I: lol, J: lol}\nservices:\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "  s%d: &l%d {image: ghcr.io/acme/app:1.0.0, command: [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]}\n")
	}
	return b.String()
}

// wideAliases is the 84 KB shape: one anchored env of keys
// entries, repeated by services aliases. Quadratic, not exponential:
// the spec's types allow no deeper nesting.
func wideAliases(keys, services int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: acme\ndomain: acme.example.com\napp: {image: &i ghcr.io/acme/app:1.0.0, env: &e {")
	for k := 0; k < keys; k++ {
		if k > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "K%d: x", k)
	}
	b.WriteString("}}\nservices:\n")
	for s := 0; s < services; s++ {
		fmt.Fprintf(&b, "  s%d: {image: *i, env: *e}\n", s)
	}
	return b.String()
}

// manyServices is a legitimate spec at the size limit: n services written
// the way hack/genspec writes them.
func manyServices(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: bench\ndomain: bench.example.com\nservices:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  svc-%04d: {image: ghcr.io/acme/worker:1.4.%d, command: [worker, --shard, \"%d\"], port: 8080, health: /healthz, env: {SHARD: \"%d\", LOG_LEVEL: info}}\n", i, i%7, i, i)
	}
	return b.String()
}

// TestHostileInputsAreBounded: each input ends, fast, in a positioned
// error; none is walked or decoded in full. Before the bounds the wide
// aliases took about 9 s and 1 GB, the laughs did not end.
func TestHostileInputsAreBounded(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want string // the first error, "file:line:col: summary"
	}{
		{"billion laughs", billionLaughs(9), "stack.yaml:11:73: aliases expand the spec beyond 125000 nodes"},
		{"wide aliases, 80 KB", wideAliases(4000, 1400), "stack.yaml:20:25: aliases expand the spec beyond 125000 nodes"},
		{"alias inside its own anchor", "version: 1\nname: acme\ndomain: acme.example.com\napp: &a {image: ghcr.io/acme/app:1.0.0, env: *a}\n",
			"stack.yaml:4:46: alias *a refers to the node that contains it"},
		{"over the size limit", "version: 1\n#" + strings.Repeat("x", MaxSpecBytes) + "\n", "stack.yaml: the spec is larger than 512 KiB (524288 bytes)"},
		{"deep nesting", "version: 1\nx: " + strings.Repeat("[", MaxSpecBytes-20), "stack.yaml:2:"},
		{"many small nodes, at the size limit", "version: 1\nname: acme\ndomain: acme.example.com\napp: {image: ghcr.io/acme/app:1.0.0, command: [" +
			strings.Repeat("a,", MaxSpecBytes/2-100) + "a]}\n", "stack.yaml:4:250020: the spec has more than 125000 nodes"},
		{"raw control character", "version: 1\nname: acme # \x1b[2J\n", "stack.yaml:2:14: invalid YAML: control character U+001B is not allowed"},
		{"not UTF-8", "version: 1\nname: \xff\n", "stack.yaml:2:7: invalid YAML: byte 0xff is not UTF-8"},
		{"3,300 services, at the size limit", manyServices(3300), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			st, ds := Load("stack.yaml", []byte(tt.spec))
			took := time.Since(start)
			assert.Less(t, took, hostileBudget, "Load took %s", took)
			if tt.want == "" {
				require.Less(t, len(tt.spec), MaxSpecBytes)
				// Legitimate, only large: loads, within the budget.
				assert.False(t, ds.HasErrors(), "%v", ds)
				return
			}
			assert.Nil(t, st)
			require.True(t, ds.HasErrors())
			got := ds[0].Subject.String() + ": " + ds[0].Summary
			assert.True(t, strings.HasPrefix(got, tt.want), "got %q\nwant prefix %q", got, tt.want)
		})
	}
}

// TestLoadFileBoundsItsInput: an endless file is refused once it passes
// the limit, naming the file and the limit, and a read that blocks (a FIFO
// whose writer sends nothing) ends as soon as the context does.
func TestLoadFileBoundsItsInput(t *testing.T) {
	t.Run("/dev/zero", func(t *testing.T) {
		start := time.Now()
		st, _, ds := LoadFileContext(context.Background(), "/dev/zero")
		assert.Less(t, time.Since(start), hostileBudget)
		assert.Nil(t, st)
		require.Len(t, ds, 1)
		assert.Equal(t, "/dev/zero", ds[0].Subject.String())
		assert.Equal(t, "the spec is larger than 512 KiB (524288 bytes), the most a spec may be", ds[0].Summary)
	})
	t.Run("blocked FIFO", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "stack.yaml")
		require.NoError(t, syscall.Mkfifo(fifo, 0o600))
		// A writer that opens the FIFO and sends nothing: the read blocks.
		w, err := os.OpenFile(fifo, os.O_RDWR, 0)
		require.NoError(t, err)
		defer w.Close()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		st, _, ds := LoadFileContext(ctx, fifo)
		assert.Less(t, time.Since(start), hostileBudget)
		assert.Nil(t, st)
		require.Len(t, ds, 1)
		assert.Contains(t, ds[0].Summary, "context canceled")
	})
}

// TestNULIsRefusedWithItsPosition: a NUL byte validates nowhere; no
// environment, command line, label or file name can carry it, and the
// engine only finds out at container create.
func TestNULIsRefusedWithItsPosition(t *testing.T) {
	tests := []struct{ name, spec, want string }{
		{"env value", good + "  env: {E: \"a\\0b\"}\n", `stack.yaml:7:12: error: env value contains a NUL character (\0), which no container can take (app.env.E)`},
		{"command argument", good + "  command: [serve, \"--x=\\0\"]\n", `stack.yaml:7:20: error: command argument contains a NUL character (\0), which no container can take (app.command[1])`},
		{"override env", good + "overrides:\n  app: {env: {E: \"\\0\"}}\n", `stack.yaml:8:18: error: env value contains a NUL character (\0), which no container can take (overrides.app.env.E)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ds := Load("stack.yaml", []byte(tt.spec))
			assert.Nil(t, st)
			var got []string
			for _, d := range ds {
				got = append(got, d.Subject.String()+": "+d.Severity.String()+": "+d.Summary+pathSuffix(d.Path))
			}
			assert.Equal(t, []string{tt.want}, got)
		})
	}
}

// TestValuesMeetTheirGrammar: values that end up in a shell command or a
// config file are checked against the grammar of what they are, with
// their position; those that pass are quoted at their sink (the catalog's
// tests run them there).
func TestValuesMeetTheirGrammar(t *testing.T) {
	tests := []struct{ name, spec, want string }{
		{"health path with a space", good + "  health: \"/healthz;touch /tmp/x\"\n",
			`stack.yaml:7:11: error: health "/healthz;touch /tmp/x" is not an HTTP path: ' ' is not allowed in a URL path or query (app.health)`},
		{"health path with a newline", good + "  health: \"/h\\nx\"\n",
			`stack.yaml:7:11: error: health "/h\nx" is not an HTTP path: '\n' is not allowed in a URL path or query (app.health)`},
		{"health path with a backtick", good + "  health: \"/h`id`\"\n",
			"stack.yaml:7:11: error: health \"/h`id`\" is not an HTTP path: '`' is not allowed in a URL path or query (app.health)"},
		{"health path with a fragment", good + "  health: \"/h#x\"\n",
			`stack.yaml:7:11: error: health "/h#x" is not an HTTP path: '#' is not allowed in a URL path or query (app.health)`},
		{"health path with a broken escape", good + "  health: \"/h%zz\"\n",
			`stack.yaml:7:11: error: health "/h%zz" is not an HTTP path: '%' must start an escape such as %20 (app.health)`},
		{"tls email with a brace", good + "tls: {email: \"ops@acme.example.com}\"}\n",
			`stack.yaml:7:14: error: tls email "ops@acme.example.com}" is not an e-mail address (tls.email)`},
		{"tls email with a placeholder", good + "tls: {email: \"{env.HOME}@acme.example.com\"}\n",
			`stack.yaml:7:14: error: tls email "{env.HOME}@acme.example.com" is not an e-mail address (tls.email)`},
		{"tls email with a quote", good + "tls: {email: 'o\"ps@acme.example.com'}\n",
			`stack.yaml:7:14: error: tls email "o\"ps@acme.example.com" is not an e-mail address (tls.email)`},
		{"tls email with a space", good + "tls: {email: \"ops @acme.example.com\"}\n",
			`stack.yaml:7:14: error: tls email "ops @acme.example.com" is not an e-mail address (tls.email)`},
		{"tls email with a bad domain", good + "tls: {email: \"ops@acme..com\"}\n",
			`stack.yaml:7:14: error: tls email "ops@acme..com" is not an e-mail address (tls.email)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ds := Load("stack.yaml", []byte(tt.spec))
			assert.Nil(t, st)
			var got []string
			for _, d := range ds {
				got = append(got, d.Subject.String()+": "+d.Severity.String()+": "+d.Summary+pathSuffix(d.Path))
			}
			assert.Equal(t, []string{tt.want}, got)
		})
	}
	// What the grammars allow, however odd, loads: the sinks quote it.
	for _, ok := range []string{
		good + "  health: \"/healthz;touch$IFS/tmp/x\"\n",
		good + "  health: \"/h?a=1&b='2'&c=$(id)\"\n",
		good + "  health: /%7Eh/@:!*+,=\n",
		good + "tls: {email: \"o'brien+ops#1@acme.example.com\"}\n",
		good + "tls: {email: \"OPS.Team@Acme.Example.com\"}\n",
	} {
		_, ds := Load("stack.yaml", []byte(ok))
		assert.False(t, ds.HasErrors(), "%s\n%v", ok, ds)
	}
}
