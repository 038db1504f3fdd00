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
)

// TestForeignProjectIsNeverTouched: an unrelated compose project that
// happens to share the stack's name carries the same compose project
// label. Compose alone would remove its containers as orphans on up and
// delete its volumes on down --volumes; orchestrator refuses instead.
func TestForeignProjectIsNeverTouched(t *testing.T) {
	const name = "e2eforeign"
	dir := newStack(t, smallSpec(name))
	requireUp(t, dir, "--skip-preflight")
	ours := containerIDs(t, name)
	api := docker(t, "inspect", "-f", "{{.Id}}", name+"-api-1")

	// Labelled the way `docker compose -p e2eforeign up` labels its own.
	stranger := name + "-stranger"
	docker(t, "run", "-d", "--name", stranger,
		"--label", "com.docker.compose.project="+name, "--label", "com.docker.compose.service=db",
		"--label", "com.docker.compose.container-number=1", "--label", "com.docker.compose.oneoff=False",
		"--label", "com.docker.compose.config-hash=0123456789abcdef", "--label", "com.docker.compose.version=2.29.0",
		webImage)
	docker(t, "volume", "create", "--label", "com.docker.compose.project="+name,
		"--label", "com.docker.compose.volume=cache", name+"_cache")
	// Registered after newStack's, so it runs first: the stack's own down
	// is refused while these exist.
	t.Cleanup(func() {
		docker(t, "rm", "-f", stranger)
		docker(t, "volume", "rm", "-f", name+"_cache")
	})
	foreignSurvives := func(t *testing.T) {
		t.Helper()
		assert.Equal(t, "running", docker(t, "inspect", "-f", "{{.State.Status}}", stranger))
		assert.Equal(t, name+"_cache", docker(t, "volume", "inspect", "-f", "{{.Name}}", name+"_cache"))
	}

	t.Run("plan shows both as refused conflicts", func(t *testing.T) {
		r := orch(t, dir, "plan")
		assert.Equal(t, 1, r.code, r.stdout+r.stderr)
		assert.Contains(t, r.stdout, `- container.`+stranger+` will be deleted: labelled as compose project "e2eforeign" but not made by orchestrator (service "db", image `+webImage+`)`)
		assert.Contains(t, r.stdout, `    refused: container `+stranger+` belongs to another compose project named "e2eforeign"`)
		assert.Contains(t, r.stdout, `- volume.`+name+`_cache will be deleted`)
		assert.Contains(t, r.stdout, "fix: this stack and another compose project are both named \"e2eforeign\"")
		assert.Contains(t, r.stderr, "Error: refused, nothing applied: container."+stranger)
	})

	t.Run("up refuses and the foreign container survives", func(t *testing.T) {
		// A pending change, so that compose would run (and remove orphans).
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"),
			[]byte(strings.Replace(smallSpec(name), "health: /}", "health: /, env: {MODE: two}}", 1)), 0o644))
		r := orch(t, dir, "up", "--progress", "plain", "--skip-preflight")
		assert.Equal(t, 1, r.code, r.stdout+r.stderr)
		assert.Contains(t, r.stderr, "Error: refused, nothing applied: container."+stranger)
		foreignSurvives(t)
		assert.ElementsMatch(t, append(strings.Fields(ours), docker(t, "inspect", "-f", "{{.Id}}", stranger)),
			strings.Fields(containerIDs(t, name)), "up changed containers")
	})

	t.Run("down --volumes --yes refuses and deletes nothing", func(t *testing.T) {
		r := orch(t, dir, "down", "--volumes", "--yes", "--progress", "quiet")
		assert.Equal(t, 1, r.code, r.stdout+r.stderr)
		assert.Contains(t, r.stderr, "Not this stack's: volume."+name+"_cache")
		assert.Contains(t, r.stderr, "Error: down refused, nothing changed: container."+stranger+", volume."+name+"_cache carry this stack's compose project label")
		assert.NotContains(t, r.stderr, "These volumes and ALL their data will be deleted")
		foreignSurvives(t)
		assert.Contains(t, docker(t, "volume", "ls", "-q"), name+"_postgres-data")
		assert.ElementsMatch(t, append(strings.Fields(ours), docker(t, "inspect", "-f", "{{.Id}}", stranger)),
			strings.Fields(containerIDs(t, name)), "down removed containers")
	})

	t.Run("with the other project gone, the stack is its own again", func(t *testing.T) {
		docker(t, "rm", "-f", stranger)
		docker(t, "volume", "rm", name+"_cache")
		assert.Equal(t, []string{"service.web: update"}, changed(t, dir))
		requireUp(t, dir, "--skip-preflight")
		requireNoChanges(t, dir)
		assert.Equal(t, api, docker(t, "inspect", "-f", "{{.Id}}", name+"-api-1"), "only web changed")
	})
}

// TestSegmentedNetworks: each component's stores sit on that component's
// network, so the app reaches PostgreSQL and not Tracardi's or Postiz's
// stores (their names do not even resolve from it); the proxy joins only
// what it routes to and publishes on phase1.bind.
func TestSegmentedNetworks(t *testing.T) {
	const name = "e2eseg"
	spec := platformSpec(t, name, freePort(t))
	spec = strings.Replace(spec, "phase1: {", "phase1: {bind: 127.0.0.1, ", 1)
	dir := newStack(t, spec)
	t.Setenv("OPENAI_API_KEY", "sk-e2e-not-a-real-key")
	requireUp(t, dir, "--skip-preflight")

	// reach dials host:port from inside a container (busybox nc: exit 0
	// once connected).
	reach := func(from, host string, port int) (string, error) {
		out, err := exec.Command("docker", "exec", name+"-"+from+"-1", "sh", "-c",
			fmt.Sprintf("nc -w 2 %s %d </dev/null", host, port)).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for _, c := range []struct {
		from, to string
		port     int
	}{
		{"app", "postgres", 5432}, {"worker", "postgres", 5432}, {"worker", "app", 8080},
		{"tracardi-api", "tracardi-redis", 6379}, {"tracardi-apm", "tracardi-mysql", 3306},
		{"postiz", "postiz-redis", 6379}, {"postiz", "temporal", 7233}, {"temporal", "postgres", 5432},
		{"kestra", "postgres", 5432}, {"proxy", "kestra", 8080},
	} {
		out, err := reach(c.from, c.to, c.port)
		assert.NoError(t, err, "%s cannot reach %s:%d, which it uses: %s", c.from, c.to, c.port, out)
	}
	for _, c := range []struct {
		from, to string
		port     int
	}{
		{"app", "tracardi-redis", 6379}, {"app", "tracardi-mysql", 3306}, {"app", "tracardi-elasticsearch", 9200},
		{"app", "postiz-redis", 6379}, {"app", "temporal", 7233}, {"app", "temporal-elasticsearch", 9200},
		{"worker", "tracardi-redis", 6379}, {"kestra", "temporal", 7233}, {"kestra", "tracardi-mysql", 3306},
		{"postiz", "tracardi-redis", 6379}, {"tracardi-api", "postgres", 5432}, {"proxy", "postgres", 5432},
		{"proxy", "worker", 8080}, {"proxy", "tracardi-redis", 6379},
	} {
		out, err := reach(c.from, c.to, c.port)
		assert.Error(t, err, "%s reaches %s:%d, which it does not use", c.from, c.to, c.port)
		assert.Contains(t, out, "bad address '"+c.to+"'", "%s -> %s", c.from, c.to)
	}

	t.Run("a role connects only to its own database", func(t *testing.T) {
		out, err := psql(t, name, "app", secret(t, dir, "db-app-password"), "kestra", "select 1")
		assert.Error(t, err)
		assert.Contains(t, out, `permission denied for database "kestra"`)
		out, err = psql(t, name, "app", secret(t, dir, "db-app-password"), "app", "select 1")
		assert.NoError(t, err, out)
	})

	t.Run("the proxy publishes on phase1.bind only", func(t *testing.T) {
		ports := docker(t, "port", name+"-proxy-1")
		require.NotEmpty(t, ports)
		for _, line := range strings.Split(ports, "\n") {
			assert.Regexp(t, `-> 127\.0\.0\.1:\d+$`, line)
		}
	})

	t.Run("Elasticsearch's password file has the owner and mode its entrypoint demands", func(t *testing.T) {
		// compose warns that uid and mode are ignored outside Swarm; for a
		// secret it writes into the container itself they are not.
		for _, es := range []string{"tracardi-elasticsearch", "temporal-elasticsearch"} {
			assert.Equal(t, "400 1000", docker(t, "exec", name+"-"+es+"-1", "stat", "-c", "%a %u", "/run/secrets/"+es+"-password"), es)
		}
	})
	requireNoChanges(t, dir)
}

// TestPrivilegeNoSecretInInspect: on the whole platform, `docker inspect`
// of every container (what anyone with Docker or Portainer access sees)
// shows no generated secret value and no value passed through from the
// environment, while every value still reaches the process that reads it:
// as a file, or exported by the wrapper into that process's environment
// only. Kestra has no Docker socket by default.
func TestPrivilegeNoSecretInInspect(t *testing.T) {
	const name = "e2epriv"
	dir := newStack(t, platformSpec(t, name, freePort(t)))
	const apiKey = "sk-e2e-privilege-not-a-real-key"
	t.Setenv("OPENAI_API_KEY", apiKey)
	requireUp(t, dir, "--skip-preflight")

	values := map[string]string{"OPENAI_API_KEY (passed through)": apiKey}
	entries, err := os.ReadDir(filepath.Join(dir, ".orchestrator", "secrets"))
	require.NoError(t, err)
	for _, e := range entries {
		if e.Type().IsRegular() {
			values[e.Name()] = secret(t, dir, e.Name())
		}
	}
	require.GreaterOrEqual(t, len(values), 18, "the platform's generated secrets")
	ids := strings.Fields(containerIDs(t, name))
	require.GreaterOrEqual(t, len(ids), 20)
	for _, id := range ids {
		insp := docker(t, "inspect", id)
		who := docker(t, "inspect", "-f", "{{.Name}}", id)
		for f, v := range values {
			assert.NotContains(t, insp, v, "docker inspect %s shows %s", who, f)
		}
	}

	exec := func(service string, args ...string) string {
		return docker(t, append([]string{"exec", name + "-" + service + "-1"}, args...)...)
	}
	t.Run("the app reads its secrets from files", func(t *testing.T) {
		assert.Equal(t, "postgres://app:"+values["db-app-password"]+"@postgres:5432/app?sslmode=disable", exec("app", "sh", "-c", `cat "$DATABASE_URL_FILE"`))
		assert.Equal(t, apiKey, exec("app", "sh", "-c", `cat "$OPENAI_API_KEY_FILE"`))
		assert.Equal(t, "neither is in its environment", exec("app", "sh", "-c", `test -z "${DATABASE_URL+x}${OPENAI_API_KEY+x}" && echo neither is in its environment`))
	})
	t.Run("images that read only their environment get the values in their process's", func(t *testing.T) {
		// The wrapper exec'ed the command: PID 1 holds what it exported.
		environ := func(service string) string { return exec(service, "sh", "-c", `tr '\0' '\n' </proc/1/environ`) }
		for service, want := range map[string][]string{
			"temporal":               {"POSTGRES_PWD=" + values["db-temporal-password"], "ES_PWD=" + values["temporal-elasticsearch-password"]},
			"postiz":                 {"JWT_SECRET=" + values["postiz-jwt-secret"], "DATABASE_URL=postgres://postiz:" + values["db-postiz-password"] + "@postgres:5432/postiz?sslmode=disable", "REDIS_URL=redis://:" + values["postiz-redis-password"] + "@postiz-redis:6379"},
			"tracardi-api":           {"MYSQL_PASSWORD=" + values["tracardi-mysql-password"], "INSTALLATION_TOKEN=" + values["tracardi-installation-token"], "REDIS_PASSWORD=" + values["tracardi-redis-password"], "ELASTIC_HTTP_AUTH_PASSWORD=" + values["tracardi-elasticsearch-password"]},
			"tracardi-update-worker": {"AUTO_PROFILE_MERGING=" + values["tracardi-auto-profile-merging"]},
		} {
			env := strings.Split(environ(service), "\n")
			for _, kv := range want {
				assert.Contains(t, env, kv, service)
			}
		}
	})
	t.Run("Kestra has no Docker socket and runs as its image's user", func(t *testing.T) {
		assert.NotContains(t, docker(t, "inspect", "-f", "{{range .Mounts}}{{.Source}} {{end}}", name+"-kestra-1"), "docker.sock")
		assert.Empty(t, docker(t, "inspect", "-f", "{{.Config.User}}", name+"-kestra-1"))
		assert.Equal(t, "exited 0", docker(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name+"-kestra-init-1"))
	})
	t.Run("a new value passed through recreates exactly the services that read it", func(t *testing.T) {
		requireNoChanges(t, dir)
		t.Setenv("OPENAI_API_KEY", apiKey+"-rotated")
		assert.Equal(t, []string{"service.app: update"}, changed(t, dir))
		requireUp(t, dir, "--skip-preflight")
		assert.Equal(t, apiKey+"-rotated", exec("app", "sh", "-c", `cat "$OPENAI_API_KEY_FILE"`))
		assert.NotContains(t, docker(t, "inspect", name+"-app-1"), apiKey)
		requireNoChanges(t, dir)
	})
}
