package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"

	"github.com/aipairpro/orchestrator/internal/plan"
)

// imageCheckTimeout bounds the registry lookups of one check: a registry
// behind a firewall that drops packets would otherwise hold up for the
// engine's own dial timeouts, once per image.
const imageCheckTimeout = 45 * time.Second

// imageCheckParallel is how many images are looked up at once.
const imageCheckParallel = 8

// Images checks that every image of the project is on the engine or can be
// pulled from its registry, before anything changes. An image missing from
// the engine is looked up by the engine in its registry (the manifest only,
// the way a pull starts, with the credentials of the docker CLI on this
// machine, as compose's pull sends them): nothing is downloaded, so a
// failed check leaves nothing half-pulled. It returns each image that
// cannot be had once, with every service that uses it and why, sorted by
// image; the error is for an engine that cannot be asked at all.
func (t *Target) Images(ctx context.Context, p *types.Project) ([]plan.UnavailableImage, error) {
	users := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		svc := p.Services[name]
		if svc.Image == "" || svc.Build != nil {
			continue
		}
		users[svc.Image] = append(users[svc.Image], name)
	}
	images := slices.Sorted(maps.Keys(users))
	ctx, cancel := context.WithTimeout(ctx, imageCheckTimeout)
	defer cancel()
	results := make([]*plan.UnavailableImage, len(images))
	errs := make([]error, len(images))
	sem := make(chan struct{}, imageCheckParallel)
	var wg sync.WaitGroup
	for i, image := range images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = t.imageAvailable(ctx, image)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	var out []plan.UnavailableImage
	for i, r := range results {
		if r != nil {
			r.Services = users[images[i]]
			out = append(out, *r)
		}
	}
	return out, nil
}

// imageAvailable returns nil when image is on the engine or its registry
// has it for us, else why not.
func (t *Target) imageAvailable(ctx context.Context, image string) (*plan.UnavailableImage, error) {
	_, err := t.Client().ImageInspect(ctx, image)
	if err == nil {
		return nil, nil
	}
	if !cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("inspect image %s on the engine: %w", image, err)
	}
	auth, err := command.RetrieveAuthTokenFromImage(t.cli.ConfigFile(), image)
	if err != nil {
		return &plan.UnavailableImage{Image: image, Reason: plan.ImageError, Detail: "reading the docker CLI's credentials: " + err.Error()}, nil
	}
	_, err = t.Client().DistributionInspect(ctx, image, client.DistributionInspectOptions{EncodedRegistryAuth: auth})
	if err == nil {
		return nil, nil
	}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return nil, ctx.Err() // interrupted: not the registry's fault
	case ctx.Err() != nil:
		return &plan.UnavailableImage{Image: image, Reason: plan.ImageUnreachable, Detail: fmt.Sprintf("no answer from the registry within %s", imageCheckTimeout)}, nil
	}
	return &plan.UnavailableImage{Image: image, Reason: pullErrorReason(err), Detail: pullErrorDetail(err)}, nil
}

// unreachableMarkers are what Go's net and TLS stacks say, through the
// engine, when no registry answers.
var unreachableMarkers = []string{
	"no such host", "server misbehaving", "dial tcp", "connection refused", "connection reset",
	"network is unreachable", "no route to host", "i/o timeout", "tls handshake timeout",
	"timeout awaiting response headers", "client.timeout exceeded", "proxyconnect",
}

// pullErrorReason sorts a failed registry lookup into one of the
// plan.Image* reasons: the engine's status code first, its words else.
func pullErrorReason(err error) string {
	msg := strings.ToLower(err.Error())
	switch {
	case cerrdefs.IsUnauthorized(err) || cerrdefs.IsPermissionDenied(err):
		return plan.ImageUnauthorized
	case cerrdefs.IsNotFound(err):
		return plan.ImageNotFound
	}
	for _, m := range unreachableMarkers {
		if strings.Contains(msg, m) {
			return plan.ImageUnreachable
		}
	}
	switch {
	case strings.Contains(msg, "unauthorized"), strings.Contains(msg, "denied"), strings.Contains(msg, "authentication required"):
		return plan.ImageUnauthorized
	case strings.Contains(msg, "manifest unknown"), strings.Contains(msg, "name unknown"), strings.Contains(msg, "not found"):
		return plan.ImageNotFound
	}
	return plan.ImageError
}

// pullErrorDetail is the engine's message without the client's prefix.
func pullErrorDetail(err error) string {
	return strings.TrimSpace(strings.TrimPrefix(err.Error(), "Error response from daemon: "))
}
