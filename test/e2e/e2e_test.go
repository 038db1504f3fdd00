// Package e2e proves Phase 1 against a real Docker engine: the whole
// platform topology with stand-in images and a real PostgreSQL, brought up,
// planned, drifted, repaired, taken down, raced and killed. The engine and
// the images come from hack/testenv (installed, started and built when
// missing, cached after). These tests never skip: without the engine the
// claims they make are unproven, so they fail.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	// testDockerHost is DOCKER_HOST as the test process started ("" = default).
	testDockerHost = os.Getenv("DOCKER_HOST")
	bin            string // the orchestrator binary under test
	webImage       string
	pgImage        string
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		root, err := filepath.Abs("../..")
		if err != nil {
			panic(err)
		}
		cmd := exec.Command("bash", filepath.Join(root, "hack/testenv/images.sh"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: the test environment could not be set up: %v\n", err)
			return 1
		}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				switch k {
				case "ORCHESTRATOR_TESTENV_WEB_IMAGE":
					webImage = v
				case "ORCHESTRATOR_TESTENV_POSTGRES_IMAGE":
					pgImage = v
				}
			}
		}
		if webImage == "" || pgImage == "" {
			fmt.Fprintf(os.Stderr, "e2e: images.sh printed no image names:\n%s", out)
			return 1
		}
		dir, err := os.MkdirTemp("", "orchestrator-e2e-bin")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "orchestrator")
		build := exec.Command("go", "build", "-o", bin, "./cmd/orchestrator")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: build: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

type result struct {
	code           int
	stdout, stderr string
}

// orch runs the binary in dir, without any ORCHESTRATOR_* settings of the
// environment the tests run in (a state directory from there would be
// shared by every stack).
func orch(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORCHESTRATOR_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// docker runs the docker CLI against the engine the tests started with,
// whatever DOCKER_HOST a test sets for orchestrator.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("docker", args...)
	cmd.Env = []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_HOST=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if testDockerHost != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+testDockerHost)
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "docker %v: %s", args, out)
	return strings.TrimSpace(string(out))
}

// newStack writes a spec into a fresh directory and registers its removal
// (containers, networks and volumes) at the end of the test.
func newStack(t *testing.T, spec string) string {
	t.Helper()
	removeLeftovers(t, spec)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(spec), 0o644))
	t.Cleanup(func() {
		r := orch(t, dir, "down", "--volumes", "--yes", "--progress", "quiet")
		if r.code != 0 {
			t.Logf("cleanup down: %s", r.stderr)
		}
	})
	return dir
}

// removeLeftovers deletes what an aborted earlier run left of this stack
// (its cleanup never ran): old volumes would hold databases initialised
// with that run's passwords.
func removeLeftovers(t *testing.T, spec string) {
	t.Helper()
	var name string
	for _, line := range strings.Split(spec, "\n") {
		if v, ok := strings.CutPrefix(line, "name: "); ok {
			name = strings.TrimSpace(v)
			break
		}
	}
	require.NotEmpty(t, name)
	label := "label=com.docker.compose.project=" + name
	for _, kind := range [][]string{{"ps", "-aq"}, {"volume", "ls", "-q"}, {"network", "ls", "-q"}} {
		ids := strings.Fields(docker(t, append(kind, "--filter", label)...))
		if len(ids) == 0 {
			continue
		}
		t.Logf("removing %d leftover %s of stack %s", len(ids), kind[0], name)
		rm := map[string][]string{"ps": {"rm", "-f"}, "volume": {"volume", "rm", "-f"}, "network": {"network", "rm"}}[kind[0]]
		docker(t, append(rm, ids...)...)
	}
}

func probe(port int, path string) string {
	return fmt.Sprintf(`{test: [CMD, /standin, probe, "http://127.0.0.1:%d%s"], interval: 2s, timeout: 3s, retries: 30}`, port, path)
}

// platformSpec is the whole platform with stand-ins
// (testdata/platform.yaml.tmpl), its proxy published on httpsPort and a
// free port for HTTP.
func platformSpec(t *testing.T, name string, httpsPort int) string {
	t.Helper()
	raw, err := os.ReadFile("testdata/platform.yaml.tmpl")
	require.NoError(t, err)
	tmpl := template.Must(template.New("platform").Parse(string(raw)))
	var b strings.Builder
	require.NoError(t, tmpl.Execute(&b, map[string]any{"Name": name, "Web": webImage, "Postgres": pgImage,
		"HTTPPort": freePort(t), "HTTPSPort": httpsPort}))
	return b.String()
}

// freePort returns a host port nothing listens on now, so a stack left
// running by `make demo` or a killed benchmark cannot collide with the tests.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// smallSpec is a quick stack without the proxy (no host ports), for the
// tests that race and kill.
func smallSpec(name string) string {
	return fmt.Sprintf(`version: 1
name: %s
domain: %s.localhost
services:
  api: {image: %s, database: true, port: 8080, health: /healthz}
  web: {image: %s, port: 8080, health: /}
overrides:
  postgres: {image: "%s"}
  postgres-init: {image: "%s"}
`, name, name, webImage, webImage, pgImage, pgImage)
}

func secret(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".orchestrator", "secrets", name))
	require.NoError(t, err)
	return string(b)
}

// psql runs a query inside the stack's PostgreSQL over TCP, as role with
// the given password, so it proves the password too.
func psql(t *testing.T, stack, role, password, db, query string) (string, error) {
	t.Helper()
	out, err := exec.Command("docker", "exec", "-e", "PGPASSWORD="+password, stack+"-postgres-1",
		"psql", "-h", "127.0.0.1", "-U", role, "-d", db, "-tAc", query).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func containerIDs(t *testing.T, stack string) string {
	t.Helper()
	return docker(t, "ps", "-aq", "--no-trunc", "--filter", "label=com.docker.compose.project="+stack)
}

type planJSON struct {
	FormatVersion   string `json:"format_version"`
	ResourceChanges []struct {
		Address string   `json:"address"`
		Actions []string `json:"actions"`
		Reason  string   `json:"reason"`
		Drift   bool     `json:"drift"`
	} `json:"resource_changes"`
}

// changed returns "address: action (reason)" for every change that is not a no-op.
func changed(t *testing.T, dir string) []string {
	t.Helper()
	r := orch(t, dir, "plan", "--output", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var p planJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p), r.stdout)
	require.Equal(t, "1.0", p.FormatVersion)
	var out []string
	for _, c := range p.ResourceChanges {
		if c.Actions[0] != "no-op" {
			s := c.Address + ": " + c.Actions[0]
			if c.Drift {
				s += " [drift]"
			}
			out = append(out, s)
		}
	}
	return out
}

func requireUp(t *testing.T, dir string, extra ...string) result {
	t.Helper()
	args := append([]string{"up", "--progress", "plain", "--wait-timeout", "5m"}, extra...)
	r := orch(t, dir, args...)
	require.Equal(t, 0, r.code, "up failed:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	return r
}

func requireNoChanges(t *testing.T, dir string) {
	t.Helper()
	r := orch(t, dir, "plan", "--detailed-exitcode")
	require.Equal(t, 0, r.code, "plan after up is not empty:\n%s%s", r.stdout, r.stderr)
	require.Contains(t, r.stdout, "No changes.")
}

// TestPlatform is the main scenario on the full topology.
func TestPlatform(t *testing.T) {
	const name = "e2eplat"
	httpsPort := freePort(t)
	dir := newStack(t, platformSpec(t, name, httpsPort))
	t.Setenv("OPENAI_API_KEY", "sk-e2e-not-a-real-key")

	r := requireUp(t, dir, "--skip-preflight")
	assert.Contains(t, r.stdout, fmt.Sprintf("https://kestra.e2eplat.localhost:%d", httpsPort))
	assert.Contains(t, r.stdout, "password in secrets/portainer-admin-password")
	for _, f := range []string{"postgres-password", "db-app-password", "kestra-admin-password", "portainer-admin-password"} {
		assert.NotContains(t, r.stdout+r.stderr, secret(t, dir, f), "up printed secret %s", f)
	}

	t.Run("no service leaves an anonymous volume behind", func(t *testing.T) {
		// Images that declare a VOLUME get an anonymous one wherever the
		// service mounts nothing; a plain down would orphan it.
		for _, id := range strings.Fields(containerIDs(t, name)) {
			mounts := docker(t, "inspect", "-f", `{{.Name}}{{range .Mounts}} {{.Type}}:{{.Name}}{{end}}`, id)
			for _, m := range strings.Fields(mounts)[1:] {
				kind, volume, _ := strings.Cut(m, ":")
				if kind == "volume" {
					assert.True(t, strings.HasPrefix(volume, name+"_"), "%s mounts anonymous volume %s", strings.Fields(mounts)[0], volume)
				}
			}
		}
	})

	t.Run("every file a service is told to read exists in its container", func(t *testing.T) {
		// Temporal's DYNAMIC_CONFIG_FILE_PATH once named a file the image
		// does not have; this checks the whole kind on the real engine.
		checked := 0
		for _, id := range strings.Fields(containerIDs(t, name)) {
			if docker(t, "inspect", "-f", "{{.State.Running}}", id) != "true" {
				continue
			}
			env := docker(t, "inspect", "-f", `{{range .Config.Env}}{{println .}}{{end}}`, id)
			for _, kv := range strings.Split(env, "\n") {
				k, v, _ := strings.Cut(kv, "=")
				if strings.HasSuffix(k, "_FILE") || strings.HasSuffix(k, "_FILE_PATH") {
					checked++
					docker(t, "exec", id, "test", "-s", v)
				}
			}
		}
		assert.GreaterOrEqual(t, checked, 3)
	})

	t.Run("every consumer has its database, user and password", func(t *testing.T) {
		for _, c := range []struct{ role, db string }{
			{"app", "app"}, {"worker", "worker"}, {"kestra", "kestra"}, {"postiz", "postiz"}, {"temporal", "temporal"},
		} {
			out, err := psql(t, name, c.role, secret(t, dir, "db-"+c.role+"-password"), c.db, "select current_user || '@' || current_database()")
			require.NoError(t, err, out)
			assert.Equal(t, c.role+"@"+c.db, out)
			// A wrong password is refused: the check above is not vacuous.
			_, err = psql(t, name, c.role, "wrong-password", c.db, "select 1")
			assert.Error(t, err)
		}
	})

	t.Run("a fresh plan is empty and a second up changes nothing", func(t *testing.T) {
		requireNoChanges(t, dir)
		before := containerIDs(t, name)
		requireUp(t, dir, "--skip-preflight")
		assert.Equal(t, before, containerIDs(t, name), "a no-op up recreated containers")
		requireNoChanges(t, dir)
	})

	t.Run("status", func(t *testing.T) {
		r := orch(t, dir, "status", "--output", "json")
		require.Equal(t, 0, r.code, r.stderr)
		var st struct {
			Services []struct{ Service, State, Health string }
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
		assert.Len(t, st.Services, 20) // 19 services (the one-shot inits among them), the app twice
		for _, s := range st.Services {
			if s.Service == "postgres-init" || s.Service == "kestra-init" {
				assert.Equal(t, "exited", s.State)
				continue
			}
			assert.Equal(t, "running", s.State, s.Service)
			if s.Service == "tracardi-apm" || s.Service == "tracardi-update-worker" {
				assert.Empty(t, s.Health, "%s has no health endpoint upstream", s.Service)
				continue
			}
			assert.Equal(t, "healthy", s.Health, s.Service)
		}
	})

	t.Run("a spec change plans exactly the changed service", func(t *testing.T) {
		spec, err := os.ReadFile(filepath.Join(dir, "stack.yaml"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), bytes.Replace(spec, []byte("MODE: one"), []byte("MODE: two"), 1), 0o644))
		r := orch(t, dir, "plan", "--detailed-exitcode")
		assert.Equal(t, 2, r.code, r.stdout+r.stderr)
		assert.Equal(t, []string{"service.worker: update"}, changed(t, dir))
		requireUp(t, dir, "--skip-preflight")
		requireNoChanges(t, dir)
	})

	t.Run("a container removed or stopped by hand is drift, and up repairs it", func(t *testing.T) {
		docker(t, "rm", "-f", name+"-kestra-1")
		docker(t, "stop", name+"-tracardi-gui-1")
		assert.Equal(t, []string{"service.kestra: create [drift]", "service.tracardi-gui: update [drift]"}, changed(t, dir))
		requireUp(t, dir, "--skip-preflight")
		requireNoChanges(t, dir)
	})

	t.Run("down keeps volumes and data", func(t *testing.T) {
		pw := secret(t, dir, "db-app-password")
		_, err := psql(t, name, "app", pw, "app", "create table notes (body text); insert into notes values ('kept')")
		require.NoError(t, err)
		r := orch(t, dir, "down", "--progress", "quiet")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "volumes and data are kept")
		assert.Empty(t, containerIDs(t, name))
		assert.Contains(t, docker(t, "volume", "ls", "-q"), name+"_postgres-data")
		// Taken down on purpose, the services are to be created, not drift.
		after := changed(t, dir)
		assert.Contains(t, after, "service.postgres: create")
		assert.NotContains(t, strings.Join(after, "\n"), "[drift]")
		requireUp(t, dir, "--skip-preflight")
		out, err := psql(t, name, "app", pw, "app", "select body from notes")
		require.NoError(t, err, out)
		assert.Equal(t, "kept", out)
	})

	t.Run("preflight reports vm.max_map_count for Elasticsearch", func(t *testing.T) {
		b, err := os.ReadFile("/proc/sys/vm/max_map_count")
		require.NoError(t, err)
		var v int
		fmt.Sscan(string(b), &v)
		r := orch(t, dir, "up", "--progress", "quiet")
		if v < 262144 {
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, fmt.Sprintf("vm.max_map_count is %d; Elasticsearch (temporal-elasticsearch, tracardi-elasticsearch) needs at least 262144", v))
			assert.Contains(t, r.stderr, "fix: sudo sysctl -w vm.max_map_count=262144")
		} else {
			assert.Equal(t, 0, r.code, r.stderr)
		}
	})
}

func TestNeverHealthyServiceIsExplained(t *testing.T) {
	dir := newStack(t, fmt.Sprintf(`version: 1
name: e2esick
domain: e2esick.localhost
services:
  flaky: {image: %s, env: {FAIL_HEALTH: "1"}}
overrides:
  flaky: {healthcheck: {test: [CMD, /standin, probe, "http://127.0.0.1:8080/healthz"], interval: 1s, timeout: 10s, retries: 2}}
`, webImage))
	r := orch(t, dir, "up", "--progress", "plain", "--wait-timeout", "60s")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "Service flaky is not up: running, unhealthy")
	assert.Contains(t, r.stderr, "last healthcheck: probe http://127.0.0.1:8080/healthz: status 503")
	assert.Contains(t, r.stderr, "last log lines of e2esick-flaky-1:")
	assert.Contains(t, r.stderr, "GET /healthz -> 503")
}

func TestConcurrentUpsNeverBothApply(t *testing.T) {
	dir := newStack(t, smallSpec("e2erace"))
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = orch(t, dir, "up", "--progress", "quiet", "--skip-preflight")
		}()
	}
	wg.Wait()
	codes := []int{results[0].code, results[1].code}
	require.ElementsMatch(t, []int{0, 1}, codes, "one up must win and one fail fast: %+v", results)
	loser := results[0]
	if loser.code == 0 {
		loser = results[1]
	}
	assert.Regexp(t, `stack is locked by \S+ \(pid \d+, operation up\) since `, loser.stderr)
	requireNoChanges(t, dir)

	// With --lock-timeout the second run waits for the first instead.
	results = make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = orch(t, dir, "up", "--progress", "quiet", "--skip-preflight", "--lock-timeout", "2m")
		}()
	}
	wg.Wait()
	assert.Equal(t, 0, results[0].code, results[0].stderr)
	assert.Equal(t, 0, results[1].code, results[1].stderr)

	// down --volumes lists what would be lost and, with no terminal to
	// confirm on and no --yes, deletes nothing.
	r := orch(t, dir, "down", "--volumes", "--progress", "quiet")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "These volumes and ALL their data will be deleted:\n  e2erace_postgres-data\n")
	assert.Contains(t, r.stderr, "refusing to delete volumes without a terminal to confirm on; pass --yes")
	assert.NotEmpty(t, containerIDs(t, "e2erace"))
	assert.Contains(t, docker(t, "volume", "ls", "-q"), "e2erace_postgres-data")
}

func TestKilledUpConverges(t *testing.T) {
	const name = "e2ekill"
	dir := newStack(t, smallSpec(name))
	cmd := exec.Command(bin, "up", "--progress", "plain", "--skip-preflight")
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	// Kill it in the middle: once compose reports a container started.
	sc := bufio.NewScanner(stderr)
	deadline := time.AfterFunc(3*time.Minute, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	killed := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Started") {
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			killed = true
			break
		}
	}
	go func() { _, _ = bufio.NewReader(stderr).WriteTo(io_discard{}) }()
	_ = cmd.Wait()
	require.True(t, killed, "up finished before it could be killed")
	require.NotNil(t, cmd.ProcessState)
	assert.Equal(t, "signal: killed", cmd.ProcessState.String())
	// The engine finishes requests the killed client had in flight; wait
	// for that, or the next up could race a container create it sent.
	settled := ""
	require.Eventually(t, func() bool {
		ids := containerIDs(t, name)
		ok := ids == settled
		settled = ids
		return ok
	}, time.Minute, time.Second, "the killed up's containers never settled")

	r := requireUp(t, dir, "--skip-preflight")
	assert.Contains(t, r.stderr, "did not finish; converging from where it stopped")
	requireNoChanges(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.State.Health.Status}}", name+"-api-1").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "healthy", strings.TrimSpace(string(out)))

	// Restarted by the engine (as after a reboot), the container is
	// "starting" again: with nothing to change, up waits for it instead
	// of calling it a failure.
	docker(t, "restart", name+"-api-1")
	r = requireUp(t, dir, "--skip-preflight")
	assert.Contains(t, r.stderr, "No changes: the engine already runs what the spec says.")
	assert.Contains(t, r.stderr, "Waiting for 1 container to become healthy: "+name+"-api-1")
	assert.Equal(t, "healthy", docker(t, "inspect", "-f", "{{.State.Health.Status}}", name+"-api-1"))
}

type io_discard struct{}

func (io_discard) Write(p []byte) (int, error) { return len(p), nil }

// TestSSHHost drives a stack through phase1.host: ssh://, the laptop
// against a VPS: the docker CLI's connection helper runs `docker system
// dial-stdio` over a real SSH server (hack/testenv/sshd.sh, on 127.0.0.1).
func TestSSHHost(t *testing.T) {
	host, path := sshHost(t)
	t.Setenv("PATH", path+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("DOCKER_HOST", "unix:///nonexistent.sock") // the spec's host must win
	dir := newStack(t, smallSpec("e2essh")+"phase1: {host: \""+host+"\"}\n")

	r := requireUp(t, dir, "--skip-preflight")
	assert.Contains(t, r.stdout, "Stack e2essh is up on "+host)
	requireNoChanges(t, dir)
	r = orch(t, dir, "status", "--output", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"container": "e2essh-api-1"`)
	// The containers are real, on the engine behind the SSH hop.
	assert.Equal(t, "healthy", docker(t, "inspect", "-f", "{{.State.Health.Status}}", "e2essh-api-1"))
}

// TestNetworkDriftScaleToZeroAndNoHealthcheck covers plan/up agreement on
// the less common paths: a container disconnected from its network by
// hand, a service scaled to zero, and a service whose healthcheck is off.
func TestNetworkDriftScaleToZeroAndNoHealthcheck(t *testing.T) {
	const name = "e2enet"
	spec := smallSpec(name) + "  web: {healthcheck: {disable: true}}\n"
	dir := newStack(t, spec)
	requireUp(t, dir, "--skip-preflight")
	requireNoChanges(t, dir)

	docker(t, "network", "disconnect", name+"_app", name+"-api-1")
	assert.Equal(t, []string{"service.api: update [drift]"}, changed(t, dir))
	requireUp(t, dir, "--skip-preflight")
	requireNoChanges(t, dir)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(strings.Replace(spec, "healthcheck: {disable: true}", "replicas: 0", 1)), 0o644))
	assert.Equal(t, []string{"service.web: update"}, changed(t, dir))
	requireUp(t, dir, "--skip-preflight")
	requireNoChanges(t, dir)
	assert.NotContains(t, containerIDs(t, name), "web")
	assert.Empty(t, docker(t, "ps", "-aq", "--filter", "label=com.docker.compose.service=web", "--filter", "label=com.docker.compose.project="+name))
}
