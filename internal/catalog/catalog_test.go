package catalog

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/model"
	"github.com/aipairpro/orchestrator/internal/spec"
)

func build(t *testing.T, src string) (*model.Deployment, string) {
	t.Helper()
	st, ds := spec.Load("stack.yaml", []byte(src))
	require.False(t, ds.HasErrors(), "%v", ds)
	dep, ds := Build(st)
	var msgs []string
	for _, d := range ds {
		msgs = append(msgs, fmt.Sprintf("%s: %s", d.Subject, d.Summary))
	}
	return dep, strings.Join(msgs, "\n")
}

func platform(t *testing.T, extra string) *model.Deployment {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "platform", "stack.yaml"))
	require.NoError(t, err)
	lines := strings.Split(string(src), "\n")
	if strings.Contains(extra, "phase1:") {
		// The example has a phase1 line of its own; extra replaces it.
		for i, l := range lines {
			if strings.HasPrefix(l, "phase1:") {
				lines[i] = ""
			}
		}
	}
	dep, msgs := build(t, strings.Join(lines, "\n")+extra)
	require.NotNil(t, dep, msgs)
	return dep
}

// A custom service's database and role take its name, so every name
// PostgreSQL keeps for itself is refused at validate time, with the
// position of the service.
func TestDatabaseNamesPostgresKeepsAreRefused(t *testing.T) {
	for _, name := range []string{"template0", "template1", "public", "none"} {
		t.Run(name, func(t *testing.T) {
			src := fmt.Sprintf("version: 1\nname: acme\ndomain: acme.test\nservices:\n  %s: {image: 'r/x:1', database: true, port: 80, health: /}\n", name)
			dep, msgs := build(t, src)
			assert.True(t, dep == nil, "the deployment was built")
			assert.Contains(t, msgs, "stack.yaml:5:3: service \""+name+"\" cannot have a database")
		})
	}
	// The same names without a database are fine: only the database and
	// role are PostgreSQL's.
	dep, msgs := build(t, "version: 1\nname: acme\ndomain: acme.test\nservices:\n  public: {image: 'r/x:1', port: 80, health: /}\n")
	require.NotNil(t, dep, msgs)
	// Names a DNS label cannot spell are still the function's business.
	for name, reserved := range map[string]bool{
		"postgres": true, "template0": true, "template1": true, "public": true, "none": true,
		"current_user": true, "session_user": true, "current_role": true, "pg_monitor": true, "pg_anything": true,
		"app": false, "worker": false, "pgbouncer": false, "postgresql": false, "publication": false,
	} {
		assert.Equal(t, reserved, postgresReserved(name) != "", name)
	}
}

// envFileRef matches variables whose value names a file inside the
// container (MYSQL_PASSWORD_FILE, DYNAMIC_CONFIG_FILE_PATH, ...).
var envFileRef = regexp.MustCompile(`(_FILE|_FILE_PATH|_CONFIG_PATH)$`)

// Every file a service is told to read through its environment is one the
// deployment puts there (a secret, a config or a volume): an image's own
// files differ between versions and stand-ins, so the catalog never relies
// on them. Temporal's development-sql.yaml, absent from auto-setup, was
// this kind.
func TestEveryFileNamedInTheEnvironmentIsMounted(t *testing.T) {
	dep := platform(t, "")
	checked := 0
	for _, s := range dep.Services {
		for k, v := range s.Env {
			if !envFileRef.MatchString(k) {
				continue
			}
			checked++
			require.True(t, strings.HasPrefix(v, "/"), "%s: %s=%s is relative: it depends on the image's working directory", s.Name, k, v)
			assert.True(t, mounts(s, v), "%s: %s=%s names a file the deployment does not mount", s.Name, k, v)
		}
	}
	assert.GreaterOrEqual(t, checked, 4, "the platform names at least the postgres, mysql and temporal files")
}

func mounts(s model.Service, path string) bool {
	for _, m := range s.SecretMounts {
		if m.Target == path {
			return true
		}
	}
	for _, m := range s.FileMounts {
		if m.Target == path {
			return true
		}
	}
	for _, v := range s.Volumes {
		if strings.HasPrefix(path, strings.TrimSuffix(v.Target, "/")+"/") {
			return true
		}
	}
	for _, n := range s.PassFiles {
		if path == "/run/secrets/"+n {
			return true
		}
	}
	return false
}

// Every public URL the catalog hands a component, and every route's URL,
// carries a non-default HTTPS port: Postiz and Kestra compare it with the
// browser's origin. The check scans every value for the stack's domain, so
// a new component that builds its own URL is caught too.
func TestPublicURLsCarryTheHTTPSPort(t *testing.T) {
	for _, tc := range []struct {
		extra string
		port  string
	}{
		{"", ""},
		{"phase1: {https_port: 443}\n", ""},
		{"phase1: {http_port: 8080, https_port: 8443}\n", ":8443"},
	} {
		t.Run("port"+tc.port, func(t *testing.T) {
			dep := platform(t, tc.extra)
			hostRe := regexp.MustCompile(`https?://([a-z0-9.-]*` + regexp.QuoteMeta(dep.Domain) + `)(:[0-9]+)?`)
			found := 0
			values := map[string]string{}
			for _, s := range dep.Services {
				for k, v := range s.Env {
					values[s.Name+" "+k] = v
				}
			}
			for _, r := range dep.Routes {
				values["route "+r.Host] = r.URL
			}
			for _, sec := range dep.Secrets {
				values["secret "+sec.Name] = sec.Template
			}
			for where, v := range values {
				for _, m := range hostRe.FindAllStringSubmatch(v, -1) {
					found++
					assert.Equal(t, tc.port, m[2], "%s: %s", where, v)
					assert.True(t, strings.HasPrefix(m[0], "https://"), "%s: %s is not https", where, v)
				}
			}
			assert.GreaterOrEqual(t, found, 10)
		})
	}
	assert.Equal(t, "https://a.test", PublicURL("a.test", 0))
	assert.Equal(t, "https://a.test", PublicURL("a.test", 443))
	assert.Equal(t, "https://a.test:8443", PublicURL("a.test", 8443))
}
