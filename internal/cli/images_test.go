package cli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/aipairpro/orchestrator/internal/plan"
)

func TestImagesDetail(t *testing.T) {
	got := imagesDetail([]plan.UnavailableImage{
		{Image: "ghcr.io/acme/app:1", Services: []string{"app"}, Reason: plan.ImageUnauthorized, Detail: "unauthorized"},
		{Image: "acme/worker:1", Services: []string{"worker", "worker-b"}, Reason: plan.ImageUnauthorized, Detail: "pull access denied"},
		{Image: "caddy:9.9.9", Services: []string{"proxy"}, Reason: plan.ImageNotFound, Detail: "manifest unknown"},
		{Image: "registry.invalid/x/y:1", Services: []string{"ghost"}, Reason: plan.ImageUnreachable, Detail: "dial tcp: lookup registry.invalid: no such host"},
	})
	assert.Equal(t, strings.Join([]string{
		"  ghcr.io/acme/app:1 (service app): unauthorised (or no such repository: registries often answer both alike): unauthorized",
		"  acme/worker:1 (services worker, worker-b): unauthorised (or no such repository: registries often answer both alike): pull access denied",
		"  caddy:9.9.9 (service proxy): not found: manifest unknown",
		"  registry.invalid/x/y:1 (service ghost): registry not reachable: dial tcp: lookup registry.invalid: no such host",
		"  fix: let the engine reach registry.invalid (network, DNS, proxy), give it a registry mirror (registry-mirrors in its daemon.json; Docker Hub images only), or copy the images onto it (docker save | docker load)",
		"  fix: run `docker login ghcr.io` and `docker login` (Docker Hub) on this machine (orchestrator hands the engine the docker CLI's credentials), or check the name",
		"  fix: correct the name or tag (a component's tag is components.<name>.version, else the catalog's pin)",
		"  fix: or point each service at an image the engine can get (a mirror's copy, your own registry): overrides.app.image, overrides.ghost.image, overrides.proxy.image, overrides.worker.image, overrides.worker-b.image in the spec",
	}, "\n"), got)
}
