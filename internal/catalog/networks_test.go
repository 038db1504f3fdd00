package catalog

import (
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/aipairpro/orchestrator/internal/model"
)

// peers maps each service to the services it shares a network with: what
// it can open a connection to.
func peers(dep *model.Deployment) map[string][]string {
	out := map[string][]string{}
	for _, a := range dep.Services {
		for _, b := range dep.Services {
			if a.Name != b.Name && slices.ContainsFunc(a.Networks, func(n string) bool { return slices.Contains(b.Networks, n) }) {
				out[a.Name] = append(out[a.Name], b.Name)
			}
		}
		sort.Strings(out[a.Name])
	}
	return out
}

// A service reaches only what it uses: each component's stores sit on that
// component's network alone, PostgreSQL on the networks of the components
// that have a database, and the proxy only with what it routes to.
func TestServicesReachOnlyWhatTheyUse(t *testing.T) {
	dep := platform(t, "")
	p := peers(dep)

	// The app and the worker: PostgreSQL, each other and, on the proxy's
	// network, what the proxy routes to (as public as through the proxy).
	assert.Equal(t, []string{"kestra", "portainer", "postgres", "postiz", "proxy", "tracardi-api", "tracardi-gui", "worker"}, p["app"])
	assert.Equal(t, []string{"app", "postgres"}, p["worker"])
	assert.Equal(t, []string{"app", "kestra", "portainer", "postiz", "tracardi-api", "tracardi-gui"}, p["proxy"])

	// Each store: its own component, never the app.
	for store, want := range map[string][]string{
		"tracardi-redis":         {"tracardi-api", "tracardi-apm", "tracardi-elasticsearch", "tracardi-mysql", "tracardi-update-worker"},
		"tracardi-elasticsearch": {"tracardi-api", "tracardi-apm", "tracardi-mysql", "tracardi-redis", "tracardi-update-worker"},
		"tracardi-mysql":         {"tracardi-api", "tracardi-apm", "tracardi-elasticsearch", "tracardi-redis", "tracardi-update-worker"},
		"postiz-redis":           {"postgres", "postiz", "temporal", "temporal-elasticsearch"},
		"temporal-elasticsearch": {"postgres", "postiz", "postiz-redis", "temporal"},
		"postgres":               {"app", "kestra", "postgres-init", "postiz", "postiz-redis", "temporal", "temporal-elasticsearch", "worker"},
	} {
		assert.Equal(t, want, p[store], store)
	}
	assert.Equal(t, []string{"postgres"}, p["postgres-init"])
	// Kestra: PostgreSQL and, through the proxy's network, the routed.
	assert.NotContains(t, p["kestra"], "temporal")
	assert.NotContains(t, p["kestra"], "tracardi-redis")

	for _, n := range dep.Networks {
		assert.Equal(t, n.Name != Edge && n.Name != Egress, n.Internal, "network %s", n.Name)
	}
}

// A lone custom service has a route out but shares no network with the
// proxy; two of them share the team's network, so one can call the other.
func TestTeamServicesShareTheirNetwork(t *testing.T) {
	dep, msgs := build(t, `version: 1
name: t
domain: t.example.com
services:
  api: {image: ghcr.io/acme/api:1, port: 8080, health: /healthz}
`)
	if assert.NotNil(t, dep, msgs) {
		assert.Equal(t, []string{Egress}, dep.Services[0].Networks)
	}
	dep, msgs = build(t, `version: 1
name: t
domain: t.example.com
app: {image: ghcr.io/acme/app:1}
services:
  api: {image: ghcr.io/acme/api:1, port: 8080, health: /healthz}
`)
	if assert.NotNil(t, dep, msgs) {
		assert.Equal(t, map[string][]string{"api": {"app"}, "app": {"api", "proxy"}, "proxy": {"app"}}, peers(dep))
	}
}
