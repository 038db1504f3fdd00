package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unreachableImage is under a registry host that never resolves (.invalid
// is reserved, RFC 2606), the engine's pull fails as on a host without a
// route to any registry.
const unreachableImage = "registry.invalid/x/y:1"

// requireNothingOnEngine fails when the engine has any container, network
// or volume of the stack: what up must not leave when it refuses to start.
func requireNothingOnEngine(t *testing.T, stack string) {
	t.Helper()
	label := "label=com.docker.compose.project=" + stack
	assert.Empty(t, docker(t, "ps", "-aq", "--filter", label), "containers of %s were created", stack)
	assert.Empty(t, docker(t, "network", "ls", "-q", "--filter", label), "networks of %s were created", stack)
	assert.Empty(t, docker(t, "volume", "ls", "-q", "--filter", label), "volumes of %s were created", stack)
}

// TestImagesUnreachableRegistryStopsUpBeforeAnythingChanges: one service's
// image lives on a registry the engine cannot reach. up must say so once,
// with the image, the reason and the fix, before it creates anything;
// plan must warn and still plan.
func TestImagesUnreachableRegistryStopsUpBeforeAnythingChanges(t *testing.T) {
	const name = "e2eimages"
	dir := newStack(t, strings.Replace(smallSpec(name), "services:\n",
		"services:\n  ghost: {image: "+unreachableImage+", port: 8080, health: /healthz}\n", 1))

	r := orch(t, dir, "up", "--progress", "plain", "--skip-preflight")
	require.Equal(t, 1, r.code, "up with an unpullable image succeeded:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Equal(t, 1, strings.Count(r.stderr, "Error:"), "one error, not one per service:\n%s", r.stderr)
	assert.Equal(t, 1, strings.Count(r.stderr, unreachableImage), "the image is named once:\n%s", r.stderr)
	assert.Contains(t, r.stderr, unreachableImage+" (service ghost): registry not reachable")
	assert.Contains(t, r.stderr, "no such host")
	assert.Contains(t, r.stderr, "nothing was changed")
	assert.Contains(t, r.stderr, "overrides.ghost.image")
	assert.Contains(t, r.stderr, "registry mirror")
	// Compose was never asked to pull, so nothing was interrupted.
	assert.NotContains(t, r.stderr, "Interrupted")
	assert.NotContains(t, r.stderr, "Pulling")
	requireNothingOnEngine(t, name)

	r = orch(t, dir, "plan")
	require.Equal(t, 0, r.code, "plan must warn, not fail:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "Warning: 1 image cannot be pulled")
	assert.Contains(t, r.stderr, unreachableImage+" (service ghost): registry not reachable")
	assert.Contains(t, r.stdout, "+ service.ghost will be created")
	assert.Contains(t, r.stdout, "+ service.api will be created")

	r = orch(t, dir, "plan", "--output", "json", "--detailed-exitcode")
	require.Equal(t, 2, r.code, r.stderr)
	var p struct {
		FormatVersion     string `json:"format_version"`
		UnavailableImages []struct {
			Image    string   `json:"image"`
			Services []string `json:"services"`
			Reason   string   `json:"reason"`
			Detail   string   `json:"detail"`
		} `json:"unavailable_images"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p), r.stdout)
	require.Len(t, p.UnavailableImages, 1, r.stdout)
	assert.Equal(t, unreachableImage, p.UnavailableImages[0].Image)
	assert.Equal(t, []string{"ghost"}, p.UnavailableImages[0].Services)
	assert.Equal(t, "unreachable", p.UnavailableImages[0].Reason)
	requireNothingOnEngine(t, name)
}

// fakeRegistry answers the registry API the way a real one does for a
// repository that does not exist (404 MANIFEST_UNKNOWN) and for a private
// one without credentials (401 UNAUTHORIZED). On 127.0.0.1 the engine talks
// plain HTTP to it (loopback registries are insecure by default).
func fakeRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v2/":
			fmt.Fprint(w, "{}")
		case strings.HasPrefix(r.URL.Path, "/v2/private/"):
			w.Header().Set("WWW-Authenticate", `Basic realm="e2e"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestImagesReasons: every image that cannot be pulled is listed once, with
// all the services that use it and its own reason; an image already on the
// engine is fine whatever its registry.
func TestImagesReasons(t *testing.T) {
	const name = "e2eimgreason"
	reg := fakeRegistry(t)
	present := "registry.invalid/e2e/present:1"
	docker(t, "tag", webImage, present)
	t.Cleanup(func() { docker(t, "rmi", present) })
	missing, private := reg+"/team/missing:1", reg+"/private/app:1"
	dir := newStack(t, fmt.Sprintf(`version: 1
name: %s
domain: %s.localhost
services:
  present: {image: %s, port: 8080, health: /healthz}
  ghost: {image: %s, port: 8080, health: /healthz}
  ghost-two: {image: %s, port: 8080, health: /healthz}
  missing: {image: %s, port: 8080, health: /healthz}
  private: {image: %s, port: 8080, health: /healthz}
`, name, name, present, unreachableImage, unreachableImage, missing, private))

	r := orch(t, dir, "up", "--progress", "plain", "--skip-preflight")
	require.Equal(t, 1, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Equal(t, 1, strings.Count(r.stderr, "Error:"), r.stderr)
	assert.Contains(t, r.stderr, "3 images cannot be pulled")
	assert.Contains(t, r.stderr, unreachableImage+" (services ghost, ghost-two): registry not reachable")
	assert.Equal(t, 1, strings.Count(r.stderr, unreachableImage), r.stderr)
	assert.Contains(t, r.stderr, missing+" (service missing): not found")
	assert.Contains(t, r.stderr, private+" (service private): unauthorised")
	assert.Contains(t, r.stderr, "docker login "+reg)
	assert.NotContains(t, r.stderr, present)
	requireNothingOnEngine(t, name)
}
