package compose

import (
	"errors"
	"fmt"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/stretchr/testify/assert"

	"github.com/aipairpro/orchestrator/internal/plan"
)

func TestPullErrorReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{errors.New(`Error response from daemon: Get "https://registry.invalid/v2/": dial tcp: lookup registry.invalid on 10.255.255.53:53: no such host`), plan.ImageUnreachable},
		{errors.New(`Get "https://10.0.0.9/v2/": dial tcp 10.0.0.9:443: i/o timeout`), plan.ImageUnreachable},
		{errors.New(`Get "https://ghcr.io/v2/": net/http: TLS handshake timeout`), plan.ImageUnreachable},
		{errors.New(`Get "https://registry-1.docker.io/v2/": proxyconnect tcp: dial tcp 10.0.0.1:3128: connect: connection refused`), plan.ImageUnreachable},
		{fmt.Errorf("Error response from daemon: manifest unknown: %w", cerrdefs.ErrNotFound), plan.ImageNotFound},
		{fmt.Errorf("Error response from daemon: unauthorized: %w", cerrdefs.ErrUnauthenticated), plan.ImageUnauthorized},
		{fmt.Errorf("denied: %w", cerrdefs.ErrPermissionDenied), plan.ImageUnauthorized},
		// Without a status code (older engines answer 500 for everything).
		{errors.New("pull access denied for acme/app, repository does not exist or may require 'docker login'"), plan.ImageUnauthorized},
		{errors.New("manifest for acme/app:9 not found: manifest unknown"), plan.ImageNotFound},
		{errors.New("no matching manifest for linux/arm64 in the manifest list entries"), plan.ImageError},
	} {
		assert.Equal(t, c.want, pullErrorReason(c.err), c.err.Error())
	}
	assert.Equal(t, "manifest unknown", pullErrorDetail(errors.New("Error response from daemon: manifest unknown")))
}
