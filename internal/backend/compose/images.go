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
	"github.com/distribution/reference"
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
// failed check leaves nothing half-pulled. A registry that cannot be
// reached is asked once, not once per image: on a host without a route
// out, each lookup can cost a DNS timeout. It returns each image that
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
	ctx, cancel := context.WithTimeout(ctx, imageCheckTimeout)
	defer cancel()
	images := slices.Sorted(maps.Keys(users))
	present := make([]bool, len(images))
	if err := inParallel(len(images), func(i int) (err error) {
		present[i], err = t.imagePresent(ctx, images[i])
		return err
	}); err != nil {
		return nil, err
	}
	byRegistry := map[string][]string{}
	for i, image := range images {
		if !present[i] {
			byRegistry[registryOf(image)] = append(byRegistry[registryOf(image)], image)
		}
	}
	var (
		mu  sync.Mutex
		out []plan.UnavailableImage
	)
	registries := slices.Sorted(maps.Keys(byRegistry))
	err := inParallel(len(registries), func(i int) error {
		missing := byRegistry[registries[i]]
		first, err := t.pullable(ctx, missing[0])
		if err != nil {
			return err
		}
		results := make([]*plan.UnavailableImage, len(missing))
		results[0] = first
		if first != nil && first.Reason == plan.ImageUnreachable {
			for j, image := range missing[1:] {
				results[j+1] = &plan.UnavailableImage{Image: image, Reason: first.Reason, Detail: first.Detail}
			}
		} else if err := inParallel(len(missing)-1, func(j int) (err error) {
			results[j+1], err = t.pullable(ctx, missing[j+1])
			return err
		}); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range results {
			if r != nil {
				r.Services = users[r.Image]
				out = append(out, *r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b plan.UnavailableImage) int { return strings.Compare(a.Image, b.Image) })
	return out, nil
}

// inParallel runs f(0..n-1), imageCheckParallel at a time, and returns the
// first error.
func inParallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, imageCheckParallel)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// imagePresent reports whether the engine has image.
func (t *Target) imagePresent(ctx context.Context, image string) (bool, error) {
	_, err := t.Client().ImageInspect(ctx, image)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("inspect image %s on the engine: %w", image, err)
}

// pullable returns nil when the registry of image, asked by the engine,
// has it for us, else why not.
func (t *Target) pullable(ctx context.Context, image string) (*plan.UnavailableImage, error) {
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

// registryOf is the registry host of an image reference (docker.io for
// Docker Hub), or the reference itself when it does not parse.
func registryOf(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.Domain(named)
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
