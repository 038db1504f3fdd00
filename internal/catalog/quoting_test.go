package catalog

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/model"
)

// TestHealthPathReachesTheProbeAsOneArgument: every health path the spec's
// grammar accepts, shell metacharacters included (';', '$', '&', quotes and
// parentheses are all legal in a URL path or query), reaches wget as one
// argument, unchanged, when the CMD-SHELL string runs in /bin/sh as the
// engine runs it; nothing else runs. Before the fix the first case ran
// `touch ./pwned`.
func TestHealthPathReachesTheProbeAsOneArgument(t *testing.T) {
	for _, path := range []string{
		"/healthz;touch$IFS./pwned",
		"/h?a=1&touch$IFS./pwned&b=$(touch$IFS./pwned)",
		"/it's/'quoted'/",
		"/h!*+,=:@~%20x",
		"/healthz",
	} {
		t.Run(path, func(t *testing.T) {
			dep, msgs := build(t, "version: 1\nname: acme\ndomain: acme.example.com\napp: {image: ghcr.io/acme/app:1.0.0, port: 8080, health: \""+path+"\"}\n")
			require.NotNil(t, dep, msgs)
			var probe []string
			for _, s := range dep.Services {
				if s.Name == "app" {
					probe = s.Health.Test
				}
			}
			require.Len(t, probe, 2)
			require.Equal(t, "CMD-SHELL", probe[0])

			dir := t.TempDir()
			// wget and curl stand in as functions that record their
			// arguments, one per line.
			script := `wget() { printf '%s\n' "$@" > args; }; curl() { printf '%s\n' "$@" > args; }; ` + probe[1]
			cmd := exec.Command("/bin/sh", "-c", script)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s\n%s", probe[1], out)
			args, err := os.ReadFile(filepath.Join(dir, "args"))
			require.NoError(t, err)
			assert.Equal(t, "-q\n-O\n/dev/null\nhttp://127.0.0.1:8080"+path+"\n", string(args), "the probe: %s", probe[1])
			assert.NoFileExists(t, filepath.Join(dir, "pwned"), "the health path ran a command: %s", probe[1])
		})
	}
}

// TestEmailReachesCaddyUnchanged: every tls.email the spec's grammar
// accepts reaches Caddy's ACME issuer exactly, as the real Caddy adapts the
// rendered Caddyfile. Before the fix "#ops@..." was read as a comment.
func TestEmailReachesCaddyUnchanged(t *testing.T) {
	bin := caddyBinary(t)
	for _, email := range []string{
		"ops@acme.example.com",
		"#ops@acme.example.com",
		"o'brien+ops#1@acme.example.com",
		"a!b$c%d&e*f/g=h?i^j|k~l-m_n@acme.example.com",
	} {
		t.Run(email, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "Caddyfile")
			cf := caddyfile(model.TLS{Mode: "acme", Email: email}, []model.Route{{Host: "acme.example.com", Service: "app", Port: 8080}})
			require.NoError(t, os.WriteFile(file, []byte(cf), 0o644))
			cmd := exec.Command(bin, "adapt", "--config", file, "--adapter", "caddyfile")
			cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
			cmd.Stderr = nil
			out, err := cmd.Output()
			require.NoError(t, err, "caddy adapt:\n%s", cf)
			var cfg struct {
				Apps struct {
					TLS struct {
						Automation struct {
							Policies []struct {
								Issuers []struct {
									Module string `json:"module"`
									Email  string `json:"email"`
								} `json:"issuers"`
							} `json:"policies"`
						} `json:"automation"`
					} `json:"tls"`
				} `json:"apps"`
			}
			require.NoError(t, json.Unmarshal(out, &cfg), "%s", out)
			var emails []string
			for _, p := range cfg.Apps.TLS.Automation.Policies {
				for _, is := range p.Issuers {
					emails = append(emails, is.Email)
				}
			}
			require.NotEmpty(t, emails, "no ACME issuer in:\n%s\nfrom:\n%s", out, cf)
			for _, e := range emails {
				assert.Equal(t, email, e, "from:\n%s", strings.SplitN(cf, "\n}\n", 2)[0])
			}
		})
	}
}
