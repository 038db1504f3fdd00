package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// sshHost starts the project's sshd (hack/testenv/sshd.sh) and returns the
// ssh:// host and the directory of its ssh wrapper, for PATH.
func sshHost(t *testing.T) (host, path string) {
	t.Helper()
	cmd := exec.Command("bash", "../../hack/testenv/sshd.sh")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err, "hack/testenv/sshd.sh")
	env := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	host, path = env["ORCHESTRATOR_TESTENV_SSH_HOST"], env["ORCHESTRATOR_TESTENV_SSH_PATH"]
	require.NotEmpty(t, host)
	require.NotEmpty(t, path)
	return host, path
}

// remoteSecrets are the hostile values the remote stack's state holds, one
// per consumer, each with the trailing newline an editor adds. Each means
// something in one sink: URL userinfo, compose's env file and
// interpolation, YAML, SQL quoting.
var remoteSecrets = map[string]string{
	"db-c1-password":        "p@ss:w/rd#1?x=y&z",
	"db-c2-password":        `it's a \ back\slash\`,
	"db-c3-password":        `quo"te $HOME ${X} $$`,
	"db-c4-password":        "sp ace %41 ünï ✓",
	"db-kestra-password":    "-_1 # not: a comment",
	"kestra-admin-password": "key: {flow} [list] 'q' \"dq\"",
	"postgres-password":     "super@user:pw/#",
}

// TestRemoteHostCannotSeeOurFiles applies a stack the way a laptop applies
// it to a VPS: over ssh://, from a client whose files the engine cannot
// see. The orchestrator runs in its own mount namespace with a private
// tmpfs over its spec, state and render directories, so dockerd (in the
// host's namespace) finds nothing at any path we know. Secrets and configs
// must still arrive, hostile secret values must survive every sink (env
// file, URL, YAML, SQL), and no secret may show in `docker inspect`.
func TestRemoteHostCannotSeeOurFiles(t *testing.T) {
	const name = "e2eremote"
	host, sshPath := sshHost(t)
	consumer := func(n string) string {
		// Each consumer connects with its DATABASE_URL exactly as an app
		// would; it is healthy once PostgreSQL accepted the URL's password.
		// c1 and c2 read it from their environment (secrets_in_env: an env
		// file), c3 and c4 from the file DATABASE_URL_FILE names.
		url, inEnv := `"$(cat "$DATABASE_URL_FILE")"`, "false"
		if n == "c1" || n == "c2" {
			url, inEnv = `"$DATABASE_URL"`, "true"
		}
		return fmt.Sprintf(`  %s: {image: %q, database: true, secrets_in_env: %s, command: [sh, -c, 'until psql %s -tAc "select current_user" >/tmp/who 2>/tmp/err; do sleep 1; done; exec sleep 1000000']}
`, n, pgImage, inEnv, url)
	}
	spec := fmt.Sprintf(`version: 1
name: %s
domain: %s.localhost
tls: {mode: internal}
phase1: {host: %q, http_port: %d, https_port: %d}
components:
  kestra: {enabled: true}
services:
`, name, name, host, freePort(t), freePort(t))
	for _, n := range []string{"c1", "c2", "c3", "c4"} {
		spec += consumer(n)
	}
	spec += "overrides:\n"
	for _, n := range []string{"c1", "c2", "c3", "c4"} {
		spec += fmt.Sprintf("  %s: {healthcheck: {test: [CMD-SHELL, 'test -s /tmp/who'], interval: 1s, timeout: 3s, retries: 120}}\n", n)
	}
	spec += fmt.Sprintf(`  postgres: {image: %q}
  postgres-init: {image: %q}
  proxy: {image: %q, env: {PORTS: "2019,80,443"}}
  kestra: {image: %q, env: {PORTS: "8080,8081"}, healthcheck: {test: [CMD, /standin, probe, "http://127.0.0.1:8081/health"], interval: 2s, timeout: 3s, retries: 30}}
  kestra-init: {image: %q, command: ["true"]}
`, pgImage, pgImage, webImage, webImage, webImage)
	// The wrapper first on PATH for the whole test, cleanup's `down` too.
	t.Setenv("PATH", sshPath+string(os.PathListSeparator)+os.Getenv("PATH"))
	src := newStack(t, spec)

	// What the namespace starts from: the spec and a state directory with
	// the hostile values, copied into the private tmpfs.
	seed := filepath.Join(src, "seed")
	require.NoError(t, os.MkdirAll(filepath.Join(seed, "state", "secrets"), 0o700))
	for f, v := range remoteSecrets {
		require.NoError(t, os.WriteFile(filepath.Join(seed, "state", "secrets", f), []byte(v+"\n"), 0o600))
	}
	work := filepath.Join(src, "private")
	require.NoError(t, os.Mkdir(work, 0o700))
	script := `set -u
mount -t tmpfs -o mode=0700 tmpfs "$W"
cp "$SRC/stack.yaml" "$W/stack.yaml"
cp -a "$SEED/state" "$W/state"
o() { "$BIN" -f "$W/stack.yaml" --state-dir "$W/state" "$@"; }
o up --progress plain --wait-timeout 5m --skip-preflight; echo "UP_EXIT=$?"
o plan --detailed-exitcode >/dev/null; echo "PLAN_EXIT=$?"
o status --output json; echo "STATUS_EXIT=$?"
# Prove the namespace worked: the engine's host does not have our files.
test -e "$W/rendered/phase1/docker-compose.yml" && echo RENDERED_HERE=1
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Dir = src
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORCHESTRATOR_") && !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "DOCKER_HOST=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"),
		"W="+work, "SRC="+src, "SEED="+seed, "BIN="+bin)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	got := string(out)
	require.Contains(t, got, "UP_EXIT=0", "up over ssh:// from a client the engine cannot see:\n%s", got)
	assert.Contains(t, got, "PLAN_EXIT=0", "plan after up is not empty:\n%s", got)
	assert.Contains(t, got, "STATUS_EXIT=0")
	assert.Contains(t, got, "RENDERED_HERE=1")
	// From outside the namespace the render directory is empty: had the
	// engine needed a path of ours, it could not have found it.
	entries, err := os.ReadDir(work)
	require.NoError(t, err)
	assert.Empty(t, entries, "the private tmpfs leaked into the host's namespace")
	for _, v := range remoteSecrets {
		assert.NotContains(t, got, v, "a secret value reached the output")
	}

	t.Run("every consumer connected with its hostile password", func(t *testing.T) {
		for _, n := range []string{"c1", "c2", "c3", "c4"} {
			assert.Equal(t, n, docker(t, "exec", name+"-"+n+"-1", "cat", "/tmp/who"), n)
		}
	})
	t.Run("kestra's YAML carries the values exactly", func(t *testing.T) {
		cfg := docker(t, "exec", name+"-kestra-1", "cat", "/run/secrets/kestra-application.yml")
		var doc struct {
			Datasources struct {
				Postgres struct{ Password string } `yaml:"postgres"`
			} `yaml:"datasources"`
			Kestra struct {
				Server struct {
					BasicAuth struct{ Password string } `yaml:"basic-auth"`
				} `yaml:"server"`
			} `yaml:"kestra"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(cfg), &doc))
		assert.Equal(t, remoteSecrets["db-kestra-password"], doc.Datasources.Postgres.Password)
		assert.Equal(t, remoteSecrets["kestra-admin-password"], doc.Kestra.Server.BasicAuth.Password)
		// And the role really has that password: SQL quoting held too.
		got, err := psql(t, name, "kestra", remoteSecrets["db-kestra-password"], "kestra", "select current_user")
		require.NoError(t, err, got)
		assert.Equal(t, "kestra", got)
	})
	t.Run("configs arrived, nothing is bind-mounted from the client", func(t *testing.T) {
		assert.Contains(t, docker(t, "exec", name+"-proxy-1", "cat", "/etc/caddy/Caddyfile"), "kestra."+name+".localhost")
		for _, id := range strings.Fields(containerIDs(t, name)) {
			mounts := docker(t, "inspect", "-f", `{{range .Mounts}}{{.Source}} {{end}}`, id)
			assert.False(t, strings.Contains(mounts, src), "container %s mounts a path of the client: %s", id, mounts)
			insp := docker(t, "inspect", id)
			for _, f := range []string{"postgres-password", "kestra-admin-password", "db-kestra-password"} {
				assert.False(t, strings.Contains(insp, remoteSecrets[f]), "docker inspect %s shows secret %s", id, f)
			}
		}
	})
}
