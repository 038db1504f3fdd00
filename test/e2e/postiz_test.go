package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// postizStandIn builds an image that runs like Postiz's: no entrypoint of
// its own to swallow the catalog's command (the web stand-in has one), and
// the image's command `sh -c "nginx && pnpm run pm2"` works, with nginx a
// no-op and pnpm running the web stand-in as its child, as pnpm runs pm2.
// So PID 1 is a shell without a SIGTERM handler, as in Postiz. The image is
// removed when the test ends.
func postizStandIn(t *testing.T) string {
	t.Helper()
	const image = "orchestrator-e2e/postiz-standin:1"
	ctx := t.TempDir()
	files := map[string]string{
		"nginx": "#!/bin/sh\n# nginx daemonises: its command returns at once.\nexit 0\n",
		"pnpm":  "#!/bin/sh\n# pnpm run pm2 keeps running, with the apps as its children.\n/standin\n",
		"Dockerfile": fmt.Sprintf("FROM %s\nCOPY nginx pnpm /bin/\nENTRYPOINT []\nCMD [\"sh\", \"-c\", \"nginx && pnpm run pm2\"]\n",
			webImage),
	}
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(ctx, name), []byte(content), 0o755))
	}
	// The legacy builder: these machines have no buildx plugin.
	cmd := exec.Command("docker", "build", "-q", "-t", image, ctx)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "docker build: %s", out)
	t.Cleanup(func() {
		if out, err := exec.Command("docker", "image", "rm", image).CombinedOutput(); err != nil {
			t.Logf("removing %s: %v: %s", image, err, out)
		}
	})
	return image
}

// postizSpec is Postiz and its backing services on stand-ins, with the
// watchdog's timings in seconds instead of minutes.
func postizSpec(t *testing.T, name, postizImage string) string {
	return fmt.Sprintf(`version: 1
name: %[1]s
domain: %[1]s.localhost
tls: {mode: internal}
phase1: {http_port: %[5]d, https_port: %[6]d}
components:
  postiz: {enabled: true}
overrides:
  postgres: {image: "%[3]s"}
  postgres-init: {image: "%[3]s"}
  proxy: {image: "%[2]s", env: {PORTS: "2019,80,443"}}
  postiz-redis: {image: "%[2]s", env: {PORTS: "6379"}, healthcheck: %[7]s}
  temporal-elasticsearch: {image: "%[2]s", env: {PORTS: "9200"}, healthcheck: %[8]s}
  temporal: {image: "%[2]s", command: [/standin], env: {PORTS: "7233"}, healthcheck: %[9]s}
  postiz:
    image: "%[4]s"
    healthcheck: %[10]s
    env:
      PORTS: "5000"
      DIAL_ONCE: temporal:7233
      POSTIZ_WATCHDOG_PROCESS: /standin
      POSTIZ_WATCHDOG_GRACE: "2"
      POSTIZ_WATCHDOG_INTERVAL: "1"
      POSTIZ_WATCHDOG_MISSES: "5"
      POSTIZ_WATCHDOG_STOP_TIMEOUT: "5"
`, name, webImage, pgImage, postizImage, freePort(t), freePort(t),
		probe(6379, "/"), probe(9200, "/"), probe(7233, "/"), probe(5000, "/"))
}

// TestPostizWatchdog: Postiz's worker connects to Temporal once and never
// again (gitroomhq/postiz-app#1748, #2035); the stand-in does the same
// (DIAL_ONCE). The catalog's watchdog must leave a connected Postiz alone,
// wait while Temporal is down, and restart Postiz once Temporal answers and
// the worker still has no connection, even while another process of the
// container (Postiz's backend, here nc) holds one.
func TestPostizWatchdog(t *testing.T) {
	const name = "e2epostiz"
	image := postizStandIn(t)
	dir := newStack(t, postizSpec(t, name, image))
	requireUp(t, dir, "--skip-preflight")
	postiz, temporal := name+"-postiz-1", name+"-temporal-1"
	const dialed = "dial-once: dialed temporal:7233"

	// Connected: the watchdog judges it (grace 2 s, every 1 s) and leaves it
	// alone, for twice the time it takes to act on misses.
	waitForLog(t, postiz, dialed, 1, time.Minute)
	noRestartFor(t, postiz, 2*(2+5)*time.Second, "while it was connected")
	assert.Contains(t, logsOf(t, postiz), "postiz-watchdog: connected to temporal:7233")
	assert.Equal(t, 1, established(t, postiz, 7233), "connections to temporal:7233 in %s", postiz)

	// Temporal goes away and the worker loses its connection. While
	// Temporal does not answer, a restart would not help.
	docker(t, "stop", temporal)
	waitForLog(t, postiz, "dial-once: connection to temporal:7233 lost", 1, time.Minute)
	noRestartFor(t, postiz, 2*5*time.Second, "while Temporal was down")
	assert.Contains(t, logsOf(t, postiz),
		"postiz-watchdog: no connection to temporal:7233, which does not answer either; waiting for it")

	// Temporal is back; the worker does not reconnect. Another process holds
	// a connection to Temporal, as Postiz's backend does: it must not hide
	// the worker's missing one.
	docker(t, "start", temporal)
	docker(t, "exec", "-d", postiz, "sh", "-c",
		`while :; do (printf 'GET /backend HTTP/1.1\r\nHost: temporal\r\n\r\n'; sleep 600) | nc temporal 7233; sleep 1; done`)
	require.Eventually(t, func() bool { return restartCount(t, postiz) >= 1 }, time.Minute, 500*time.Millisecond,
		"the watchdog never restarted Postiz, whose worker lost Temporal:\n%s", logsOf(t, postiz))
	waitForLog(t, postiz, dialed, 2, time.Minute)
	assert.Equal(t, "true", docker(t, "inspect", "-f", "{{.State.Running}}", postiz))
	logs := logsOf(t, postiz)
	assert.Regexp(t, `postiz-watchdog: no connection to temporal:7233 in 5 checks over \d+ s; exiting so Docker restarts the container`, logs)
	assert.Equal(t, 2, strings.Count(logs, "postiz-watchdog: watching the connection to temporal:7233"),
		"the restarted container runs the watchdog again")
	// The other connection was open when the watchdog decided (nc holds it
	// until the watchdog stops every process).
	held, decided := loggedAt(t, temporal, "GET /backend"), loggedAt(t, postiz, "exiting so Docker restarts the container")
	assert.True(t, held.Before(decided), "the other process connected at %s, after the watchdog decided at %s", held, decided)
	assert.Eventually(t, func() bool { return established(t, postiz, 7233) == 1 }, 30*time.Second, 500*time.Millisecond,
		"the restarted Postiz has no connection to temporal:7233")
	assert.Equal(t, 1, restartCount(t, postiz), "one restart, not a loop:\n%s", logs)
}

func restartCount(t *testing.T, container string) int {
	t.Helper()
	n, err := strconv.Atoi(docker(t, "inspect", "-f", "{{.RestartCount}}", container))
	require.NoError(t, err)
	return n
}

func logsOf(t *testing.T, container string) string {
	t.Helper()
	return docker(t, "logs", container)
}

// loggedAt is when container first logged a line containing text, by the
// engine's timestamps.
func loggedAt(t *testing.T, container, text string) time.Time {
	t.Helper()
	for _, line := range strings.Split(docker(t, "logs", "-t", container), "\n") {
		if stamp, rest, ok := strings.Cut(line, " "); ok && strings.Contains(rest, text) {
			at, err := time.Parse(time.RFC3339Nano, stamp)
			require.NoError(t, err)
			return at
		}
	}
	require.FailNow(t, container+" never logged "+text)
	return time.Time{}
}

// waitForLog waits until container's log holds line at least n times.
func waitForLog(t *testing.T, container, line string, n int, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Count(logsOf(t, container), line) >= n }, within, 500*time.Millisecond,
		"%s never logged %q %d times:\n%s", container, line, n, logsOf(t, container))
}

// noRestartFor fails the test when container restarts within d: a claim
// that nothing happens needs an observation window.
func noRestartFor(t *testing.T, container string, d time.Duration, when string) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if n := restartCount(t, container); n != 0 {
			require.FailNow(t, "the watchdog restarted "+container+" "+when, "restarts: %d\n%s", n, logsOf(t, container))
		}
	}
}

// established counts the ESTABLISHED TCP connections to port in the
// container's network namespace, from /proc/net/tcp as the watchdog reads it.
func established(t *testing.T, container string, port int) int {
	t.Helper()
	out, err := exec.Command("docker", "exec", container, "cat", "/proc/net/tcp", "/proc/net/tcp6").CombinedOutput()
	if err != nil {
		t.Logf("reading %s's connections: %v: %s", container, err, out)
		return -1
	}
	suffix := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[2], suffix) && f[3] == "01" {
			n++
		}
	}
	return n
}
